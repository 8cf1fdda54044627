package pyenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Fake interpreters: shell scripts that answer the probe like Python would.
const (
	fakeGood = "#!/bin/sh\necho %s\n"
	fakeBad  = "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n" +
		"echo \"ModuleNotFoundError: No module named 'grpc'\" >&2\nexit 1\n"
	fakeGarbage = "#!/bin/sh\necho hello\n"
)

// fake writes an executable script at dir/name and returns its path.
// A body containing %s gets version substituted.
func fake(t *testing.T, dir, name, body, version string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(body, "%s", version)), 0o755))
	return path
}

func TestFinderOrder(t *testing.T) {
	// Each fake prints a distinct version, so the result says which one won.
	const envVersion, pathVersion, sysVersion = "3.99.1", "3.99.2", "3.99.3"

	tests := []struct {
		name    string
		env     string // "", "good", "bad", "missing", "hang"
		path    string // "", "good", "bad", "hang", "garbage"
		system  string // "good", "bad", "missing"
		want    string // version of the winner; "" when an error is expected
		errHas  []string
		envFail bool // the error is about $SNAKEPIT_PYTHON only
	}{
		{name: "override wins over PATH", env: "good", path: "good", system: "good", want: envVersion},
		{name: "PATH wins over system", path: "good", system: "good", want: pathVersion},
		{name: "PATH python lacks grpc: system", path: "bad", system: "good", want: sysVersion},
		{name: "no python3 on PATH: system", system: "good", want: sysVersion},
		{name: "PATH python hangs: system", path: "hang", system: "good", want: sysVersion},
		{name: "PATH python prints garbage: system", path: "garbage", system: "good", want: sysVersion},
		{
			name: "broken override does not fall back", env: "bad", path: "good", system: "good",
			errHas: []string{"$SNAKEPIT_PYTHON", "env/python", "No module named 'grpc'", "not falling back"}, envFail: true,
		},
		{
			name: "missing override does not fall back", env: "missing", path: "good", system: "good",
			errHas: []string{"$SNAKEPIT_PYTHON", "does-not-exist/python", "not executable"}, envFail: true,
		},
		{
			name: "hanging override", env: "hang", path: "good", system: "good",
			errHas: []string{"$SNAKEPIT_PYTHON", "did not answer within"}, envFail: true,
		},
		{
			name: "nothing works", path: "bad", system: "bad",
			errHas: []string{"python3 on $PATH", "pathbin/python3", "system", "sys/python3", "No module named 'grpc'"},
		},
		{
			name: "nothing installed", system: "missing",
			errHas: []string{"python3 on $PATH", "system", "nowhere/python3"},
		},
	}
	// The hanging fake runs sleep by absolute path: the subtests replace PATH.
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err)
	fakeHang := "#!/bin/sh\nexec " + sleep + " 30\n"
	bodies := map[string]string{"good": fakeGood, "bad": fakeBad, "hang": fakeHang, "garbage": fakeGarbage}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pathDir := filepath.Join(dir, "pathbin")
			require.NoError(t, os.MkdirAll(pathDir, 0o755))
			t.Setenv("PATH", pathDir)
			if tc.path != "" {
				fake(t, pathDir, "python3", bodies[tc.path], pathVersion)
			}

			switch tc.env {
			case "":
				t.Setenv(EnvPython, "")
			case "missing":
				t.Setenv(EnvPython, filepath.Join(dir, "does-not-exist", "python"))
			default:
				t.Setenv(EnvPython, fake(t, filepath.Join(dir, "env"), "python", bodies[tc.env], envVersion))
			}

			f := finder{systemPython: filepath.Join(dir, "nowhere", "python3"), timeout: 500 * time.Millisecond}
			if tc.system != "missing" {
				f.systemPython = fake(t, filepath.Join(dir, "sys"), "python3", bodies[tc.system], sysVersion)
			}

			got, err := f.find(context.Background())
			if tc.want != "" {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got.Version)
				assert.True(t, filepath.IsAbs(got.Path), "path %q is absolute", got.Path)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrNotFound)
			var nf *NotFoundError
			require.ErrorAs(t, err, &nf)
			for _, s := range tc.errHas {
				assert.Contains(t, err.Error(), s)
			}
			if tc.envFail {
				require.Len(t, nf.Attempts, 1, "only the override is tried")
				assert.Equal(t, "$"+EnvPython, nf.Attempts[0].Source)
			} else {
				assert.Len(t, nf.Attempts, 2)
			}
		})
	}
}

