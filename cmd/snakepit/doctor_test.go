package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/doctor"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// runDoctor runs `snakepit doctor -json` with args and returns its exit
// code and checks by name.
func runDoctor(t *testing.T, args ...string) (int, map[string]doctor.Check) {
	t.Helper()
	var out, errb strings.Builder
	code := runContext(t.Context(), append([]string{"doctor", "-json"}, args...), nil, &out, &errb)
	var checks []doctor.Check
	require.NoError(t, json.Unmarshal([]byte(out.String()), &checks), "stdout: %s\nstderr: %s", out.String(), errb.String())
	byName := map[string]doctor.Check{}
	for _, c := range checks {
		byName[c.Name] = c
	}
	return code, byName
}

func TestDoctorPassesOnAGoodSetup(t *testing.T) {
	testutil.Python(t)
	code, checks := runDoctor(t, "-data-dir", t.TempDir())
	require.Equal(t, 0, code, "%v", checks)
	for _, name := range []string{"python", "python packages", "bridge", "adapter snakepit_bridge.adapters.showcase.ShowcaseAdapter",
		"data directory", "socket directory"} {
		assert.Equal(t, doctor.OK, checks[name].Status, "%s: %s", name, checks[name].Detail)
	}
	assert.Contains(t, checks["python packages"].Detail, "grpcio ")
	assert.Contains(t, checks["adapter snakepit_bridge.adapters.showcase.ShowcaseAdapter"].Detail, "health check ok")
	assert.Equal(t, doctor.Skip, checks["gpu"].Status, "no NVIDIA driver here: skipped, not failed")
	assert.Contains(t, checks["gpu"].Detail, "no CUDA")
}

func TestDoctorNamesTheBrokenPart(t *testing.T) {
	testutil.Python(t)
	tests := filepath.Join(testutil.RepoRoot(t), "priv", "python", "tests")

	t.Run("python", func(t *testing.T) {
		// -python sets $SNAKEPIT_PYTHON for the process: restored after the test.
		t.Setenv("SNAKEPIT_PYTHON", os.Getenv("SNAKEPIT_PYTHON"))
		code, checks := runDoctor(t, "-python", "/nonexistent/python3", "-data-dir", t.TempDir())
		assert.Equal(t, 1, code)
		assert.Equal(t, doctor.Fail, checks["python"].Status)
		assert.Contains(t, checks["python"].Detail, "/nonexistent/python3")
		assert.NotEmpty(t, checks["python"].Fix)
		assert.Equal(t, doctor.Skip, checks["adapter snakepit_bridge.adapters.showcase.ShowcaseAdapter"].Status)
	})
	t.Run("adapter initialize raises", func(t *testing.T) {
		code, checks := runDoctor(t, "-pythonpath", tests, "-adapter", "bridge_test_adapters.BrokenInitAdapter", "-data-dir", t.TempDir())
		assert.Equal(t, 1, code)
		c := checks["adapter bridge_test_adapters.BrokenInitAdapter"]
		assert.Equal(t, doctor.Fail, c.Status)
		assert.Contains(t, c.Detail, "initialize() raised FileNotFoundError: weights.pt")
		assert.Equal(t, doctor.OK, checks["python"].Status, "only the broken part fails")
	})
	t.Run("adapter not importable", func(t *testing.T) {
		code, checks := runDoctor(t, "-adapter", "no_such_module.Adapter", "-data-dir", t.TempDir())
		assert.Equal(t, 1, code)
		assert.Contains(t, checks["adapter no_such_module.Adapter"].Detail, "cannot import adapter module")
	})
	t.Run("data directory not writable", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "a-file")
		require.NoError(t, os.WriteFile(file, nil, 0o600))
		code, checks := runDoctor(t, "-data-dir", filepath.Join(file, "state"))
		assert.Equal(t, 1, code)
		assert.Equal(t, doctor.Fail, checks["data directory"].Status)
		assert.Contains(t, checks["data directory"].Detail, "a-file")
	})
	t.Run("metrics port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		cfg := filepath.Join(t.TempDir(), "snakepit.yaml")
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nmetrics: {enabled: true, address: %q}\n",
			t.TempDir(), ln.Addr().String())), 0o600))
		code, checks := runDoctor(t, "-config", cfg)
		assert.Equal(t, 1, code)
		assert.Equal(t, doctor.Fail, checks["ports"].Status)
		assert.Contains(t, checks["ports"].Detail, ln.Addr().String())
	})
}
