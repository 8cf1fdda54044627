package shm

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPutThenAWorkersResultTakenAsAViewOrACopy(t *testing.T) {
	d := New(t.TempDir(), 0)
	assert.Equal(t, DefaultThreshold, d.Threshold())
	data := bytes.Repeat([]byte("snakepit"), 1<<16)
	name, err := d.Put(data)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(d.Path(), name))
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, 1, d.Segments())
	d.Remove(name)
	assert.Zero(t, d.Segments())

	for _, view := range []bool{false, true} {
		res := "r.pool-w1." + strconv.Itoa(os.Getpid()) + "." + randomHex()
		require.NoError(t, os.WriteFile(filepath.Join(d.Path(), res), data, 0o600))
		b, err := d.Take(res, "pool-w1", view)
		require.NoError(t, err)
		assert.Equal(t, data, b)
		assert.Zero(t, d.Segments(), "a taken segment is unlinked at once")
		if view {
			assert.Equal(t, 1, Views())
			b[0] = 'X' // private: writable, seen by nobody else
			assert.True(t, Release(b))
			assert.False(t, Release(b), "released once")
		} else {
			assert.False(t, Release(b), "a copy is not a view")
		}
		assert.Zero(t, Views())
	}
}

func TestTakeRefusesWhatIsNotItsWorkersSegment(t *testing.T) {
	d := New(t.TempDir(), 0)
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("x"), 0o600))
	hex := randomHex()
	for _, name := range []string{
		"../secret", outside, "r.pool-w1.1.." + hex, "q." + hex, // a request segment is never a result
		"r.pool-w2.1." + hex, // another worker's
		"r.pool-w1.1." + hex + "/x", "", "r.pool-w1..x",
	} {
		_, err := d.Take(name, "pool-w1", false)
		assert.ErrorIs(t, err, ErrName, name)
	}
}

func TestRemoveWorkerRemovesOnlyThatProcesssSegments(t *testing.T) {
	d := New(t.TempDir(), 0)
	mine := []string{"r.pool-w1.42." + randomHex(), "r.pool-w1.42." + randomHex()}
	others := []string{"r.pool-w1.43." + randomHex(), "r.pool-w10.42." + randomHex(), "q." + randomHex()}
	for _, n := range append(append([]string{}, mine...), others...) {
		require.NoError(t, os.WriteFile(filepath.Join(d.Path(), n), []byte("x"), 0o600))
	}
	assert.Equal(t, 2, d.RemoveWorker("pool-w1", 42))
	assert.Equal(t, len(others), d.Segments())
}

func TestPutIntoAMissingDirectoryFails(t *testing.T) {
	d := New(filepath.Join(t.TempDir(), "gone"), 0)
	_, err := d.Put([]byte("x"))
	assert.Error(t, err)
}
