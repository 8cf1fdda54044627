//go:build unix

package tests

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

const (
	showcaseAdapter = "snakepit_bridge.adapters.showcase.ShowcaseAdapter"
	// readyTimeout bounds a worker's start: interpreter, imports, bind.
	readyTimeout = 30 * time.Second
	// exitTimeout bounds how long a worker may take to exit when asked.
	exitTimeout = 5 * time.Second
)

// workerOptions says how to launch a worker.
type workerOptions struct {
	// unix serves on a unix socket (--listen unix:/abs/path.sock) instead of TCP.
	unix bool
}

// pyWorker is one running priv/python/grpc_server.py, started by a test in its
// own process group, with stdin as its lifeline.
type pyWorker struct {
	t         *testing.T
	cmd       *exec.Cmd
	pgid      int
	stdin     io.WriteCloser
	output    *testutil.SyncBuffer
	readyFile string
	socket    string // unix socket path, "" for TCP
	ready     string // content of the ready file
	target    string // gRPC dial target
	conn      *grpc.ClientConn
	client    bridgepb.BridgeServiceClient

	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // cmd.Wait's result, read after done
}

// startWorker launches a showcase worker, waits for its ready file and dials
// it. The process group is killed and reaped in t.Cleanup.
func startWorker(t *testing.T, opts workerOptions) *pyWorker {
	t.Helper()
	root := testutil.RepoRoot(t)
	script := filepath.Join(root, "priv", "python", "grpc_server.py")
	_, err := os.Stat(script)
	require.NoError(t, err, "the Python worker server is missing")

	interp := testutil.Python(t)

	// A short directory: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "spw")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	w := &pyWorker{
		t:         t,
		output:    &testutil.SyncBuffer{},
		readyFile: filepath.Join(dir, "ready"),
		done:      make(chan struct{}),
	}
	args := []string{
		"-u", script,
		"--adapter", showcaseAdapter,
		"--port", "0",
		"--snakepit-run-id", "run-" + strconv.Itoa(os.Getpid()),
		"--snakepit-instance-name", "go-contract-test",
		"--snakepit-instance-token", "token-contract-test",
		"--snakepit-worker-id", "w-" + sanitize(t.Name()),
	}
	if opts.unix {
		w.socket = filepath.Join(dir, "worker.sock")
		args = append(args, "--listen", "unix:"+w.socket)
	}

	cmd := exec.Command(interp.Path, args...)
	cmd.Dir = root
	cmd.Env = append(workerEnv(), "SNAKEPIT_READY_FILE="+w.readyFile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = w.output, w.output
	cmd.WaitDelay = exitTimeout
	w.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start %s", cmd)
	w.cmd, w.pgid = cmd, cmd.Process.Pid
	go func() {
		w.waitErr = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(w.stop)

	w.waitReady()
	conn, err := grpc.NewClient(w.target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	w.conn, w.client = conn, bridgepb.NewBridgeServiceClient(conn)
	return w
}

// waitReady polls the ready file until it appears. Because the worker writes
// it atomically, its first visible content must already be complete.
func (w *pyWorker) waitReady() {
	t := w.t
	t.Helper()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-w.done:
			t.Fatalf("worker exited before it was ready: %v\ncommand: %s\noutput:\n%s", w.waitErr, w.cmd, w.output)
		case <-deadline.C:
			t.Fatalf("worker not ready within %s\ncommand: %s\noutput:\n%s", readyTimeout, w.cmd, w.output)
		case <-tick.C:
		}
		content, err := os.ReadFile(w.readyFile)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		w.ready = string(content)
		if w.socket != "" {
			require.Equal(t, "snakepit-bridge|1|unix|"+w.socket, w.ready, "ready file of a unix-socket worker\noutput:\n%s", w.output)
			w.target = "unix:" + w.socket
			return
		}
		parts := strings.Split(w.ready, "|")
		require.Len(t, parts, 4, "ready file of a TCP worker: the handshake, got %q\noutput:\n%s", w.ready, w.output)
		require.Equal(t, []string{"snakepit-bridge", "1", "tcp"}, parts[:3])
		host, portText, err := net.SplitHostPort(parts[3])
		require.NoError(t, err)
		require.Equal(t, "127.0.0.1", host)
		port, err := strconv.Atoi(portText)
		require.NoError(t, err)
		require.True(t, port > 0 && port < 65536, "port %d out of range", port)
		w.target = fmt.Sprintf("127.0.0.1:%d", port)
		return
	}
}

// waitExit waits for the worker to exit and returns its exit code.
func (w *pyWorker) waitExit(timeout time.Duration) int {
	w.t.Helper()
	select {
	case <-w.done:
	case <-time.After(timeout):
		w.t.Fatalf("worker still running %s after it was asked to stop\noutput:\n%s", timeout, w.output)
	}
	return w.cmd.ProcessState.ExitCode()
}

// stop closes the client and the lifeline, then terminates the worker's
// process group (SIGTERM, then SIGKILL) and checks nothing of it is left.
func (w *pyWorker) stop() {
	t := w.t
	if w.conn != nil {
		_ = w.conn.Close()
	}
	_ = w.stdin.Close()
	select {
	case <-w.done:
	case <-time.After(exitTimeout):
		_ = syscall.Kill(-w.pgid, syscall.SIGTERM)
		select {
		case <-w.done:
		case <-time.After(exitTimeout):
			t.Errorf("worker ignored stdin EOF and SIGTERM for %s; killing its group\noutput:\n%s", 2*exitTimeout, w.output)
			_ = syscall.Kill(-w.pgid, syscall.SIGKILL)
			<-w.done
		}
	}
	// The leader is reaped; no other member of its group may survive it.
	if groupAlive(w.pgid) {
		t.Errorf("process group %d outlived its leader; killing it", w.pgid)
		_ = syscall.Kill(-w.pgid, syscall.SIGKILL)
		require.Eventually(t, func() bool { return !groupAlive(w.pgid) }, exitTimeout, 10*time.Millisecond)
	}
}

// groupAlive reports whether any process is left in process group pgid.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

// workerEnv is the test's environment without SNAKEPIT_* variables, so a
// developer's settings (a host address, heartbeat config) do not leak in.
func workerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SNAKEPIT_") {
			env = append(env, kv)
		}
	}
	return env
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
}
