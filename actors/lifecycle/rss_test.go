//go:build unix

package lifecycle

import (
	"bufio"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/process"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/procs"
)

const mib = 1 << 20

// holdMemory is a Python program that touches mb MiB, says "ready" and
// sleeps.
func holdMemory(mb int) string {
	return "import time; b = bytearray(" + strconv.Itoa(mb) + "*1024*1024); " +
		"[b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; " +
		"print('ready', flush=True); time.sleep(30)"
}

func python(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	return py
}

// startReady starts cmd in its own process group, kills the group and reaps
// it at cleanup, and waits for "ready" on its stdout.
func startReady(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a buffer: no copying goroutine races with reading it.
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	t.Cleanup(func() { _ = stderr.Close() })
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// The group we created (pgid == pid), then the leader itself.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	f, ok := out.(*os.File)
	require.True(t, ok, "stdout pipe is %T", out)
	require.NoError(t, f.SetReadDeadline(time.Now().Add(60*time.Second)))
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		msg, _ := os.ReadFile(stderr.Name())
		require.NoError(t, err, "waiting for ready; stderr: %s", msg)
	}
	require.Equal(t, "ready", strings.TrimSpace(line))
}

func TestTreeRSSOfOneProcess(t *testing.T) {
	cmd := exec.Command(python(t), "-c", holdMemory(60))
	startReady(t, cmd)

	rss, err := TreeRSS(context.Background(), cmd.Process.Pid)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rss, uint64(50*mib), "rss %d MiB", rss/mib)
}

func TestTreeRSSCountsDescendants(t *testing.T) {
	// sh is the parent; its child python holds the memory.
	cmd := exec.Command("sh", "-c", `"$0" -c "$1" & wait`, python(t), holdMemory(40))
	startReady(t, cmd)

	rss, err := TreeRSS(context.Background(), cmd.Process.Pid)
	require.NoError(t, err)
	require.GreaterOrEqual(t, rss, uint64(35*mib), "tree rss %d MiB", rss/mib)

	// The memory is the child's: sh alone holds far less, so the tree was
	// counted, not just the parent.
	sh, err := process.NewProcess(int32(cmd.Process.Pid))
	require.NoError(t, err)
	own, err := sh.MemoryInfo()
	require.NoError(t, err)
	require.Less(t, own.RSS, uint64(35*mib), "sh rss %d MiB", own.RSS/mib)
}

func TestTreeRSSNoProcess(t *testing.T) {
	for _, pid := range []int{math.MaxInt32, 0, -1, math.MaxInt32 + 1} {
		_, err := TreeRSS(context.Background(), pid)
		require.Error(t, err, "pid %d", pid)
		require.True(t, errors.Is(err, ErrNoProcess), "pid %d: %v", pid, err)
		require.ErrorIs(t, err, procs.ErrNotFound)
	}
}

func TestTreeRSSReapedChild(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	require.NoError(t, cmd.Wait())
	// The pid is free now; in the unlikely case it was reused at once, the
	// call succeeds instead, which is also right.
	if _, err := TreeRSS(context.Background(), pid); err != nil {
		require.ErrorIs(t, err, ErrNoProcess)
	}
}

func TestTreeRSSOfThisProcess(t *testing.T) {
	rss, err := TreeRSS(context.Background(), os.Getpid())
	require.NoError(t, err)
	require.Positive(t, rss)
}

func TestTreeRSSDoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := TreeRSS(ctx, os.Getpid())
	require.ErrorIs(t, err, context.Canceled)
}
