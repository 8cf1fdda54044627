//go:build unix

package procs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// child is a process a test started via Start. Cleanup kills its process
// group (which the test created) unless the test reaped it already.
type child struct {
	cmd     *exec.Cmd
	release func()
	stdout  *bufio.Reader
	once    sync.Once
	waitErr error
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: %v", name, err)
	}
	return path
}

// startChild starts name args via Start with a SIGKILL parent-death signal.
// With pipe set, the child's stdout can be read line by line.
func startChild(t *testing.T, pipe bool, name string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(lookPath(t, name), args...)
	c := &child{cmd: cmd}
	if pipe {
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		c.stdout = bufio.NewReader(out)
	}
	release, err := Start(cmd, SpawnOptions{ParentDeathSignal: syscall.SIGKILL})
	require.NoError(t, err)
	c.release = release
	t.Cleanup(func() {
		// Our unreaped child keeps its group id reserved, so this signals
		// nothing but the group we created.
		if !c.reaped() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		_ = c.wait()
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// reaped reports whether wait has run.
func (c *child) reaped() bool { return c.cmd.ProcessState != nil }

// wait reaps the child and releases it, once.
func (c *child) wait() error {
	c.once.Do(func() {
		c.waitErr = c.cmd.Wait()
		c.release()
	})
	return c.waitErr
}

// line reads one line of the child's stdout.
func (c *child) line(t *testing.T) string {
	t.Helper()
	s, err := c.stdout.ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(s)
}

func TestStartOwnGroupAndTerminate(t *testing.T) {
	tests := []struct {
		name   string
		target func(pid int) Target
	}{
		{"group", func(pid int) Target { return Target{PGID: pid} }},
		{"pid", func(pid int) Target { return Target{PID: pid} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startChild(t, false, "sleep", "30")
			pid := c.pid()
			pgid, err := syscall.Getpgid(pid)
			require.NoError(t, err)
			require.Equal(t, pid, pgid, "child leads its own group")
			require.True(t, Alive(pid))
			require.True(t, GroupAlive(pid))

			outcome, err := Terminate(context.Background(), tt.target(pid), time.Second)
			require.NoError(t, err)
			require.Equal(t, Terminated, outcome)
			// Terminate returned before our Wait: the child may be a zombie.
			require.False(t, Alive(pid))
			require.False(t, GroupAlive(pid))

			var exitErr *exec.ExitError
			require.ErrorAs(t, c.wait(), &exitErr)
			require.Equal(t, syscall.SIGTERM, exitErr.Sys().(syscall.WaitStatus).Signal())
			require.False(t, Alive(pid))
			_, err = System.Process(context.Background(), pid)
			require.ErrorIs(t, err, ErrNotFound)
		})
	}
}

func TestTerminateEscalatesToKill(t *testing.T) {
	c := startChild(t, true, "sh", "-c", `trap "" TERM; sleep 30 & echo $!; wait`)
	shell := c.pid()
	sleeper, err := strconv.Atoi(c.line(t))
	require.NoError(t, err)
	require.True(t, Alive(sleeper))

	outcome, err := Terminate(context.Background(), Target{PGID: shell}, 200*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, Killed, outcome)
	require.False(t, GroupAlive(shell))
	require.False(t, Alive(shell))
	require.False(t, Alive(sleeper))

	var exitErr *exec.ExitError
	require.ErrorAs(t, c.wait(), &exitErr)
	require.Equal(t, syscall.SIGKILL, exitErr.Sys().(syscall.WaitStatus).Signal())
}

func TestTerminateGraceZeroKillsAtOnce(t *testing.T) {
	c := startChild(t, false, "sleep", "30")
	outcome, err := Terminate(context.Background(), Target{PGID: c.pid()}, 0)
	require.NoError(t, err)
	require.Equal(t, Killed, outcome)
	var exitErr *exec.ExitError
	require.ErrorAs(t, c.wait(), &exitErr)
	require.Equal(t, syscall.SIGKILL, exitErr.Sys().(syscall.WaitStatus).Signal())
}

func TestTerminateReachesGrandchild(t *testing.T) {
	c := startChild(t, true, "sh", "-c", `sleep 30 & echo $!; wait`)
	grandchild, err := strconv.Atoi(c.line(t))
	require.NoError(t, err)
	require.True(t, Alive(grandchild))
	pgid, err := syscall.Getpgid(grandchild)
	require.NoError(t, err)
	require.Equal(t, c.pid(), pgid, "the grandchild is in the child's group")

	outcome, err := Terminate(context.Background(), Target{PGID: c.pid()}, time.Second)
	require.NoError(t, err)
	require.Equal(t, Terminated, outcome)
	require.False(t, Alive(grandchild))
	_ = c.wait()
}

func TestTerminateGone(t *testing.T) {
	c := startChild(t, false, "sleep", "0")
	require.NoError(t, c.wait())
	pid := c.pid()
	tests := []struct {
		name   string
		target Target
	}{
		{"dead pid", Target{PID: pid}},
		{"dead group", Target{PGID: pid}},
		{"zero target", Target{}},
		{"negative pid", Target{PID: -5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcome, err := SystemKiller.Terminate(context.Background(), tt.target, time.Second)
			require.NoError(t, err)
			require.Equal(t, Gone, outcome)
		})
	}
}

func TestCheckTargetRefusesInitAndSelf(t *testing.T) {
	// checkTarget is tested directly: a Terminate that got it wrong would
	// signal processes this test did not start.
	own, err := syscall.Getpgid(0)
	require.NoError(t, err)
	for _, target := range []Target{{PGID: 1}, {PID: 1}, {PID: os.Getpid()}, {PGID: own}} {
		require.Error(t, checkTarget(target), "%v", target)
	}
	for _, target := range []Target{{}, {PID: 12345}, {PGID: 12345}, {PID: 1, PGID: 12345}} {
		require.NoError(t, checkTarget(target), "%v", target)
	}
}

func TestZombieCountsAsDead(t *testing.T) {
	c := startChild(t, false, "sleep", "30")
	pid := c.pid()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool { return !Alive(pid) }, 5*time.Second, 10*time.Millisecond, "killed child still alive")
	if runtime.GOOS == "linux" {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
		require.NoError(t, err, "the unreaped child keeps its /proc entry")
	}
	require.False(t, GroupAlive(pid), "a group of zombies is dead")
	row, err := System.Process(context.Background(), pid)
	require.NoError(t, err)
	require.True(t, row.Zombie)
	outcome, err := Terminate(context.Background(), Target{PGID: pid}, time.Second)
	require.NoError(t, err)
	require.Equal(t, Gone, outcome)
	_ = c.wait()
}

func TestAliveBounds(t *testing.T) {
	require.False(t, Alive(0))
	require.False(t, Alive(-1))
	require.True(t, Alive(os.Getpid()))
	require.False(t, GroupAlive(0))
	require.False(t, GroupAlive(1))
	require.False(t, GroupAlive(-3))
	own, err := syscall.Getpgid(0)
	require.NoError(t, err)
	if own > 1 {
		require.True(t, GroupAlive(own))
	}
}

func TestWaitDead(t *testing.T) {
	require.True(t, waitDead(context.Background(), time.Second, func() bool { return false }))
	calls := 0
	require.True(t, waitDead(context.Background(), 5*time.Second, func() bool { calls++; return calls < 4 }))
	require.Equal(t, 4, calls)
	require.False(t, waitDead(context.Background(), 20*time.Millisecond, func() bool { return true }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, waitDead(ctx, time.Hour, func() bool { return true }), "an ended context stops the wait")
}

func TestListerSelf(t *testing.T) {
	rows, err := System.Processes(context.Background())
	require.NoError(t, err)
	var self *Proc
	for i := range rows {
		if rows[i].PID == os.Getpid() {
			self = &rows[i]
		}
	}
	require.NotNil(t, self, "own process listed")
	pgid, err := syscall.Getpgid(0)
	require.NoError(t, err)
	require.Equal(t, os.Getppid(), self.PPID)
	require.Equal(t, pgid, self.PGID)
	require.NotEmpty(t, self.Cmdline)
	require.False(t, self.Zombie)
	require.Positive(t, self.CreateTime)

	row, err := System.Process(context.Background(), os.Getpid())
	require.NoError(t, err)
	require.Equal(t, self.Cmdline, row.Cmdline)
	require.Equal(t, self.CreateTime, row.CreateTime)
}

func TestListerProcess(t *testing.T) {
	c := startChild(t, false, "sleep", "30")
	row, err := System.Process(context.Background(), c.pid())
	require.NoError(t, err)
	require.Equal(t, c.pid(), row.PID)
	require.Equal(t, os.Getpid(), row.PPID)
	require.Equal(t, c.pid(), row.PGID)
	require.Len(t, row.Cmdline, 2)
	require.Equal(t, "sleep", filepath.Base(row.Cmdline[0]))
	require.Equal(t, "30", row.Cmdline[1])
	require.Positive(t, row.CreateTime)
	require.InDelta(t, time.Now().UnixMilli(), row.CreateTime, float64(time.Minute.Milliseconds()))
	require.False(t, row.Zombie)

	rows, err := System.Processes(context.Background())
	require.NoError(t, err)
	found := false
	for _, r := range rows {
		found = found || r.PID == c.pid()
	}
	require.True(t, found, "started child listed")

	outcome, err := Terminate(context.Background(), Target{PGID: c.pid()}, time.Second)
	require.NoError(t, err)
	require.Equal(t, Terminated, outcome)
	_ = c.wait()
	_, err = System.Process(context.Background(), c.pid())
	require.ErrorIs(t, err, ErrNotFound)
}

func TestListerErrors(t *testing.T) {
	for _, pid := range []int{0, -1} {
		_, err := System.Process(context.Background(), pid)
		require.ErrorIs(t, err, ErrNotFound)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := System.Process(ctx, os.Getpid())
	require.ErrorIs(t, err, context.Canceled)
	_, err = System.Processes(ctx)
	require.ErrorIs(t, err, context.Canceled)
}

func TestStartError(t *testing.T) {
	cmd := exec.Command(filepath.Join(t.TempDir(), "no-such-binary"))
	release, err := Start(cmd, SpawnOptions{ParentDeathSignal: syscall.SIGKILL})
	require.Error(t, err)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Nil(t, release)
	require.Eventually(t, func() bool { return !spawnerRunning() }, 2*time.Second, 10*time.Millisecond, "spawner left running after a failed start")
}

func TestStartKeepsCallerAttrs(t *testing.T) {
	cmd := exec.Command(lookPath(t, "sleep"), "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	release, err := Start(cmd, SpawnOptions{})
	require.NoError(t, err)
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
		release()
	})
	require.True(t, cmd.SysProcAttr.Setsid, "caller's field kept")
	pgid, err := syscall.Getpgid(pid)
	require.NoError(t, err)
	require.Equal(t, pid, pgid, "a new session is a new group")

	outcome, err := Terminate(context.Background(), Target{PGID: pid}, time.Second)
	require.NoError(t, err)
	require.Equal(t, Terminated, outcome)
	_ = cmd.Wait()
	release()
	release() // second call is a no-op
}

func TestReleaseTwice(t *testing.T) {
	c := startChild(t, false, "sleep", "0")
	require.NoError(t, c.wait())
	c.release() // second call is a no-op
	require.Eventually(t, func() bool { return !spawnerRunning() }, 2*time.Second, 10*time.Millisecond)
}

// readPID reads one pid line from r.
func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	s, err := r.ReadString('\n')
	require.NoError(t, err, "helper output")
	pid, err := strconv.Atoi(strings.TrimSpace(s))
	require.NoError(t, err)
	return pid
}

func TestParentDeathSignal(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("parent-death signal is Linux only")
	}
	lookPath(t, "sleep")
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, mode := range []string{"direct", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			helper := exec.Command(exe, "-test.run=^$")
			helper.Env = append(os.Environ(), helperEnv+"="+mode)
			helper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			helper.Stderr = os.Stderr
			out, err := helper.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, helper.Start())
			hpid := helper.Process.Pid
			sleeper := 0
			sleeperDead := false
			t.Cleanup(func() {
				if helper.ProcessState == nil {
					_ = syscall.Kill(-hpid, syscall.SIGKILL) // the group we created
					_ = helper.Wait()
				}
				// The sleep leads its own group; kill it only while it still
				// is the helper's sleep (not a reused pid).
				if sleeper > 0 && !sleeperDead && Alive(sleeper) {
					if row, err := System.Process(context.Background(), sleeper); err == nil &&
						len(row.Cmdline) > 0 && filepath.Base(row.Cmdline[0]) == "sleep" && row.PGID == sleeper {
						_ = syscall.Kill(-sleeper, syscall.SIGKILL)
					}
				}
			})

			r := bufio.NewReader(out)
			sleeper = readPID(t, r)
			row, err := System.Process(context.Background(), sleeper)
			require.NoError(t, err)
			require.Equal(t, hpid, row.PPID, "the sleep is the helper's child")

			if mode == "goroutine" {
				// The spawning goroutine exits and takes its thread along. A
				// thread sends its children's parent-death signal on its way
				// out, before its /proc entry goes: once the entry is gone,
				// a signal would be pending or have killed the child.
				tid := readPID(t, r)
				task := fmt.Sprintf("/proc/%d/task/%d", hpid, tid)
				require.Eventually(t, func() bool { _, err := os.Stat(task); return os.IsNotExist(err) },
					5*time.Second, time.Millisecond, "the spawning thread ends")
			}
			require.True(t, Alive(sleeper), "child died before its parent")
			require.False(t, killPending(t, sleeper), "the child was sent SIGKILL")

			require.NoError(t, syscall.Kill(hpid, syscall.SIGKILL))
			_ = helper.Wait()
			sleeperDead = assert.Eventually(t, func() bool { return !Alive(sleeper) }, 2*time.Second, 10*time.Millisecond)
			require.True(t, sleeperDead, "child outlived its parent")
		})
	}
}

