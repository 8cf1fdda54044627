//go:build linux

package tests

import (
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// ppid is a process's parent pid.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	p, err := procs.System.Process(t.Context(), pid)
	require.NoError(t, err)
	return p.PPID
}

func forkPool(name string, size int) snakepit.PoolConfig {
	return snakepit.PoolConfig{Name: name, Size: size, ForkServer: true}
}

func workerPids(t *testing.T, app *snakepit.App, pool string) []int {
	t.Helper()
	ws, err := app.Workers(t.Context(), pool)
	require.NoError(t, err)
	var pids []int
	for _, w := range ws {
		if w.OSPid > 0 {
			pids = append(pids, w.OSPid)
		}
	}
	return pids
}

func TestForkedWorkersServeAndAreTheZygotesChildren(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("fork"), Pools: []snakepit.PoolConfig{forkPool("fk", 3)}})
	fs, ok := app.ForkServer("fk")
	require.True(t, ok)
	require.True(t, fs.Ready)
	require.Positive(t, fs.PID)
	pids := workerPids(t, app, "fk")
	require.Len(t, pids, 3)
	// The first worker is spawned while the zygote starts (one cold start
	// to the first ready worker); the others are forked.
	parents := map[int]int{}
	for _, pid := range pids {
		parents[ppid(t, pid)]++
		pgid, err := syscall.Getpgid(pid)
		require.NoError(t, err)
		assert.Equal(t, pid, pgid, "worker %d leads its own process group", pid)
	}
	assert.Equal(t, map[int]int{fs.PID: 2, os.Getpid(): 1}, parents, "two forked by the zygote, one spawned by the host")
	for i := range 6 {
		res, err := app.Execute(t.Context(), "echo", map[string]any{"i": i}, snakepit.WithPool("fk"))
		require.NoError(t, err)
		assert.Contains(t, string(res.JSON), strconv.Itoa(i))
	}
	// A forked worker's secrets came over the zygote's socket: its
	// /proc/PID/environ (the zygote's, copied) holds none, but the markers.
	for _, pid := range pids {
		if ppid(t, pid) != fs.PID {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		require.NoError(t, err)
		assert.NotContains(t, string(env), "SNAKEPIT_SERVER_SECRET")
		assert.NotContains(t, string(env), "SNAKEPIT_WORKER_SECRET")
		assert.Contains(t, string(env), "SNAKEPIT_RUN_ID="+app.RunID())
	}
}

func TestAThreadProfilePoolForksToo(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("forkthr"), Pools: []snakepit.PoolConfig{
		{Name: "ft", Size: 2, ForkServer: true, Profile: snakepit.ProfileThread, Threads: 4}}})
	fs, _ := app.ForkServer("ft")
	forked := 0
	for _, pid := range workerPids(t, app, "ft") {
		if ppid(t, pid) == fs.PID {
			forked++
		}
	}
	assert.Equal(t, 1, forked)
	for range 4 {
		_, err := app.Execute(t.Context(), "ping", nil, snakepit.WithPool("ft"))
		require.NoError(t, err)
	}
}

func TestHostSIGKILLLeavesNoForkedWorkerNorZygote(t *testing.T) {
	testutil.Python(t)
	bin := buildCrashHost(t)
	data := t.TempDir()
	tmp, err := os.MkdirTemp("", "sph")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	inst := uniqueInstance("forkcrash")
	host := startCrashHost(t, bin, data, inst, 3, "-fork")
	require.Positive(t, host.Zygote)
	var forked []int
	for _, pid := range host.Pids {
		require.True(t, procs.Alive(pid))
		if ppid(t, pid) == host.Zygote {
			forked = append(forked, pid)
		}
	}
	require.Len(t, forked, len(host.Pids)-1, "all but the first worker were forked")
	// A stopped worker cannot read its lifeline: the zygote, told by its
	// parent-death signal, SIGKILLs it.
	require.NoError(t, syscall.Kill(forked[0], syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(forked[0], syscall.SIGKILL) })

	killed := time.Now()
	require.NoError(t, syscall.Kill(host.cmd.Process.Pid, syscall.SIGKILL))
	all := append([]int{host.Zygote}, host.Pids...)
	for {
		alive := 0
		for _, pid := range all {
			if procs.Alive(pid) {
				alive++
			}
		}
		if alive == 0 {
			break
		}
		require.Less(t, time.Since(killed), 2*time.Second, "%d of %d processes (zygote + workers) alive 2 s after the host was SIGKILLed", alive, len(all))
		time.Sleep(time.Millisecond)
	}
	t.Logf("host SIGKILL → zygote and %d forked workers gone: %s", len(host.Pids), time.Since(killed))
	require.Empty(t, testutil.ProcessesOfRun(host.RunID))
	require.Len(t, readRegistry(t, data, inst).Entries, 4, "the zygote and each forked worker had a registry entry")
}

