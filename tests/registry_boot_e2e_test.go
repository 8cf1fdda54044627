//go:build unix

package tests

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/registry"
	"github.com/snakepit-go/snakepit/actors/worker"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// gatedServer runs the real worker server once the file named by
// SNAKEPIT_TEST_GATE exists: its process exists long before it is ready.
const gatedServer = `import os, runpy, sys, time
gate = os.environ["SNAKEPIT_TEST_GATE"]
while not os.path.exists(gate):
    time.sleep(0.01)
runpy.run_path(os.environ["SNAKEPIT_TEST_SERVER"], run_name="__main__")
`

// A worker is in the registry from the moment its process exists, not only
// once it is ready: a lookup during its boot (the host bridge forwarding a
// call to it, say) finds it, and GetInfo{WaitReady} answers when the boot
// ends instead of failing with "not running" or "not ready".
func TestAWorkerIsRegisteredWhileItBoots(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	script := filepath.Join(dir, "gated_server.py")
	require.NoError(t, os.WriteFile(script, []byte(gatedServer), 0o644))
	app := startAppNoWait(t, snakepit.Config{
		Script: script, PythonPath: []string{repoPriv(t)},
		Pools: []snakepit.PoolConfig{{Name: "gated", Size: 1, AdapterEnv: []string{
			"SNAKEPIT_TEST_GATE=" + gate, "SNAKEPIT_TEST_SERVER=" + filepath.Join(repoPriv(t), "grpc_server.py")}}},
	})
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	var meta registry.WorkerMeta
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, found, err := reg.Lookup(t.Context(), "gated-w1")
		require.NoError(t, err)
		if found {
			meta = m
			break
		}
		require.True(t, time.Now().Before(deadline), "the booting worker never appeared in the registry")
		time.Sleep(5 * time.Millisecond)
	}
	assert.NotZero(t, meta.OSPid, "registered with its process")

	root := app.System().Root
	res, err := root.RequestFuture(meta.PID, &worker.GetInfo{}, 5*time.Second).Result()
	require.NoError(t, err)
	require.Equal(t, worker.StateStarting, res.(*worker.Info).State, "the gate holds the boot")

	waited := root.RequestFuture(meta.PID, &worker.GetInfo{WaitReady: true}, 30*time.Second)
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	res, err = waited.Result()
	require.NoError(t, err)
	info := res.(*worker.Info)
	assert.Equal(t, worker.StateReady, info.State)
	assert.NotEmpty(t, info.Target)
	assert.Equal(t, meta.OSPid, info.OSPid)
}
