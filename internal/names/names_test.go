package names

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"default": true, "pool-1": true, "A_b-9": true,
		"": false, "-flag": false, "--snakepit-run-id": false, "_x": true, "a b": false, "a/b": false, "tok+/=": false, "héllo": false, "..": false,
	} {
		assert.Equal(t, want, Valid(s), "%q", s)
	}
}
