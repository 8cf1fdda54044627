//go:build unix

package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

const spawningAdapter = `import os
import subprocess
import sys

from snakepit_bridge import BaseAdapter, tool


class Spawner(BaseAdapter):
    @tool(description="Starts a child that inherits stdout and stderr, then dies")
    def spawn_and_die(self, pid_file: str) -> None:
        child = subprocess.Popen(["sleep", "60"])  # inherits the worker's output pipe
        with open(pid_file, "w") as fh:
            fh.write(str(child.pid))
        sys.stderr.flush()
        os._exit(3)

    @tool(description="Prints one long line")
    def long_line(self, n: int) -> int:
        print("x" * n, flush=True)
        return n
`

// A worker whose tool left a subprocess holding its output pipe still
// reports its death at once (worker_exit with the exit code, not a gRPC
// error), is replaced, and the subprocess in its group is killed.
func TestWorkerDeathIsSeenDespiteASubprocessHoldingItsOutput(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "spawner.py"), []byte(spawningAdapter), 0o644))
	app := startApp(t, snakepit.Config{
		PythonPath: []string{dir},
		Pools:      []snakepit.PoolConfig{{Name: "default", Size: 1, Adapter: "spawner.Spawner"}},
	})
	pidFile := filepath.Join(dir, "child.pid")
	start := time.Now()
	_, err := app.Execute(t.Context(), "spawn_and_die", map[string]any{"pid_file": pidFile})
	require.ErrorIs(t, err, snakepit.ErrWorkerExit)
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, "3", serr.Details["exit_code"])
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "reported without waiting out the 2s exit wait")

	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return !testutil.Alive(child) }, 10*time.Second, 10*time.Millisecond,
		"the subprocess in the dead worker's group is killed")

	waitStats(t, app, "default", "the worker to be replaced", func(s statsView) bool { return s.Ready == 1 && s.Restarts == 1 })
	// A line far longer than any line buffer does not break the new worker's output.
	for _, n := range []int{3 << 20, 10} {
		res, err := app.Execute(t.Context(), "long_line", map[string]any{"n": n})
		require.NoError(t, err, "line of %d bytes", n)
		assert.JSONEq(t, strconv.Itoa(n), string(res.JSON))
	}
}
