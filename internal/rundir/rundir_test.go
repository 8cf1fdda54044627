package rundir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStale(t *testing.T) {
	alive := func(pid int, start int64) bool { return pid == 10 && start == 100 }
	for _, tc := range []struct {
		name string
		o    Owner
		want bool
	}{
		{"dead host of our instance", Owner{RunID: "r1", Instance: "i", HostPID: 11, HostStart: 100}, true},
		{"pid reused by another process", Owner{RunID: "r1", Instance: "i", HostPID: 10, HostStart: 99}, true},
		{"live host", Owner{RunID: "r1", Instance: "i", HostPID: 10, HostStart: 100}, false},
		{"another instance", Owner{RunID: "r1", Instance: "j", HostPID: 11}, false},
		{"the current run", Owner{RunID: "cur", Instance: "i", HostPID: 11}, false},
		{"no host pid", Owner{RunID: "r1", Instance: "i"}, false},
	} {
		require.Equal(t, tc.want, Stale(tc.o, "i", "cur", alive), tc.name)
	}
}

func TestCreateAndSweep(t *testing.T) {
	base := t.TempDir()
	dead := func(int, int64) bool { return false }
	mine, err := Create(base, Owner{RunID: "old", Instance: "i", HostPID: 42, HostStart: 1})
	require.NoError(t, err)
	st, err := os.Stat(mine)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	require.NoError(t, os.MkdirAll(filepath.Join(mine, "w-1"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(mine, "w-1", "ready"), []byte("1"), 0o600))
	other, err := Create(base, Owner{RunID: "old2", Instance: "j", HostPID: 42})
	require.NoError(t, err)
	current, err := Create(base, Owner{RunID: "cur", Instance: "i", HostPID: 42})
	require.NoError(t, err)
	noOwner := filepath.Join(base, Prefix+"x-1")
	require.NoError(t, os.Mkdir(noOwner, 0o700))
	link := filepath.Join(base, Prefix+"link")
	require.NoError(t, os.Symlink(mine, link))
	unrelated := filepath.Join(base, "something-else")
	require.NoError(t, os.Mkdir(unrelated, 0o700))

	removed, err := Sweep(base, "i", "cur", dead)
	require.NoError(t, err)
	require.Equal(t, []string{mine}, removed)
	for _, kept := range []string{other, current, noOwner, link, unrelated} {
		_, err := os.Lstat(kept)
		require.NoError(t, err, "%s must stay", kept)
	}
}