func TestFinderSkipsDuplicateCandidate(t *testing.T) {
	dir := t.TempDir()
	py := fake(t, dir, "python3", fakeBad, "")
	t.Setenv("PATH", dir)
	t.Setenv(EnvPython, "")
	_, err := finder{systemPython: py, timeout: time.Second}.find(context.Background())
	var nf *NotFoundError
	require.ErrorAs(t, err, &nf)
	assert.Len(t, nf.Attempts, 1, "the system python is python3 on PATH: probed once")
}

func TestFinderContextCanceled(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	t.Setenv(EnvPython, "")
	fake(t, dir, "python3", fakeGood, "3.99.2")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := finder{systemPython: "/nonexistent/python3", timeout: time.Second}.find(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.False(t, errors.Is(err, ErrNotFound), "cancellation is not 'not found'")
}

func TestFindCachesUntilOverrideChanges(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "probes.log")
	// Each probe appends a line to log, so the test can count them.
	counting := "#!/bin/sh\necho probe >> " + log + "\necho %s\n"
	first := fake(t, filepath.Join(dir, "a"), "python", counting, "3.99.1")
	second := fake(t, filepath.Join(dir, "b"), "python", counting, "3.99.2")
	probes := func() int {
		b, err := os.ReadFile(log)
		if errors.Is(err, os.ErrNotExist) {
			return 0
		}
		require.NoError(t, err)
		return strings.Count(string(b), "probe")
	}

	t.Setenv(EnvPython, first)
	got, err := Find(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Interpreter{Path: first, Version: "3.99.1"}, got)
	assert.Equal(t, 1, probes())

	got, err = Find(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Interpreter{Path: first, Version: "3.99.1"}, got)
	assert.Equal(t, 1, probes(), "second Find uses the cache")

	t.Setenv(EnvPython, second)
	got, err = Find(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Interpreter{Path: second, Version: "3.99.2"}, got)
	assert.Equal(t, 2, probes(), "a changed override is probed")

	// A failure is not cached: fixing the interpreter is enough.
	third := fake(t, filepath.Join(dir, "c"), "python", fakeBad, "")
	t.Setenv(EnvPython, third)
	_, err = Find(context.Background())
	require.ErrorIs(t, err, ErrNotFound)
	fake(t, filepath.Join(dir, "c"), "python", counting, "3.99.3")
	got, err = Find(context.Background())
	require.NoError(t, err)
	assert.Equal(t, Interpreter{Path: third, Version: "3.99.3"}, got)
}

// TestFindOnThisMachine finds the real interpreter the workers will use.
func TestFindOnThisMachine(t *testing.T) {
	got, err := Find(context.Background())
	if errors.Is(err, ErrNotFound) && os.Getenv("CI") == "" {
		t.Skipf("no Python with grpc on this machine (set CI to make this fatal): %v", err)
	}
	require.NoError(t, err)
	assert.Regexp(t, `^3\.\d+\.\d+$`, got.Version)
	t.Logf("found %s (Python %s)", got.Path, got.Version)
}

// Probe reports the versions of grpcio and protobuf with Python's.
func TestProbeReportsThePackagesVersions(t *testing.T) {
	p := fake(t, t.TempDir(), "python3", fakeGood, "3.12.1 1.60.0 4.25.1")
	got, err := Probe(context.Background(), p)
	require.NoError(t, err)
	assert.Equal(t, Interpreter{Path: p, Version: "3.12.1", GRPC: "1.60.0", Protobuf: "4.25.1"}, got)
	_, err = Probe(context.Background(), fake(t, t.TempDir(), "python3", fakeBad, ""))
	assert.ErrorContains(t, err, "No module named 'grpc'")
}
