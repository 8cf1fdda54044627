package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Booting workers are woken by a change in their own directory, not by a
// poll, and the shared watcher goes away with the last of them.
func TestReadyWatchWakesTheWaiterOfTheChangedDirectory(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	chA, stopA, ok := readyWatcher.watch(a)
	require.True(t, ok, "this system gives a watcher")
	chB, stopB, ok := readyWatcher.watch(b)
	require.True(t, ok)

	require.NoError(t, os.WriteFile(filepath.Join(a, "ready.tmp"), []byte("x"), 0o600))
	require.NoError(t, os.Rename(filepath.Join(a, "ready.tmp"), filepath.Join(a, "ready")))
	select {
	case <-chA:
	case <-time.After(10 * time.Second):
		t.Fatal("no wake-up for a change in a")
	}
	select {
	case <-chB:
		t.Fatal("b was woken by a change in a")
	default:
	}

	stopA()
	stopA() // idempotent
	readyWatcher.mu.Lock()
	assert.NotNil(t, readyWatcher.w, "b still waits")
	readyWatcher.mu.Unlock()
	stopB()
	readyWatcher.mu.Lock()
	assert.Nil(t, readyWatcher.w, "closed with the last waiter (goleak checks its goroutine)")
	readyWatcher.mu.Unlock()
}

func TestReadyWatchOfAMissingDirectoryIsRefused(t *testing.T) {
	_, stop, ok := readyWatcher.watch(filepath.Join(t.TempDir(), "gone"))
	defer stop()
	assert.False(t, ok, "the worker then polls")
	readyWatcher.mu.Lock()
	assert.Nil(t, readyWatcher.w, "nothing kept open for nobody")
	readyWatcher.mu.Unlock()
}
