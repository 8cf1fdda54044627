//go:build unix

package worker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// shellWorker starts a /bin/sh "worker" running body through startProcess
// (sh ignores the launch flags it is given as positional arguments).
func shellWorker(t *testing.T, body string) *process {
	t.Helper()
	script := filepath.Join(t.TempDir(), "w.sh")
	require.NoError(t, os.WriteFile(script, []byte(body), 0o755))
	c := validConfig()
	c.Python, c.Script = "/bin/sh", script
	p, err := startProcess(c.withDefaults(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { p.stop(100 * time.Millisecond) })
	return p
}

func TestStopEscalatesToSIGKILLAndKillsTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	// Ignores SIGTERM and stdin EOF, and has a child in its group.
	p := shellWorker(t, "trap '' TERM\n(trap '' TERM; while :; do sleep 0.05; done) &\necho $! > "+pidFile+"\necho started\nwhile :; do sleep 0.05; done\n")
	var child int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, p.pid, p.pgid, "the worker leads its own process group")
	pgid, err := syscall.Getpgid(child)
	require.NoError(t, err)
	assert.Equal(t, p.pgid, pgid, "its child is in the same group")

	start := time.Now()
	info := p.stop(200 * time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "SIGTERM was ignored, so it waited the grace")
	assert.Equal(t, "killed", info.Signal)
	assert.Contains(t, info.Output, "started", "the output tail is kept")
	assert.Eventually(t, func() bool { return !testutil.Alive(child) }, 5*time.Second, 5*time.Millisecond, "the group member is gone too")
	_, err = os.Stat(p.dir)
	assert.True(t, os.IsNotExist(err), "the private directory is removed")
}

func TestStopOfACooperativeProcessIsQuick(t *testing.T) {
	p := shellWorker(t, "echo up\nwhile :; do sleep 0.05; done\n") // default SIGTERM action: exit
	info := p.stop(10 * time.Second)
	assert.Equal(t, "terminated", info.Signal)
	assert.False(t, testutil.Alive(p.pid))
}

func TestWaitReadyFailsWhenTheProcessExits(t *testing.T) {
	p := shellWorker(t, "echo 'ImportError: no adapter' >&2\nexit 1\n")
	_, err := p.waitReady(t.Context())
	require.Error(t, err)
	<-p.done
	assert.Equal(t, 1, p.exitInfo().ExitCode)
	assert.Contains(t, p.exitInfo().Output, "ImportError: no adapter")
}

func TestWaitReadyReadsPortOrSocket(t *testing.T) {
	p := shellWorker(t, "while :; do sleep 0.05; done\n")
	require.NoError(t, os.WriteFile(p.ready, []byte("unix:/tmp/x.sock"), 0o600))
	h, err := p.waitReady(t.Context())
	require.NoError(t, err)
	assert.Equal(t, Handshake{Target: "unix:///tmp/x.sock", Concurrency: 1}, h)
	require.NoError(t, os.WriteFile(p.ready, []byte("43210\n"), 0o600))
	h, err = p.waitReady(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:43210", h.Target)
	require.NoError(t, os.WriteFile(p.ready, []byte("snakepit-bridge|1|unix|/tmp/y.sock|concurrency=8"), 0o600))
	h, err = p.waitReady(t.Context())
	require.NoError(t, err)
	assert.Equal(t, Handshake{Target: "unix:///tmp/y.sock", Concurrency: 8}, h)
	require.NoError(t, os.WriteFile(p.ready, []byte("garbage"), 0o600))
	_, err = p.waitReady(t.Context())
	assert.ErrorContains(t, err, "not a port")
}

// A leader that dies on its own: the members of its group are ended while
// it is still a zombie (its group id still ours), and once it is reaped the
// group is never signalled again, so a reused id cannot be hit.
func TestTheGroupIsSignalledOnlyWhileItsLeaderIsOurs(t *testing.T) {
	if !procs.CanKeepZombie {
		t.Skip("this system cannot wait without reaping")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	p := shellWorker(t, "(trap '' TERM; while :; do sleep 0.05; done) &\necho $! > "+pidFile+"\nwhile [ ! -s "+pidFile+" ]; do sleep 0.01; done\nexit 3\n")
	<-p.done
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	assert.Eventually(t, func() bool { return !testutil.Alive(child) }, 5*time.Second, 5*time.Millisecond,
		"the group member that outlived its leader is gone")
	assert.Equal(t, 3, p.exitInfo().ExitCode)
	p.groupMu.Lock()
	gone := p.groupGone
	p.groupMu.Unlock()
	assert.True(t, gone, "after the reap the group is no longer ours to signal")
}
