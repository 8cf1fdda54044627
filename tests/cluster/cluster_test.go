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
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// built is the snakepit binary (with -race) the tests run, built once.
var built struct {
	once sync.Once
	bin  string
	err  error
}

func buildServe(t *testing.T) string {
	t.Helper()
	root := testutil.RepoRoot(t)
	built.once.Do(func() {
		if here.dataDir == "" { // the binary lives beside this process's node
			var err error
			if here.dataDir, err = os.MkdirTemp("", "snakepit-cluster-test-"); err != nil {
				built.err = err
				return
			}
		}
		built.bin = filepath.Join(here.dataDir, "snakepit")
		build := exec.Command("go", "build", "-race", "-o", built.bin, "./cmd/snakepit")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build: %w: %s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.bin
}

func startChild(t *testing.T, bin, cluster, gossip, join, dataDir string) *child {
	t.Helper()
	return startNode(t, bin, cluster, "far-node", "far", gossip, join, dataDir)
}

func startNode(t *testing.T, bin, cluster, node, pool, gossip, join, dataDir string) *child {
	t.Helper()
	root := testutil.RepoRoot(t)
	cmd := exec.Command(bin, "serve", "-listen", "127.0.0.1:0", "-pool", pool, "-workers", "2",
		"-cluster", cluster, "-gossip", gossip, "-join", join, "-node", node, "-loopback-timings")
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

// here is this process's node, started once for every test: protoactor's
// remote.Start sets gRPC's global logger, which races with the gRPC
// goroutines of an App already running, so a second App with a remote
// listener cannot start in the same process. The tests share its cluster
// and use pools of their own names.
var here struct {
	once    sync.Once
	app     *snakepit.App
	name    string
	dataDir string
	err     error
}

// TestMain stops this process's node after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if here.app != nil {
		if err := here.app.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "stop:", err)
			code = 1
		}
	}
	if here.dataDir != "" {
		_ = os.RemoveAll(here.dataDir)
	}
	os.Exit(code)
}

// startHere starts this process's node the first time it is called and
// returns it with its cluster's name.
func startHere(t *testing.T) (*snakepit.App, string) {
	t.Helper()
	root := testutil.RepoRoot(t)
	here.once.Do(func() {
		here.name = "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if here.dataDir == "" {
			if here.dataDir, here.err = os.MkdirTemp("", "snakepit-cluster-test-"); here.err != nil {
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		here.app, here.err = snakepit.Start(ctx, snakepit.Config{
			Logger: quiet(), RemoteAddress: "127.0.0.1:0", Remote: snakepit.RemoteAuth{Secret: secret},
			PrivDir: filepath.Join(root, "priv", "python"), DataDir: filepath.Join(here.dataDir, "near"), InstanceName: "near-" + here.name,
			Pools: []snakepit.PoolConfig{{Name: "near", Size: 1}},
			Cluster: snakepit.ClusterConfig{Name: here.name, NodeName: "near-node", Bind: "127.0.0.1:0",
				Timings: snakepit.ClusterLoopback, LoadInterval: 250 * time.Millisecond},
		})
		if here.err == nil {
			here.err = here.app.AwaitReady(ctx)
		}
	})
	require.NoError(t, here.err)
	return here.app, here.name
}

func TestPoolsAreReachedByNameAcrossNodes(t *testing.T) {
	testutil.Python(t)
	bin := buildServe(t)
	ctx := t.Context()
	app, name := startHere(t)

	far := startChild(t, bin, name, "127.0.0.1:0", app.GossipAddress(), t.TempDir())
	knows := func(pool string) func() bool { return func() bool { return len(nodesWith(app, pool)) > 0 } }
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

	// A stream from the other node, flow-controlled by credit: 40 chunks
	// are several windows, so a credit lost or miscounted stalls it.
	s, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 40}, snakepit.WithPool("far"), snakepit.WithTimeout(20*time.Second))
	require.NoError(t, err)
	var got, want []int
	for c, err := range s.Chunks() {
		require.NoError(t, err)
		var m struct{ Index int }
		require.NoError(t, c.Decode(&m))
		got = append(got, m.Index)
		if len(got) < 4 {
			time.Sleep(50 * time.Millisecond) // a slow reader at first
		}
	}
	for i := range 40 {
		want = append(want, i)
	}
	assert.Equal(t, want, got)

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

// nodesWith lists the nodes app's directory has with pool, and their load.
func nodesWith(app *snakepit.App, pool string) map[string]int {
	out := map[string]int{}
	for _, n := range app.Nodes() {
		for _, p := range n.Pools {
			if p.Name == pool {
				out[n.Name] = p.Load
			}
		}
	}
	return out
}