func TestSpawnerExitsAfterRelease(t *testing.T) {
	sleep := lookPath(t, "sleep")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	started := make(chan struct{}, n)
	proceed := make(chan struct{})
	for range n {
		wg.Go(func() {
			cmd := exec.Command(sleep, "30")
			release, err := Start(cmd, SpawnOptions{ParentDeathSignal: syscall.SIGKILL})
			if err != nil {
				errs <- err
				started <- struct{}{}
				return
			}
			started <- struct{}{}
			<-proceed
			// Our own child, unreaped: its pid is ours to signal.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				errs <- err
			}
			_ = cmd.Wait()
			release()
		})
	}
	for range n {
		<-started
	}
	require.True(t, spawnerRunning(), "spawner runs while children live")
	close(proceed)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return !spawnerRunning() }, 2*time.Second, 10*time.Millisecond, "spawner left running")

	// A Start after the spawner exited gets a fresh one; back to back, some
	// of these race the previous spawner's exit.
	for range 10 {
		cmd := exec.Command(sleep, "0")
		release, err := Start(cmd, SpawnOptions{ParentDeathSignal: syscall.SIGKILL})
		require.NoError(t, err)
		require.NoError(t, cmd.Wait())
		release()
	}
	require.Eventually(t, func() bool { return !spawnerRunning() }, 2*time.Second, 10*time.Millisecond, "spawner left running")
}

func TestStartWithoutDeathSignalSkipsSpawner(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux has a spawner")
	}
	require.Eventually(t, func() bool { return !spawnerRunning() }, 2*time.Second, 10*time.Millisecond)
	cmd := exec.Command(lookPath(t, "sleep"), "0")
	release, err := Start(cmd, SpawnOptions{})
	require.NoError(t, err)
	require.False(t, spawnerRunning())
	require.NoError(t, cmd.Wait())
	release()
}

// killPending reports whether SIGKILL is pending for process pid (its
// thread-group or own pending set in /proc/pid/status).
func killPending(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != "SigPnd" && k != "ShdPnd" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		require.NoError(t, err)
		if mask&(1<<(uint(syscall.SIGKILL)-1)) != 0 {
			return true
		}
	}
	return false
}
