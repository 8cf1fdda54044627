//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/instance"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/rundir"
	"github.com/snakepit-go/snakepit/internal/shm"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// detached starts a Python sleeper whose command line looks like a worker
// of run with token, reparented away from this process.
func detached(t *testing.T, py, run, name, token string) int {
	t.Helper()
	script := "'" + py + "' -c 'import time; time.sleep(60)' /x/grpc_server.py --snakepit-run-id " + run +
		" --snakepit-instance-name " + name + " --snakepit-instance-token " + token
	sh := exec.Command("/bin/sh", "-c", script+" </dev/null >/dev/null 2>&1 & echo $!")
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := sh.Output()
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

func TestCleanupCommand(t *testing.T) {
	py := testutil.Python(t).Path
	data := t.TempDir()
	inst, err := instance.Resolve(data, "ops", "")
	require.NoError(t, err)
	orphan := detached(t, py, "deadrun1", "ops", inst.Token)
	if p, err := procs.System.Process(t.Context(), orphan); err == nil && p.PPID != 1 {
		t.Skipf("orphans are reparented to pid %d (a subreaper), not init", p.PPID)
	}
	// A worker of a live host (this test process) that the registry knows.
	live := exec.Command(py, "-c", "import time; time.sleep(60)", "/x/grpc_server.py",
		"--snakepit-run-id", "liverun1", "--snakepit-instance-name", "ops", "--snakepit-instance-token", inst.Token)
	require.NoError(t, live.Start())
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	me, err := procs.System.Process(t.Context(), os.Getpid())
	require.NoError(t, err)
	store, _, err := procreg.OpenStore(inst.RegistryPath(), nil)
	require.NoError(t, err)
	require.NoError(t, store.Apply([]procreg.Op{
		{PutRun: &procreg.Run{RunID: "liverun1", HostPID: os.Getpid(), HostStart: me.CreateTime}},
		{Put: &procreg.Entry{Key: "liverun1/w1/1", RunID: "liverun1", WorkerID: "w1", Status: procreg.Active,
			OSPid: live.Process.Pid, Script: "grpc_server.py", HostPID: os.Getpid(), HostStart: me.CreateTime}},
	}))
	require.Eventually(t, func() bool {
		p, err := procs.System.Process(t.Context(), orphan)
		return err == nil && procs.HasScript(p.Cmdline, []string{"grpc_server.py"})
	}, 5*time.Second, 10*time.Millisecond)

	// Run directories in the temp dir: a dead host's and a live one's.
	tmp, err := os.MkdirTemp("", "spt")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	deadDir, err := rundir.Create("", rundir.Owner{RunID: "deadrun1", Instance: "ops", HostPID: orphan, HostStart: 1})
	require.NoError(t, err)
	liveDir, err := rundir.Create("", rundir.Owner{RunID: "liverun1", Instance: "ops", HostPID: os.Getpid(), HostStart: me.CreateTime})
	require.NoError(t, err)
	// And the dead host's shared-memory directory with a segment in it.
	deadShm := ""
	if base := shm.Base(); base != "" {
		deadShm, err = rundir.Create(base, rundir.Owner{RunID: "deadrun1", Instance: "ops", HostPID: orphan, HostStart: 1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = os.RemoveAll(deadShm) })
		require.NoError(t, os.WriteFile(filepath.Join(deadShm, "q."+strings.Repeat("0", 64)), []byte("x"), 0o600))
	}

	var out, errOut bytes.Buffer
	args := []string{"cleanup", "-instance", "ops", "-data-dir", data}
	require.Equal(t, 0, run(append(args, "-dry-run"), &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "would end pid "+strconv.Itoa(orphan))
	require.True(t, procs.Alive(orphan), "a dry run ends nothing")

	out.Reset()
	require.Equal(t, 0, run(args, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "ended pid "+strconv.Itoa(orphan))
	require.Contains(t, out.String(), "1 killed, 0 survivors")
	require.Eventually(t, func() bool { return !procs.Alive(orphan) }, 5*time.Second, 10*time.Millisecond)
	require.True(t, procs.Alive(live.Process.Pid), "a live host's worker is never touched")
	require.Contains(t, out.String(), "removed "+deadDir)
	require.NoDirExists(t, deadDir, "a dead host's run directory is removed")
	require.DirExists(t, liveDir, "a live host's is kept")
	if deadShm != "" {
		require.NoDirExists(t, deadShm, "a dead host's shared-memory directory is removed")
	}
	snap, err := store.Read()
	require.NoError(t, err)
	require.Len(t, snap.Entries, 1, "a live host's entry stays")

	require.Equal(t, 1, run([]string{"cleanup", "-instance", "nosuch", "-data-dir", data}, &out, &errOut))
	require.Contains(t, errOut.String(), `no instance "nosuch"`)

}