// An idempotent call whose node is killed runs again on another node that
// has the pool; a call to a hung (SIGSTOPped) node ends with node_down once
// membership declares the node down, and is not re-sent.
func TestIdempotentRetryAndAHungNode(t *testing.T) {
	testutil.Python(t)
	bin := buildServe(t)
	ctx := t.Context()
	app, name := startHere(t)
	nodes := map[string]*child{
		"b-node": startNode(t, bin, name, "b-node", "dup", "127.0.0.1:0", app.GossipAddress(), t.TempDir()),
		"c-node": startNode(t, bin, name, "c-node", "dup", "127.0.0.1:0", app.GossipAddress(), t.TempDir()),
	}
	require.Eventually(t, func() bool { return len(nodesWith(app, "dup")) == 2 }, 10*time.Second, 20*time.Millisecond)

	// busyNode waits until one node advertises load on dup and returns it.
	busyNode := func() string {
		var busy string
		require.Eventually(t, func() bool {
			for n, load := range nodesWith(app, "dup") {
				if load > 0 {
					busy = n
					return true
				}
			}
			return false
		}, 5*time.Second, 10*time.Millisecond)
		return busy
	}

	done := make(chan error, 1)
	var res *snakepit.Result
	go func() {
		var err error
		res, err = app.Execute(ctx, "sleep", map[string]any{"ms": 1500}, snakepit.WithPool("dup"), snakepit.WithIdempotent(),
			snakepit.WithTimeout(20*time.Second))
		done <- err
	}()
	first := busyNode()
	require.NoError(t, syscall.Kill(nodes[first].cmd.Process.Pid, syscall.SIGKILL))
	select {
	case err := <-done:
		// first was killed mid-call (its 1.5 s sleep had not ended), so
		// the answer came from the run on the other node.
		require.NoError(t, err, "the idempotent call ran again on the other node")
		assert.JSONEq(t, `{"slept_ms":1500}`, string(res.JSON))
	case <-time.After(15 * time.Second):
		t.Fatal("the idempotent call was not answered")
	}
	require.Eventually(t, func() bool { return len(nodesWith(app, "dup")) == 1 }, 5*time.Second, 20*time.Millisecond)

	// The last node hangs: its call is not retried (not idempotent) and ends
	// with node_down within the membership window.
	go func() {
		_, err := app.Execute(ctx, "sleep", map[string]any{"ms": 20000}, snakepit.WithPool("dup"), snakepit.WithTimeout(30*time.Second))
		done <- err
	}()
	second := busyNode()
	require.NotEqual(t, first, second)
	stopped := time.Now()
	require.NoError(t, syscall.Kill(-nodes[second].cmd.Process.Pid, syscall.SIGSTOP))
	window := snakepit.ClusterLoopback.DetectionWindow(3)
	select {
	case err := <-done:
		require.ErrorIs(t, err, snakepit.ErrNodeDown, "%v", err)
		t.Logf("hung node: node_down after %s (membership window %s)", time.Since(stopped).Round(time.Millisecond), window)
		// memberlist's Lifeguard stretches probe timeouts while this node is
		// itself slow to answer (a loaded CI machine under -race): 1.1-2.5 s
		// measured with three runs in a row; without membership the call
		// would wait for its 30 s timeout.
		assert.Less(t, time.Since(stopped), 3*window+1500*time.Millisecond)
	case <-time.After(10 * time.Second):
		t.Fatal("a call to a hung node was not ended")
	}
	_ = syscall.Kill(-nodes[second].cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(-nodes[second].cmd.Process.Pid, syscall.SIGCONT)
}

// demoSummary is the part of `snakepit demo-cluster -json` the test reads.
type demoSummary struct {
	Calls         int64                                    `json:"calls"`
	OK            int64                                    `json:"ok"`
	NodeDown      int64                                    `json:"node_down"`
	Lost          int64                                    `json:"lost"`
	AnsweredTwice int64                                    `json:"answered_twice"`
	LateReplies   int64                                    `json:"late_replies"`
	Wrong         int64                                    `json:"wrong"`
	Errors        map[string]int64                         `json:"errors"`
	DetectMS      float64                                  `json:"detect_ms"`
	RemoteRatio   float64                                  `json:"remote_ratio"`
	Rejoined      bool                                     `json:"rejoined"`
	ByNode        map[string]map[string]map[string]float64 `json:"by_node"`
}

// Three nodes as three OS processes (demo-cluster is one and runs two
// `snakepit serve -drive`), each with its own pool of real Python workers:
// every node calls every pool by name while one node is SIGKILLed; every
// reply is counted (a reply that came after its call had its answer would
// show as late or answered twice); the node restarted serves again.
func TestThreeNodesOneKilledUnderLoad(t *testing.T) {
	testutil.Python(t)
	bin := buildServe(t)
	cmd := exec.Command(bin, "demo-cluster", "-json", "-duration", "3s", "-ratio-duration", "500ms")
	root := testutil.RepoRoot(t)
	cmd.Dir = t.TempDir() // nothing depends on the checkout but the priv dir
	cmd.Env = append(os.Environ(), "SNAKEPIT_PRIV_DIR="+filepath.Join(root, "priv", "python"), "GORACE=halt_on_error=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // if it is still there
		}
		if t.Failed() {
			t.Logf("demo-cluster stderr:\n%s", stderr.String())
		}
	})
	out, err := cmd.Output()
	require.NoError(t, err, "demo-cluster: %s", out)
	var s demoSummary
	require.NoError(t, json.Unmarshal(out, &s), "%s", out)
	t.Logf("calls %d ok %d node_down %d lost %d answered_twice %d detect_ms %.1f remote_ratio %.2f errors %v",
		s.Calls, s.OK, s.NodeDown, s.Lost, s.AnsweredTwice, s.DetectMS, s.RemoteRatio, s.Errors)
	assert.Zero(t, s.Lost, "no call lost")
	assert.Zero(t, s.AnsweredTwice, "no call answered twice")
	assert.Zero(t, s.LateReplies, "no reply after a call's answer")
	assert.Zero(t, s.Wrong, "every answer is its own call's")
	assert.Positive(t, s.NodeDown, "the killed node's calls in flight got node_down")
	assert.Positive(t, s.DetectMS)
	assert.Less(t, s.DetectMS, 1000.0, "node_down within a second of the kill")
	assert.True(t, s.Rejoined, "the restarted node serves both others")
	for _, node := range []string{"node-a", "node-b"} {
		for _, pool := range []string{"a", "b", "c"} {
			assert.Positive(t, s.ByNode[node][pool]["ok"], "%s called pool %s by name", node, pool)
		}
	}
	for code := range s.Errors {
		assert.Equal(t, "pool_not_found", code, "the only other error: the killed node's pool, once it left the directory")
	}
}
