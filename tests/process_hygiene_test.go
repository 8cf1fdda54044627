//go:build linux

package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/instance"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// readRegistry reads an instance's process registry file.
func readRegistry(t *testing.T, dataDir, inst string) procreg.Snapshot {
	t.Helper()
	s, _, err := procreg.OpenStore(filepath.Join(dataDir, inst, "processes.db"), testutil.QuietLogger(t))
	require.NoError(t, err)
	snap, err := s.Read()
	require.NoError(t, err)
	return snap
}

// processesOfInstance lists live processes carrying token on their command line.
func processesOfInstance(t *testing.T, token string) []int {
	t.Helper()
	list, err := procs.System.Processes(t.Context())
	require.NoError(t, err)
	var out []int
	for _, p := range list {
		if v, ok := procs.FlagValue(p.Cmdline, "--snakepit-instance-token"); ok && v == token && !p.Zombie {
			out = append(out, p.PID)
		}
	}
	return out
}

func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	p, err := procs.System.Process(t.Context(), pid)
	require.NoError(t, err)
	return p.Cmdline
}

func TestRegistryRecordsEveryWorkerAndForgetsTheRunAtStop(t *testing.T) {
	data := t.TempDir()
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "hyg", Size: 2}}, DataDir: data, InstanceName: "hyg-a"})
	inst, err := instance.Resolve(data, "hyg-a", "")
	require.NoError(t, err)

	snap := readRegistry(t, data, "hyg-a")
	require.Len(t, snap.Runs, 1)
	require.Equal(t, app.RunID(), snap.Runs[0].RunID)
	require.Equal(t, os.Getpid(), snap.Runs[0].HostPID)
	pids := testutil.ProcessesOfRun(app.RunID())
	require.Len(t, pids, 2)
	var recorded []int
	for _, e := range snap.Entries {
		require.Equal(t, procreg.Active, e.Status, "a ready worker's entry is on disk and active")
		require.Equal(t, e.OSPid, e.PGID, "each worker leads its own process group")
		require.Equal(t, app.RunID(), e.RunID)
		recorded = append(recorded, e.OSPid)
	}
	require.ElementsMatch(t, pids, recorded)
	for _, pid := range pids {
		argv := cmdline(t, pid)
		for flag, want := range map[string]string{
			"--snakepit-run-id": app.RunID(), "--snakepit-instance-name": "hyg-a", "--snakepit-instance-token": inst.Token,
		} {
			got, ok := procs.FlagValue(argv, flag)
			require.True(t, ok, "%s on %v", flag, argv)
			require.Equal(t, want, got, flag)
		}
	}

	stopAndCheck(t, app)
	snap = readRegistry(t, data, "hyg-a")
	require.Empty(t, snap.Entries, "no stale entries after a clean stop")
	require.Empty(t, snap.Runs)
	_, atStop := app.CleanupReports()
	require.Empty(t, atStop.Killed, "the workers stopped themselves; cleanup found nothing")
	require.Empty(t, processesOfInstance(t, inst.Token))
}

