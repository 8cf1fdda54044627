//go:build unix

package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// installedBridgeVenv makes a venv on the system's packages and pip-installs
// this checkout's priv/python into it, offline, as README.md shows. It
// returns the venv's interpreter. The source is copied first: a build
// writes build/ and *.egg-info next to pyproject.toml.
func installedBridgeVenv(t *testing.T) string {
	t.Helper()
	py := testutil.Python(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := exec.CommandContext(ctx, py.Path, "-c", "import ensurepip, venv").Run(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s cannot make venvs (apt install python3-venv; set CI to make this fatal)", py.Path)
		}
		t.Fatalf("%s cannot make venvs (apt install python3-venv python3-setuptools python3-wheel): %v", py.Path, err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	require.NoError(t, os.CopyFS(src, os.DirFS(repoPriv(t))))
	require.NoError(t, os.RemoveAll(filepath.Join(src, "tests")))
	venv := filepath.Join(dir, "venv")
	run := func(name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
		return string(out)
	}
	run(py.Path, "-m", "venv", "--system-site-packages", venv)
	python := filepath.Join(venv, "bin", "python")
	run(python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--disable-pip-version-check", src)
	return python
}

// TestAPoolRunsTheBridgeInstalledInAVenv: pip install ./priv/python into a
// venv; Config.Python pointing at the venv's interpreter runs workers that
// import the installed package, not the embedded copy (nothing is written
// to the cache), with no PrivDir and no snakepit environment variable.
func TestAPoolRunsTheBridgeInstalledInAVenv(t *testing.T) {
	python := installedBridgeVenv(t)
	venv := filepath.Dir(filepath.Dir(python))

	// Imports resolve to the venv's site-packages, from a directory with no bridge in it.
	cmd := exec.CommandContext(t.Context(), python, "-c",
		"import snakepit_bridge, snakepit_bridge_pb2; print(snakepit_bridge.__file__); print(snakepit_bridge.__version__)")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	lines := strings.Fields(string(out))
	require.Len(t, lines, 2)
	assert.True(t, strings.HasPrefix(lines[0], venv), "imported from %s", lines[0])
	assert.Equal(t, snakepit.Version, lines[1], "the package's version is the module's")

	cache := t.TempDir()
	for _, k := range []string{"SNAKEPIT_PRIV_DIR", "SNAKEPIT_PYTHON", snakepit.EnvPythonBridge} {
		t.Setenv(k, "")
	}
	t.Setenv("SNAKEPIT_CACHE_DIR", cache)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, source := range []snakepit.PythonBridgeSource{snakepit.PythonBridgeAuto, snakepit.PythonBridgeInstalled} {
		app, err := snakepit.Start(ctx, snakepit.Config{
			Python: python, PythonBridge: source, Logger: testutil.QuietLogger(t),
			Pools: []snakepit.PoolConfig{{Name: "venv", Size: 1}},
		})
		require.NoError(t, err, source)
		require.NoError(t, app.AwaitReady(ctx))
		res, err := app.Execute(ctx, "whoami", nil)
		require.NoError(t, err)
		got := decodeJSON(t, res).(map[string]any)
		assert.True(t, strings.HasPrefix(got["bridge"].(string), venv), "the worker imported %s", got["bridge"])
		assert.Contains(t, got["argv"].([]any)[0], filepath.Join("site-packages", "snakepit_bridge", "launch", "grpc_server.py"))
		stopAndCheck(t, app)
	}
	entries, err := os.ReadDir(cache)
	require.NoError(t, err)
	assert.Empty(t, entries, "the embedded bridge was not written out")

	// Embedded wins when asked for, even with the package installed.
	app, err := snakepit.Start(ctx, snakepit.Config{
		Python: python, PythonBridge: snakepit.PythonBridgeEmbedded, Logger: testutil.QuietLogger(t),
		Pools: []snakepit.PoolConfig{{Name: "venv", Size: 1}},
	})
	require.NoError(t, err)
	require.NoError(t, app.AwaitReady(ctx))
	res, err := app.Execute(ctx, "whoami", nil)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(decodeJSON(t, res).(map[string]any)["bridge"].(string), cache))
	stopAndCheck(t, app)
}

// An interpreter without the package and PythonBridge installed: a start
// error that says how to fix it, before any worker starts.
func TestPythonBridgeInstalledWithoutThePackageFailsAtStart(t *testing.T) {
	py := testutil.Python(t)
	t.Setenv("SNAKEPIT_PRIV_DIR", "")
	_, err := snakepit.Start(t.Context(), snakepit.Config{
		Python: py.Path, PythonBridge: snakepit.PythonBridgeInstalled, Logger: testutil.QuietLogger(t),
		Pools: []snakepit.PoolConfig{{Name: "none", Size: 1}},
	})
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, snakepit.CodeInvalidArgument, serr.Code)
	assert.Contains(t, serr.Message, "not installed")
	assert.Contains(t, serr.Message, "pip install")
}
