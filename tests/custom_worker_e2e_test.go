//go:build unix

package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

const customServer = `"""A worker server outside priv/python: it only needs the bridge on PYTHONPATH."""
import sys
from snakepit_bridge.server import run_main

if __name__ == "__main__":
    sys.argv[0] = "custom_server.py"
    run_main()
`

const customAdapter = `from snakepit_bridge import BaseAdapter, tool


class Greeter(BaseAdapter):
    @tool(description="Greets")
    def greet(self, name: str) -> str:
        return "hello " + name
`

// The worker script, the interpreter and PYTHONPATH are configuration: a
// server and adapter that live outside the repository run as workers.
func TestCustomScriptInterpreterAndPythonPath(t *testing.T) {
	interp := testutil.Python(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "custom_server.py"), []byte(customServer), 0o644))
	adapters := filepath.Join(dir, "adapters")
	require.NoError(t, os.MkdirAll(filepath.Join(adapters, "greeting"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(adapters, "greeting", "__init__.py"), nil, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(adapters, "greeting", "greeter.py"), []byte(customAdapter), 0o644))

	app := startApp(t, snakepit.Config{
		Python:     interp.Path,
		Script:     filepath.Join(dir, "custom_server.py"),
		PythonPath: []string{repoPriv(t), adapters},
		Pools:      []snakepit.PoolConfig{{Name: "greet", Size: 1, Adapter: "greeting.greeter.Greeter"}},
	})
	res, err := app.Execute(t.Context(), "greet", map[string]any{"name": "go"})
	require.NoError(t, err)
	assert.JSONEq(t, `"hello go"`, string(res.JSON))
	_, err = app.Execute(t.Context(), "add", map[string]any{"a": 1, "b": 2})
	assert.ErrorIs(t, err, snakepit.ErrToolNotFound, "only the custom adapter's tools exist")
}

// upstreamFlagsOnly is a worker script whose command line accepts exactly
// upstream Snakepit 0.13's flags (README_GRPC.md) and exits 2 on any other,
// as upstream's argparse does; it then runs our server.
const upstreamFlagsOnly = `import argparse, sys
p = argparse.ArgumentParser()
for flag in ("--port", "--adapter", "--elixir-address", "--snakepit-run-id", "--snakepit-instance-name",
             "--snakepit-instance-token", "--heartbeat-interval-ms", "--heartbeat-timeout-ms",
             "--heartbeat-max-missed", "--heartbeat-initial-delay-ms"):
    p.add_argument(flag)
for flag in ("--heartbeat-enabled", "--heartbeat-dependent", "--heartbeat-independent", "--health-check"):
    p.add_argument(flag, action="store_true")
p.parse_args()  # exits 2 on a flag upstream does not know
from snakepit_bridge.server import run_main
run_main()
`

// TestAScriptThatSpeaksOnlyUpstreamsFlagsStarts: the host passes upstream's
// flags only; the worker id, socket and lifeline travel in the environment.
func TestAScriptThatSpeaksOnlyUpstreamsFlagsStarts(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "grpc_server.py")
	require.NoError(t, os.WriteFile(script, []byte(upstreamFlagsOnly), 0o644))
	for _, transport := range []snakepit.Transport{snakepit.TransportTCP, snakepit.TransportUnix} {
		app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "up", Size: 1, Transport: transport}},
			Script: script, PythonPath: []string{repoPriv(t)}, DataDir: t.TempDir(),
			InstanceName: "upstream-flags-" + strconv.Itoa(os.Getpid())})
		res, err := app.Execute(t.Context(), "ping", nil)
		require.NoError(t, err, "transport %s", transport)
		require.JSONEq(t, `"pong"`, string(res.JSON))
		stopAndCheck(t, app)
	}
}