// fakeOrphan starts a real Python worker server detached from this process
// (its parent exits, so it is reparented), carrying the given markers, with
// no lifeline. It returns its pid; cleanup kills it by pid if still alive.
func fakeOrphan(t *testing.T, script, run, instName, token string) int {
	t.Helper()
	py := testutil.Python(t)
	root := testutil.RepoRoot(t)
	args := []string{py.Path, "-u", filepath.Join(root, "priv", "python", script), "--adapter", snakepit.DefaultAdapter, "--port", "0", "--lifeline", "none"}
	if run != "" {
		args = append(args, "--snakepit-run-id", run)
	}
	args = append(args, "--snakepit-instance-name", instName, "--snakepit-instance-token", token)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + a + "'"
	}
	sh := exec.Command("/bin/sh", "-c", strings.Join(quoted, " ")+" </dev/null >/dev/null 2>&1 & echo $!")
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := sh.Output()
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	t.Cleanup(func() {
		if procs.Alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	require.Eventually(t, func() bool {
		p, err := procs.System.Process(t.Context(), pid)
		return err == nil && p.PPID != os.Getpid() && procs.HasScript(p.Cmdline, []string{script})
	}, 5*time.Second, 10*time.Millisecond)
	return pid
}

func TestStartupCleansWhatEarlierRunsLeft(t *testing.T) {
	data := t.TempDir()
	inst, err := instance.Resolve(data, "hyg-b", "")
	require.NoError(t, err)

	registered := fakeOrphan(t, "grpc_server.py", "oldrun001", inst.Name, inst.Token)      // in the registry
	rogue := fakeOrphan(t, "grpc_server_threaded.py", "oldrun002", inst.Name, inst.Token)  // only in the process table
	stranger := fakeOrphan(t, "grpc_server.py", "oldrun003", "hyg-other", "someone-elses") // another instance
	if p, _ := procs.System.Process(t.Context(), rogue); p.PPID != 1 {
		t.Skipf("orphans are reparented to pid %d (a subreaper), not init: the rogue sweep rightly leaves them", p.PPID)
	}
	sleeper := exec.Command("sleep", "60") // a stranger that now holds a pid the registry names
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })

	store, _, err := procreg.OpenStore(inst.RegistryPath(), testutil.QuietLogger(t))
	require.NoError(t, err)
	deadHost := exec.Command("true")
	require.NoError(t, deadHost.Run()) // its pid is free: a host that is gone
	script := filepath.Join(testutil.RepoRoot(t), "priv", "python", "grpc_server.py")
	entry := func(worker string, pid int) procreg.Entry {
		return procreg.Entry{Key: procreg.EntryKey("oldrun001", worker, 1), RunID: "oldrun001", WorkerID: worker,
			Status: procreg.Active, OSPid: pid, PGID: pid, Script: script,
			HostPID: deadHost.Process.Pid, HostStart: time.Now().Add(-time.Hour).UnixMilli()}
	}
	e1, e2 := entry("w1", registered), entry("w2", sleeper.Process.Pid)
	require.NoError(t, store.Apply([]procreg.Op{
		{PutRun: &procreg.Run{RunID: "oldrun001", HostPID: deadHost.Process.Pid}},
		{Put: &e1}, {Put: &e2},
	}))

	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "hyg", Size: 1}}, DataDir: data, InstanceName: "hyg-b"})
	atStart, _ := app.CleanupReports()
	var killed []int
	for _, k := range atStart.Killed {
		killed = append(killed, k.PID)
		require.Contains(t, []snakepit.KillOutcome{snakepit.KillTerminated, snakepit.KillKilled}, k.Outcome)
	}
	require.ElementsMatch(t, []int{registered, rogue}, killed)
	require.False(t, procs.Alive(registered))
	require.False(t, procs.Alive(rogue))
	require.True(t, procs.Alive(stranger), "another instance's process is never touched")
	require.True(t, procs.Alive(sleeper.Process.Pid), "a reused pid is forgotten, not killed")
	require.Equal(t, 2, atStart.Forgotten)

	snap := readRegistry(t, data, "hyg-b")
	for _, e := range snap.Entries {
		require.Equal(t, app.RunID(), e.RunID, "only this run's entries remain")
	}
	require.Len(t, snap.Runs, 1)
	_ = syscall.Kill(stranger, syscall.SIGKILL)
}

// buildCrashHost builds the test helper host binary.
func buildCrashHost(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crashhost")
	build := exec.Command("go", "build", "-o", bin, "./tests/testdata/crashhost")
	build.Dir = testutil.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)
	return bin
}

type crashHost struct {
	cmd      *exec.Cmd
	stderr   *testutil.SyncBuffer
	RunID    string `json:"run_id"`
	Pids     []int  `json:"pids"`
	Detached int    `json:"detached"`
	Zygote   int    `json:"zygote"`
	ShmDir   string `json:"shm_dir"`
}

