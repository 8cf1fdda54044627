package pyenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBridge writes a snakepit_bridge package under root; version "" writes
// no version.py, launch false no launch/grpc_server.py.
func fakeBridge(t *testing.T, root, version string, launch bool) {
	t.Helper()
	pkg := filepath.Join(root, "snakepit_bridge")
	require.NoError(t, os.MkdirAll(filepath.Join(pkg, "launch"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "__init__.py"), []byte("raise SystemExit('the probe must not import the package')\n"), 0o644))
	if version != "" {
		require.NoError(t, os.WriteFile(filepath.Join(pkg, "version.py"), []byte(version), 0o644))
	}
	if launch {
		require.NoError(t, os.WriteFile(filepath.Join(pkg, "launch", "grpc_server.py"), nil, 0o644))
	}
}

func TestFindInstalledBridge(t *testing.T) {
	python, err := Find(t.Context())
	if err != nil {
		t.Skip(err)
	}
	t.Setenv("PYTHONPATH", "")
	for _, tc := range []struct {
		name     string
		version  string
		launch   bool
		want     InstalledBridge
		notFound bool
	}{
		{name: "ours", version: "__version__ = \"9.9.9\"\nPROTOCOL_VERSION = 7\n", launch: true,
			want: InstalledBridge{Version: "9.9.9", Protocol: 7}},
		{name: "no version module", launch: true, want: InstalledBridge{Protocol: 0}},
		{name: "no worker server", version: "__version__ = \"1\"\nPROTOCOL_VERSION = 1\n", notFound: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			fakeBridge(t, root, tc.version, tc.launch)
			got, err := FindInstalledBridge(t.Context(), python.Path, []string{root})
			if tc.notFound {
				require.ErrorIs(t, err, ErrBridgeNotInstalled)
				return
			}
			require.NoError(t, err)
			tc.want.Dir = filepath.Join(root, "snakepit_bridge")
			assert.Equal(t, tc.want, got)
			assert.Equal(t, filepath.Join(root, "snakepit_bridge", "launch", "grpc_server.py"), got.Script(false))
		})
	}
	t.Run("absent", func(t *testing.T) {
		_, err := FindInstalledBridge(t.Context(), python.Path, []string{t.TempDir()})
		require.True(t, errors.Is(err, ErrBridgeNotInstalled), "%v", err)
	})
	t.Run("the working directory is not searched", func(t *testing.T) {
		planted := t.TempDir()
		fakeBridge(t, planted, "PROTOCOL_VERSION = 1\n", true)
		t.Chdir(planted)
		_, err := FindInstalledBridge(t.Context(), python.Path, nil)
		require.ErrorIs(t, err, ErrBridgeNotInstalled)
	})
}
