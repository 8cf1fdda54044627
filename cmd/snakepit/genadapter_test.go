package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/doctor"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// `snakepit gen-adapter demo_ml` followed by the test command it prints
// passes, and doctor finds the new adapter sound.
func TestGenAdapterTestsPassOutOfTheBox(t *testing.T) {
	testutil.Python(t) // with pytest, which make test needs too
	dir := t.TempDir()
	var out, errb strings.Builder
	require.Equal(t, 0, runContext(t.Context(), []string{"gen-adapter", "demo_ml", "-dir", dir}, nil, &out, &errb), errb.String())
	lines := strings.Split(out.String(), "\n")
	require.GreaterOrEqual(t, len(lines), 3, out.String())
	assert.Equal(t, "test it:", lines[1])
	testCmd := strings.TrimSpace(lines[2])
	for _, f := range []string{"demo_ml/__init__.py", "demo_ml/adapter.py", "tests/test_adapter.py", "requirements.txt",
		"pyproject.toml", "snakepit.yaml", "README.md"} {
		assert.FileExists(t, filepath.Join(dir, "demo_ml", f))
	}
	res, err := exec.CommandContext(t.Context(), "sh", "-c", testCmd).CombinedOutput()
	require.NoError(t, err, "%s\n%s", testCmd, res)
	assert.Contains(t, string(res), "4 passed")

	code, checks := runDoctor(t, "-pythonpath", filepath.Join(dir, "demo_ml"), "-adapter", "demo_ml.DemoMlAdapter", "-data-dir", t.TempDir())
	assert.Equal(t, 0, code)
	assert.Equal(t, doctor.OK, checks["adapter demo_ml.DemoMlAdapter"].Status, checks["adapter demo_ml.DemoMlAdapter"].Detail)

	// Not over an existing project, and only module names.
	errb.Reset()
	assert.Equal(t, 1, runContext(t.Context(), []string{"gen-adapter", "demo_ml", "-dir", dir}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "exists")
	for _, bad := range []string{"Demo", "1st", "class", "my-adapter"} {
		assert.Equal(t, 2, runContext(t.Context(), []string{"gen-adapter", bad, "-dir", dir}, nil, &out, &errb), bad)
	}
	_, err = os.Stat(filepath.Join(dir, "my-adapter"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestClassName(t *testing.T) {
	for in, want := range map[string]string{"demo_ml": "DemoMlAdapter", "x": "XAdapter", "_priv": "PrivAdapter", "a__b": "ABAdapter"} {
		assert.Equal(t, want, className(in), in)
	}
	assert.Equal(t, "/a/b", shellQuote("/a/b"))
	assert.Equal(t, `'/a b/it'"'"'s'`, shellQuote("/a b/it's"))
}