func startCrashHost(t *testing.T, bin, data, inst string, workers int, extra ...string) *crashHost {
	t.Helper()
	root := testutil.RepoRoot(t)
	cmd := exec.Command(bin, append([]string{"-workers", strconv.Itoa(workers)}, extra...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "SNAKEPIT_PRIV_DIR="+filepath.Join(root, "priv", "python"),
		"SNAKEPIT_DATA_DIR="+data, "SNAKEPIT_INSTANCE_NAME="+inst)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &testutil.SyncBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h := &crashHost{cmd: cmd, stderr: stderr}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the host's own group, whatever happened
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("crash host stderr:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "host output: %s", stderr.String())
	require.NoError(t, json.Unmarshal([]byte(line), h))
	require.Len(t, h.Pids, workers)
	return h
}

func TestHostSIGKILLLeavesNoWorkerAndTheNextStartClearsTheRegistry(t *testing.T) {
	testutil.Python(t)
	bin := buildCrashHost(t)
	data := t.TempDir()
	// The hosts' temp dir, short (unix socket paths are limited): what a
	// dead host leaves there is checked.
	tmp, err := os.MkdirTemp("", "sph")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	inst := "crash-" + strconv.Itoa(os.Getpid())
	host := startCrashHost(t, bin, data, inst, 3)
	for _, pid := range host.Pids {
		require.True(t, procs.Alive(pid))
	}
	require.Len(t, readRegistry(t, data, inst).Entries, 3, "entries are durable once workers are ready")
	// A frozen worker cannot read its lifeline: only the parent-death
	// signal (SIGKILL) can end it.
	require.NoError(t, syscall.Kill(host.Pids[0], syscall.SIGSTOP))

	killed := time.Now()
	require.NoError(t, syscall.Kill(host.cmd.Process.Pid, syscall.SIGKILL))
	var gone time.Duration
	for {
		alive := 0
		for _, pid := range host.Pids {
			if procs.Alive(pid) {
				alive++
			}
		}
		if alive == 0 {
			gone = time.Since(killed)
			break
		}
		require.Less(t, time.Since(killed), 2*time.Second, "%d of %d workers still alive 2 s after the host was SIGKILLed", alive, len(host.Pids))
		time.Sleep(time.Millisecond)
	}
	t.Logf("host SIGKILL → last of %d workers gone: %s", len(host.Pids), gone)
	require.Empty(t, testutil.ProcessesOfRun(host.RunID))

	// The dead host's entries and its run directory (its workers' ready
	// files and sockets) are still there; the next start of the instance
	// finds and clears them.
	snap := readRegistry(t, data, inst)
	require.Len(t, snap.Entries, 3)
	// Its run directory is left with the frozen worker's directory at least
	// (workers that saw their lifeline close may have removed their own
	// socket before the parent-death signal).
	left, err := filepath.Glob(filepath.Join(tmp, "spr-"+host.RunID+"-*", "owner.json"))
	require.NoError(t, err)
	require.Len(t, left, 1, "the dead host's run directory")
	workerDirs, err := filepath.Glob(filepath.Join(filepath.Dir(left[0]), "spw-*"))
	require.NoError(t, err)
	require.NotEmpty(t, workerDirs, "the dead host's worker directories")
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "crash", Size: 1}}, DataDir: data, InstanceName: inst})
	atStart, _ := app.CleanupReports()
	require.Equal(t, 3, atStart.Forgotten)
	require.Empty(t, atStart.Killed, "nothing was left to kill")
	left, err = filepath.Glob(filepath.Join(tmp, "spr-"+host.RunID+"-*"))
	require.NoError(t, err)
	require.Empty(t, left, "the dead host's run directory is removed at the next start")
	snap = readRegistry(t, data, inst)
	require.Len(t, snap.Runs, 1)
	require.Equal(t, app.RunID(), snap.Runs[0].RunID)
	for _, e := range snap.Entries {
		require.Equal(t, app.RunID(), e.RunID)
	}
	stopAndCheck(t, app)
	all, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, all, "a clean stop leaves nothing in the temp dir")
}

func TestStressStartKillStopCycles(t *testing.T) {
	data := t.TempDir()
	var token string
	for cycle := range 4 {
		app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "stress", Size: 3}}, DataDir: data, InstanceName: "stress"})
		if token == "" {
			inst, err := instance.Resolve(data, "stress", "")
			require.NoError(t, err)
			token = inst.Token
		}
		pids := testutil.ProcessesOfRun(app.RunID())
		require.Len(t, pids, 3, "cycle %d", cycle)
		// Kill some workers (the supervisor replaces them), then stop at once,
		// sometimes while the replacements are still starting.
		for _, pid := range pids[:1+cycle%3] {
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		}
		if cycle%2 == 0 {
			waitStats(t, app, "stress", "replacements ready", func(s statsView) bool { return s.Ready == 3 && s.Restarts >= uint64(1+cycle%3) })
		}
		stopAndCheck(t, app)
	}
	require.Empty(t, processesOfInstance(t, token), "no process of the instance is left")
	snap := readRegistry(t, data, "stress")
	require.Empty(t, snap.Entries, "no stale entries")
	require.Empty(t, snap.Runs)
}

