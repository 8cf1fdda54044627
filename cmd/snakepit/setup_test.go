package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// setup with no reachable index (an address nothing listens on): it says
// so, installs offline what the machine has, and names what it lacks.
func TestSetupMakesAVenvOffline(t *testing.T) {
	testutil.Python(t)
	t.Setenv("PIP_INDEX_URL", "http://127.0.0.1:1/simple/")
	dir := t.TempDir()
	reqs := filepath.Join(dir, "requirements.txt")
	require.NoError(t, os.WriteFile(reqs, []byte("grpcio>=1.50\nprotobuf>=3.20\n"), 0o600))
	venv := filepath.Join(dir, "venv")

	var out, errb strings.Builder
	code := runContext(t.Context(), []string{"setup", "-requirements", reqs, "-venv", venv}, nil, &out, &errb)
	require.Equal(t, 0, code, "%s\n%s", out.String(), errb.String())
	assert.Contains(t, out.String(), "no package index is reachable (http://127.0.0.1:1/simple/")
	assert.Contains(t, out.String(), "ready: "+filepath.Join(venv, "bin", "python"))
	res, err := exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import grpc, google.protobuf").CombinedOutput()
	require.NoError(t, err, "%s", res)

	// A requirement the machine lacks, with no index: a clear error, exit 1.
	missing := filepath.Join(dir, "more.txt")
	require.NoError(t, os.WriteFile(missing, []byte("definitely-not-a-package-xyz==1.0\n"), 0o600))
	out.Reset()
	errb.Reset()
	code = runContext(t.Context(), []string{"setup", "-requirements", missing, "-venv", venv}, nil, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, out.String(), "using venv "+venv, "the venv is reused")
	assert.Contains(t, errb.String(), "no package index is reachable")
	assert.Contains(t, errb.String(), "definitely-not-a-package-xyz")

	errb.Reset()
	assert.Equal(t, 2, runContext(t.Context(), []string{"setup"}, nil, &out, &errb), "the file is required")
	assert.Equal(t, 2, runContext(t.Context(), []string{"setup", "-requirements", reqs, "-installer", "conda"}, nil, &out, &errb))
}

func TestInstallArgs(t *testing.T) {
	assert.Equal(t, []string{"/v/bin/python", "-m", "pip", "install", "--disable-pip-version-check", "-r", "r.txt", "--no-index"},
		installArgs("pip", "/v/bin/python", "r.txt", true))
	assert.Equal(t, []string{"uv", "pip", "install", "--python", "/v/bin/python", "-r", "r.txt"},
		installArgs("uv", "/v/bin/python", "r.txt", false))
}
