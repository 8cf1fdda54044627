//go:build unix

// Package cluster tests pools reached by name across nodes: this test
// process is one node (an App with Config.Cluster), `snakepit serve
// -cluster` runs another as its own OS process with its own Python
// workers, and the two find each other by gossip. It is a package of its
// own because protoactor's remote.Start sets gRPC's global logger, which
// must happen before any other gRPC activity in the process; and, like
// tests/remote, it does not run goleak (protoactor's remote leaves its
// endpoint goroutines behind a lost node).
package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

var secret = "cluster-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)

// child is a `snakepit serve -cluster` process.
type child struct {
	cmd    *exec.Cmd
	gossip string
	runID  string
	done   chan struct{}
}

func buildServe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "snakepit")
	build := exec.Command("go", "build", "-race", "-o", bin, "./cmd/snakepit")
	build.Dir = testutil.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)
	return bin
}

func startChild(t *testing.T, bin, cluster, gossip, join, dataDir string) *child {
	t.Helper()
	root := testutil.RepoRoot(t)
	cmd := exec.Command(bin, "serve", "-listen", "127.0.0.1:0", "-pool", "far", "-workers", "2",
		"-cluster", cluster, "-gossip", gossip, "-join", join, "-node", "far-node", "-loopback-timings")
	cmd.Env = append(os.Environ(), "SNAKEPIT_PRIV_DIR="+filepath.Join(root, "priv", "python"), "SNAKEPIT_DATA_DIR="+dataDir,
		snakepit.EnvRemoteSecret+"="+secret, "GORACE=halt_on_error=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("snakepit serve stderr:\n%s", stderr.String())
		}
	})
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, done: make(chan struct{})}
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // only if the test did not end it
		<-c.done
	})
	deadline := time.After(90 * time.Second)
	for c.gossip == "" {
		select {
		case line := <-lines:
			f := strings.Fields(line)
			switch {
			case len(f) == 8 && f[0] == "pool":
				c.runID = f[7]
			case len(f) == 4 && f[0] == "cluster":
				c.gossip = f[3]
			}
		case <-c.done:
			t.Fatal("snakepit serve exited before it was ready")
		case <-deadline:
			t.Fatal("snakepit serve was not ready within 90s")
		}
	}
	return c
}

func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestPoolsAreReachedByNameAcrossNodes(t *testing.T) {
	testutil.Python(t)
	bin := buildServe(t)
	name := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	root := testutil.RepoRoot(t)
	ctx := t.Context()
	app, err := snakepit.Start(ctx, snakepit.Config{
		Logger: quiet(), RemoteAddress: "127.0.0.1:0", Remote: snakepit.RemoteAuth{Secret: secret},
		PrivDir: filepath.Join(root, "priv", "python"), DataDir: t.TempDir(), InstanceName: "near-" + name,
		Pools: []snakepit.PoolConfig{{Name: "near", Size: 1}},
		Cluster: snakepit.ClusterConfig{Name: name, NodeName: "near-node", Bind: "127.0.0.1:0",
			Timings: snakepit.ClusterLoopback, LoadInterval: 250 * time.Millisecond},
	})
	require.NoError(t, err)
	defer func() { assert.NoError(t, app.Stop(context.Background())) }()
	require.NoError(t, app.AwaitReady(ctx))

	far := startChild(t, bin, name, "127.0.0.1:0", app.GossipAddress(), t.TempDir())
	knows := func(pool string) func() bool {
		return func() bool {
			for _, n := range app.Nodes() {
				for _, p := range n.Pools {
					if p.Name == pool {
						return true
					}
				}
			}
			return false
		}
	}
	require.Eventually(t, knows("far"), 10*time.Second, 20*time.Millisecond, "the other node's pool reaches the directory")

	// By name, on the other node; this node's own pool stays local.
	res, err := app.Execute(ctx, "add", map[string]any{"a": 20, "b": 22}, snakepit.WithPool("far"))
	require.NoError(t, err)
	assert.JSONEq(t, "42", string(res.JSON))
	assert.Contains(t, res.WorkerID, "far", "a worker of the far pool answered")
	res, err = app.Execute(ctx, "ping", nil, snakepit.WithPool("near"))
	require.NoError(t, err)
	assert.Contains(t, res.WorkerID, "near")

	// A pool on no node: pool_not_found from the directory.
	_, err = app.Execute(ctx, "ping", nil, snakepit.WithPool("nowhere"))
	assert.ErrorIs(t, err, snakepit.ErrPoolNotFound)

	// A tool error crosses nodes as a structured error.
	_, err = app.Execute(ctx, "raise_error", map[string]any{"kind": "value", "message": "far away"}, snakepit.WithPool("far"))
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, snakepit.CodePythonException, serr.Code)
	assert.Equal(t, "far away", serr.Message)

	// A stream from the other node.
	s, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 3}, snakepit.WithPool("far"))
	require.NoError(t, err)
	var got []int
	for c, err := range s.Chunks() {
		require.NoError(t, err)
		var m struct{ Index int }
		require.NoError(t, c.Decode(&m))
		got = append(got, m.Index)
	}
	assert.Equal(t, []int{0, 1, 2}, got)

	// The node is killed with calls in flight: each ends with node_down at
	// once (well before the tools' end), never with a result or a timeout.
	type answer struct {
		err error
		at  time.Time
	}
	answers := make(chan answer, 2)
	for range 2 {
		go func() {
			_, err := app.Execute(ctx, "sleep", map[string]any{"ms": 20000}, snakepit.WithPool("far"), snakepit.WithTimeout(30*time.Second))
			answers <- answer{err, time.Now()}
		}()
	}
	require.Eventually(t, func() bool { return len(testutil.ProcessesOfRun(far.runID)) > 0 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // both calls reach the far workers
	killed := time.Now()
	require.NoError(t, syscall.Kill(far.cmd.Process.Pid, syscall.SIGKILL))
	for range 2 {
		select {
		case a := <-answers:
			require.ErrorIs(t, a.err, snakepit.ErrNodeDown, "%v", a.err)
			assert.Less(t, a.at.Sub(killed), time.Second, "node_down within a second of the kill")
			t.Logf("node_down after %s", a.at.Sub(killed).Round(time.Millisecond))
		case <-time.After(5 * time.Second):
			t.Fatal("a call in flight to the killed node was not answered")
		}
	}
	<-far.done
	// Membership declares it gone; its pool leaves the directory.
	require.Eventually(t, func() bool { return !knows("far")() }, 5*time.Second, 20*time.Millisecond)
	_, err = app.Execute(ctx, "ping", nil, snakepit.WithPool("far"))
	assert.True(t, errors.Is(err, snakepit.ErrPoolNotFound), "%v", err)
	require.Eventually(t, func() bool { return len(testutil.ProcessesOfRun(far.runID)) == 0 }, 5*time.Second, 20*time.Millisecond,
		"the killed node's workers die with it")

	// Restarted, it rejoins under its name and serves again.
	startChild(t, bin, name, "127.0.0.1:0", app.GossipAddress(), t.TempDir())
	require.Eventually(t, knows("far"), 10*time.Second, 20*time.Millisecond, "the restarted node rejoins")
	res, err = app.Execute(ctx, "ping", nil, snakepit.WithPool("far"))
	require.NoError(t, err)
	b, _ := json.Marshal("pong")
	assert.JSONEq(t, string(b), string(res.JSON))
}