func TestCorruptRegistryFileIsMovedAsideAndTheAppStarts(t *testing.T) {
	data := t.TempDir()
	inst, err := instance.Resolve(data, "corrupt", "")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(inst.RegistryPath(), []byte(strings.Repeat("garbage ", 4096)), 0o600))
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "c", Size: 1}}, DataDir: data, InstanceName: "corrupt"})
	moved, err := filepath.Glob(inst.RegistryPath() + ".corrupt-*")
	require.NoError(t, err)
	require.Len(t, moved, 1, "the unreadable file is kept aside")
	snap := readRegistry(t, data, "corrupt")
	require.Len(t, snap.Entries, 1, "the new file records the worker")
	require.Equal(t, app.RunID(), snap.Entries[0].RunID)
}

// The Python side's own heartbeat (upstream's flags) still works: dependent
// workers exit when the host stops answering — here the host is frozen, so
// neither the lifeline nor the parent-death signal can end them.
func TestDependentPythonWorkersExitWhenTheHostStopsAnswering(t *testing.T) {
	testutil.Python(t)
	bin := buildCrashHost(t)
	host := startCrashHost(t, bin, t.TempDir(), "hb", 2, "-python-heartbeat")
	// Each worker logs its answered heartbeats (the host's log shows each
	// record with the worker's pid): after three, it is still running.
	for _, pid := range host.Pids {
		require.Eventually(t, func() bool {
			return regexp.MustCompile(fmt.Sprintf(`heartbeat 3 answered[^\n]*python_pid=%d`, pid)).MatchString(host.stderr.String())
		}, 10*time.Second, 10*time.Millisecond, "worker %d's third heartbeat answered", pid)
		require.True(t, procs.Alive(pid), "a worker whose host answers keeps running")
	}
	require.NoError(t, syscall.Kill(host.cmd.Process.Pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(host.cmd.Process.Pid, syscall.SIGCONT) })
	require.Eventually(t, func() bool {
		for _, pid := range host.Pids {
			if procs.Alive(pid) {
				return false
			}
		}
		return true
	}, 10*time.Second, 10*time.Millisecond, "dependent workers exit when their heartbeats go unanswered")
}

// A process a tool started in a session of its own leaves the worker's
// process group; it carries the run's markers in its environment. The stop
// pass ends it; after a host crash, the next start does.
func TestWhatToolsLeftBehindIsFoundByItsEnvironment(t *testing.T) {
	t.Run("at stop", func(t *testing.T) {
		app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "d", Size: 1}}, DataDir: t.TempDir()})
		res, err := app.Execute(t.Context(), "spawn_detached", map[string]any{"seconds": 60})
		require.NoError(t, err)
		var pid int
		require.NoError(t, json.Unmarshal(res.JSON, &pid))
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
		require.True(t, procs.Alive(pid))
		stopAndCheck(t, app)
		require.Eventually(t, func() bool { return !procs.Alive(pid) }, 5*time.Second, 10*time.Millisecond)
		_, atStop := app.CleanupReports()
		var killed []int
		for _, k := range atStop.Killed {
			killed = append(killed, k.PID)
		}
		require.Contains(t, killed, pid, "the stop pass ended it")
	})
	t.Run("after a host crash", func(t *testing.T) {
		testutil.Python(t)
		bin := buildCrashHost(t)
		data := t.TempDir()
		host := startCrashHost(t, bin, data, "left", 1, "-detach")
		require.NotZero(t, host.Detached)
		t.Cleanup(func() { _ = syscall.Kill(host.Detached, syscall.SIGKILL) })
		require.NoError(t, syscall.Kill(host.cmd.Process.Pid, syscall.SIGKILL))
		require.Eventually(t, func() bool { return !procs.Alive(host.Pids[0]) }, 5*time.Second, 5*time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		require.True(t, procs.Alive(host.Detached), "the detached process outlived its worker and host")
		if p, err := procs.System.Process(t.Context(), host.Detached); err == nil && p.PPID != 1 {
			t.Skipf("orphans are reparented to pid %d (a subreaper), not init: cleanup rightly leaves them", p.PPID)
		}

		app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "left", Size: 1}}, DataDir: data, InstanceName: "left"})
		require.False(t, procs.Alive(host.Detached), "the next start ended it")
		atStart, _ := app.CleanupReports()
		found := false
		for _, k := range atStart.Killed {
			found = found || (k.PID == host.Detached && k.RunID == host.RunID)
		}
		require.True(t, found, "reported with the dead run's id: %+v", atStart.Killed)
	})
}
