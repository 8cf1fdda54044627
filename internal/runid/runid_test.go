package runid

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestNewIsValidAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 5000 {
		id := New()
		assert.Len(t, id, 11)
		assert.True(t, Valid(id), id)
		assert.False(t, seen[id], "duplicate run id %s", id)
		seen[id] = true
	}
}

func TestSameSecondSameCounterStillDiffers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, b := newAt(now, 7), newAt(now, 7)
	assert.Equal(t, a[:7], b[:7], "time and counter part")
	// 36^4 random suffixes: a collision here is a 1-in-1.7M event.
	assert.NotEqual(t, a, b)
}

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{"abc1234": true, "ABC1234": false, "ab": false, "ab-c123": false, "": false} {
		assert.Equal(t, want, Valid(s), s)
	}
}
