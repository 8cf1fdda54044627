//go:build unix

package tests

import (
	"os"
	"path/filepath"
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