func TestAZygoteCrashIsSurvived(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("forkz"), Pools: []snakepit.PoolConfig{forkPool("fz", 2)}})
	first, _ := app.ForkServer("fz")
	before := workerPids(t, app, "fz")
	require.NoError(t, syscall.Kill(first.PID, syscall.SIGKILL))

	// The workers outlive it and keep serving.
	for i := range 4 {
		_, err := app.Execute(t.Context(), "echo", map[string]any{"i": i}, snakepit.WithPool("fz"))
		require.NoError(t, err)
	}
	for _, pid := range before {
		assert.True(t, procs.Alive(pid), "worker %d outlived the zygote", pid)
	}
	// A new zygote is started, and a replaced worker is forked from it.
	var second snakepit.ForkServerInfo
	require.Eventually(t, func() bool {
		second, _ = app.ForkServer("fz")
		return second.Ready && second.PID != first.PID
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 2, second.Starts)
	require.NoError(t, syscall.Kill(before[0], syscall.SIGKILL))
	waitStats(t, app, "fz", "the killed worker replaced", func(s statsView) bool { return s.Restarts >= 1 && s.Ready == 2 })
	after := workerPids(t, app, "fz")
	require.Len(t, after, 2)
	replaced := 0
	for _, pid := range after {
		if pid != before[0] && pid != before[1] {
			replaced = pid
		}
	}
	require.NotZero(t, replaced)
	assert.Equal(t, second.PID, ppid(t, replaced), "the replacement was forked by the new zygote")
	// The worker whose zygote died is stopped like any other at Stop
	// (stopAndCheck: nothing of the run is left).
}

func TestAZygoteThatCannotImportTheAdapterFailsTheStartWithTheReason(t *testing.T) {
	testutil.Python(t)
	cfg := snakepit.Config{InstanceName: uniqueInstance("forkbad"), PrivDir: repoPriv(t), Logger: testutil.QuietLogger(t),
		Pools: []snakepit.PoolConfig{{Name: "fb", Size: 1, ForkServer: true, Adapter: "no_such_module_xyz.Adapter",
			ReconcileBackoff: time.Hour}}}
	app, err := snakepit.Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { stopAndCheck(t, app) })
	err = app.AwaitInitComplete(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no_such_module_xyz")
}

func TestStopDoesNotWaitForAFrozenZygote(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("forkfrz"), Pools: []snakepit.PoolConfig{
		{Name: "fz", Size: 2, ForkServer: true, ReadyTimeout: time.Minute, StopGrace: 500 * time.Millisecond}}})
	fs, _ := app.ForkServer("fz")
	require.NoError(t, syscall.Kill(fs.PID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(fs.PID, syscall.SIGKILL) })
	// A replacement now waits on the frozen zygote for its fork.
	pids := workerPids(t, app, "fz")
	require.NoError(t, syscall.Kill(pids[len(pids)-1], syscall.SIGKILL))
	waitStats(t, app, "fz", "the replacement starting", func(s statsView) bool { return s.Restarts >= 1 || s.Ready < 2 })
	time.Sleep(200 * time.Millisecond) // the replacement's fork request is out

	start := time.Now()
	stopAndCheck(t, app)
	took := time.Since(start)
	t.Logf("Stop with a fork waiting on a frozen zygote took %s", took.Round(time.Millisecond))
	assert.Less(t, took, 20*time.Second, "Stop does not wait out the replacement's ReadyTimeout (1 min)")
	assert.False(t, procs.Alive(fs.PID), "the frozen zygote is gone")
}
