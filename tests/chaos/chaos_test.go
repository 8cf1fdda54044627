//go:build linux

// Package chaos drives three pools of real Python workers (one forked from
// a fork server, running several calls per process) with random calls
// while a driver kills, freezes, recycles and resizes their workers, then
// stops the App mid-flight, and checks that every request was answered
// exactly once with its own answer and that nothing was left behind.
//
// SNAKEPIT_CHAOS_DURATION sets how long the calls run (default 40s, the
// short form the test suite runs; `make chaos` runs 150s);
// SNAKEPIT_CHAOS_SEED replays a run (the seed is printed).
package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// reply kinds, as counted.
const (
	kindOK        = "ok"
	kindError     = "error"       // a structured error (the code is counted too)
	kindDead      = "dead_letter" // the pool was gone (App stopped)
	kindStreamEnd = "stream_end"
)

// counter is the reply address of one request: a process in the actor
// system's registry that counts every message it is sent. A second
// terminal reply is recorded, never dropped.
type counter struct {
	system *actor.ActorSystem
	pid    *actor.PID
	nonce  string
	stream bool

	mu        sync.Mutex
	terminals int
	kind      string
	code      string
	chunks    int
	mismatch  string // a reply that does not belong to this request
	done      chan struct{}
}

func newCounter(system *actor.ActorSystem, nonce string, stream bool) *counter {
	c := &counter{system: system, nonce: nonce, stream: stream, done: make(chan struct{})}
	c.pid, _ = system.ProcessRegistry.Add(c, "chaos"+system.ProcessRegistry.NextId())
	return c
}

func (c *counter) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	c.mu.Lock()
	defer c.mu.Unlock()
	terminal := false
	switch m := msg.(type) {
	case *poolpb.Result:
		terminal = true
		c.classify(m.GetError(), func() {
			var v map[string]any
			if json.Unmarshal(m.GetResultJson(), &v) != nil || v["nonce"] != c.nonce {
				c.mismatch = fmt.Sprintf("result %s for nonce %s", m.GetResultJson(), c.nonce)
			}
		})
	case *poolpb.Chunk:
		if m.GetError() != nil || m.GetIsFinal() {
			terminal = true
			c.classify(m.GetError(), func() { c.kind = kindStreamEnd })
		}
		if len(m.GetData()) > 0 && m.GetError() == nil {
			c.chunks++
			var v map[string]any
			if json.Unmarshal(m.GetData(), &v) != nil || v["tag"] != c.nonce {
				c.mismatch = fmt.Sprintf("chunk %s for nonce %s", m.GetData(), c.nonce)
			}
		}
	case *actor.DeadLetterResponse:
		terminal = true
		c.kind = kindDead
	default:
		c.mismatch = fmt.Sprintf("unexpected %T", msg)
	}
	if terminal {
		c.terminals++
		if c.terminals == 1 {
			close(c.done)
		}
	}
}

func (c *counter) classify(e *poolpb.Error, ok func()) {
	if e != nil {
		c.kind, c.code = kindError, e.GetCode()
		return
	}
	c.kind = kindOK
	ok()
}

func (c *counter) SendSystemMessage(*actor.PID, any) {}
func (c *counter) Stop(*actor.PID)                   {}
func (c *counter) remove()                           { c.system.ProcessRegistry.Remove(c.pid) }

// op is one kind of call a caller makes.
type op struct {
	name string
	make func(r *rand.Rand, nonce string, caller int) (req *poolpb.Execute, cancelAfter time.Duration)
}

var ops = []op{
	{"unary", func(r *rand.Rand, nonce string, _ int) (*poolpb.Execute, time.Duration) {
		return &poolpb.Execute{Tool: "echo", ArgsJson: args(map[string]any{"nonce": nonce})}, 0
	}},
	{"idempotent", func(r *rand.Rand, nonce string, _ int) (*poolpb.Execute, time.Duration) {
		return &poolpb.Execute{Tool: "echo", ArgsJson: args(map[string]any{"nonce": nonce}), Idempotent: true}, 0
	}},
	{"stream", func(r *rand.Rand, nonce string, _ int) (*poolpb.Execute, time.Duration) {
		return &poolpb.Execute{Tool: "stream_count", Stream: true,
			ArgsJson: args(map[string]any{"n": 1 + r.IntN(40), "delay_ms": r.IntN(3), "tag": nonce})}, 0
	}},
	{"cancelled", func(r *rand.Rand, nonce string, _ int) (*poolpb.Execute, time.Duration) {
		return &poolpb.Execute{Tool: "sleep", ArgsJson: args(map[string]any{"ms": 2000})},
			time.Duration(10+r.IntN(200)) * time.Millisecond
	}},
	{"short_deadline", func(r *rand.Rand, nonce string, _ int) (*poolpb.Execute, time.Duration) {
		return &poolpb.Execute{Tool: "sleep", ArgsJson: args(map[string]any{"ms": 1000}),
			DeadlineUnixNano: time.Now().Add(time.Duration(20+r.IntN(150)) * time.Millisecond).UnixNano()}, 0
	}},
	{"binary", func(r *rand.Rand, nonce string, _ int) (*poolpb.Execute, time.Duration) {
		// Above the shared-memory threshold (1 MiB): the payload goes by segment.
		blob := make([]byte, 1<<20+r.IntN(1<<20))
		return &poolpb.Execute{Tool: "describe_binary", ArgsJson: args(map[string]any{"nonce": nonce}),
			BinaryParameters: map[string][]byte{"data": blob}}, 0
	}},
	{"session", func(r *rand.Rand, nonce string, caller int) (*poolpb.Execute, time.Duration) {
		return &poolpb.Execute{Tool: "echo", ArgsJson: args(map[string]any{"nonce": nonce}),
			SessionId: "chaos-s" + strconv.Itoa(caller%5), Affinity: poolpb.Affinity(1 + r.IntN(3))}, 0
	}},
}

func args(v map[string]any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// record is one request and how it was answered.
type record struct {
	op, pool string
	c        *counter
}

func duration(t *testing.T) time.Duration {
	if v := os.Getenv("SNAKEPIT_CHAOS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err)
		return d
	}
	return 40 * time.Second
}

func seed(t *testing.T) uint64 {
	if v := os.Getenv("SNAKEPIT_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		return s
	}
	return uint64(time.Now().UnixNano())
}

func TestChaos(t *testing.T) {
	py := testutil.Python(t)
	s := seed(t)
	t.Logf("chaos seed %d (replay with SNAKEPIT_CHAOS_SEED=%d)", s, s)
	data := t.TempDir()
	// A short temp dir of the test's own: what the App leaves there is checked.
	tmp, err := os.MkdirTemp("", "spc")
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	t.Setenv("TMPDIR", tmp)
	inst := "chaos-" + strconv.Itoa(os.Getpid())

	quiet := testutil.QuietLogger(t)
	system := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(50*time.Millisecond),
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	ctx, cancel := context.WithTimeout(context.Background(), duration(t)+3*time.Minute)
	defer cancel()
	app, err := snakepit.StartIn(ctx, system, snakepit.Config{
		Pools: []snakepit.PoolConfig{
			{Name: "a", Size: 3, CancelGrace: time.Second, StopGrace: time.Second, QueueTimeout: 5 * time.Second,
				Heartbeat: snakepit.HeartbeatConfig{Interval: 300 * time.Millisecond, Timeout: 500 * time.Millisecond, MaxMissed: 3}},
			{Name: "b", Size: 2, Transport: snakepit.TransportTCP, CancelGrace: time.Second, StopGrace: time.Second,
				QueueTimeout: 5 * time.Second, MaxRequests: 200, MaxRequestsJitter: 50,
				// Pool a keeps the default crash breaker (it opens under this
				// many kills); b's lets more calls through to the workers.
				CrashBarrier: snakepit.CrashBarrier{Breaker: snakepit.BreakerConfig{Threshold: 40}}},
			// Many calls per process (an async adapter, capacity 4 each), its
			// workers forked from a fork server the driver may kill or freeze too.
			{Name: "c", Size: 2, Adapter: "snakepit_bridge.adapters.concurrent.AsyncShowcaseAdapter", MaxCallsPerWorker: 4,
				ForkServer: true, CancelGrace: time.Second, StopGrace: time.Second, QueueTimeout: 5 * time.Second,
				CrashBarrier: snakepit.CrashBarrier{Breaker: snakepit.BreakerConfig{Threshold: 40}}},
		},
		Python: py.Path, PrivDir: filepath.Join(testutil.RepoRoot(t), "priv", "python"), DataDir: data, InstanceName: inst,
		Logger: testutil.QuietLogger(t),
	})
	require.NoError(t, err)
	require.NoError(t, app.AwaitReady(ctx))

	var (
		mu       sync.Mutex
		records  []record
		stopping atomic.Bool
		callers  sync.WaitGroup
		events   = map[string]int{}
	)
	pools := []string{"a", "b", "c"}
	shmDir := app.SharedMemoryDir()
	end := time.Now().Add(duration(t))
	for i := range 16 {
		callers.Add(1)
		go func() {
			defer callers.Done()
			r := rand.New(rand.NewPCG(s, uint64(i)))
			// Until the App is stopping (so the stop lands mid-flight); the
			// bound only guards against a driver that never stops it.
			for n := 0; !stopping.Load() && time.Now().Before(end.Add(time.Minute)); n++ {
				o := ops[r.IntN(len(ops))]
				pool := pools[r.IntN(len(pools))]
				nonce := fmt.Sprintf("c%d-%d", i, n)
				req, cancelAfter := o.make(r, nonce, i)
				req.RequestId = nonce
				if req.DeadlineUnixNano == 0 {
					req.DeadlineUnixNano = time.Now().Add(10 * time.Second).UnixNano()
				}
				c := newCounter(system, nonce, req.Stream)
				mu.Lock()
				records = append(records, record{op: o.name, pool: pool, c: c})
				mu.Unlock()
				pid := app.Pool(pool)
				system.Root.RequestWithCustomSender(pid, req, c.pid)
				if cancelAfter > 0 {
					select {
					case <-c.done:
					case <-time.After(cancelAfter):
						system.Root.Send(pid, &poolpb.Cancel{RequestId: nonce})
					}
				}
				select {
				case <-c.done:
				case <-time.After(30 * time.Second): // reported below as unanswered
				}
				c.mu.Lock()
				gone := c.kind == kindDead
				c.mu.Unlock()
				if gone {
					return // the App has stopped: its pools are gone
				}
			}
		}()
	}

	// The driver: kill, freeze, recycle, resize.
	driver := rand.New(rand.NewPCG(s, 1000))
	var frozen []int
	thaw := func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		frozen = nil
	}
	for time.Now().Before(end) {
		time.Sleep(time.Duration(150+driver.IntN(350)) * time.Millisecond)
		workers := testutil.ProcessesOfRun(app.RunID())
		if len(workers) == 0 {
			continue
		}
		pid := workers[driver.IntN(len(workers))]
		switch a := driver.IntN(10); {
		case a < 4:
			_ = syscall.Kill(pid, syscall.SIGKILL)
			events["sigkill"]++
		case a < 6:
			if driver.IntN(2) == 0 {
				thaw()
			}
			_ = syscall.Kill(pid, syscall.SIGSTOP)
			frozen = append(frozen, pid)
			events["sigstop"]++
		case a < 8:
			p := pools[driver.IntN(len(pools))]
			if ids, err := app.ListWorkers(ctx, p); err == nil && len(ids) > 0 {
				_ = app.RecycleWorker(ctx, p, ids[driver.IntN(len(ids))])
				events["recycle"]++
			}
		default:
			_ = app.ResizePool(ctx, "b", 1+driver.IntN(3))
			events["resize"]++
		}
		if driver.IntN(3) == 0 {
			thaw()
		}
	}
	// Stop mid-flight: callers keep calling while the App stops.
	thaw()
	restarts := uint64(0)
	for _, p := range pools {
		if st, err := app.Stats(ctx, p); err == nil {
			restarts += st.WorkerRestarts
		}
	}
	inFlight := 0
	mu.Lock()
	for _, rec := range records {
		select {
		case <-rec.c.done:
		default:
			inFlight++
		}
	}
	mu.Unlock()
	stopStart := time.Now()
	stopErr := make(chan error, 1)
	go func() { stopErr <- app.Stop(ctx) }()
	time.Sleep(50 * time.Millisecond)
	stopping.Store(true)
	require.NoError(t, <-stopErr)
	t.Logf("App.Stop with %d requests in flight took %v", inFlight, time.Since(stopStart).Round(time.Millisecond))
	require.Positive(t, inFlight, "the stop lands mid-flight")
	callers.Wait()

	// Every request answered exactly once, with its own answer.
	replies := map[string]int{}
	codes := map[string]int{}
	byOp := map[string]int{}
	var unanswered, doubled, mismatched []string
	for _, rec := range records {
		rec.c.mu.Lock()
		switch {
		case rec.c.terminals == 0:
			unanswered = append(unanswered, rec.op+":"+rec.c.nonce)
		case rec.c.terminals > 1:
			doubled = append(doubled, fmt.Sprintf("%s:%s×%d", rec.op, rec.c.nonce, rec.c.terminals))
		}
		if rec.c.mismatch != "" {
			mismatched = append(mismatched, rec.c.mismatch)
		}
		replies[rec.c.kind]++
		if rec.c.code != "" {
			codes[rec.c.code]++
		}
		byOp[rec.op]++
		rec.c.mu.Unlock()
		rec.c.remove()
	}
	t.Logf("chaos counts: requests=%d replies=%v by_op=%v error_codes=%v driver=%v worker_restarts=%d",
		len(records), replies, byOp, codes, events, restarts)
	require.Empty(t, unanswered, "requests without a reply")
	require.Empty(t, doubled, "requests answered more than once")
	require.Empty(t, mismatched, "replies that are not their request's")
	require.Greater(t, replies[kindOK]+replies[kindStreamEnd], len(records)/4, "most calls succeed despite the chaos")

	// Nothing left: OS processes, the process registry, the temp dir, goroutines.
	left := testutil.ProcessesOfRun(app.RunID())
	require.Empty(t, left, "python processes of the run left")
	store, _, err := procreg.OpenStore(filepath.Join(data, inst, "processes.db"), testutil.QuietLogger(t))
	require.NoError(t, err)
	snap, err := store.Read()
	require.NoError(t, err)
	require.Empty(t, snap.Entries, "process registry entries left")
	require.Empty(t, snap.Runs, "process registry runs left")
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, entries, "temp dir leftovers")
	_, err = os.Stat(shmDir)
	require.True(t, os.IsNotExist(err), "the shared-memory directory %s is left: %v", shmDir, err)
	system.Shutdown()
	gerr := goleak.Find()
	require.NoError(t, gerr, "goroutines left")
	t.Logf("chaos leftovers: processes=%d registry_entries=%d temp_entries=%d shm_dir=gone goroutines=0",
		len(left), len(snap.Entries), len(entries))
}

// TestHostSIGKILLWithFrozenWorkersAndDetachedChildren kills a host five
// times, each with a frozen worker and a tool's detached child: 2 s later
// no worker is left, and the next start ends the detached children.
func TestHostSIGKILLWithFrozenWorkersAndDetachedChildren(t *testing.T) {
	testutil.Python(t)
	root := testutil.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "crashhost")
	build := exec.Command("go", "build", "-o", bin, "./tests/testdata/crashhost")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	data := t.TempDir()
	inst := "chaos-kill-" + strconv.Itoa(os.Getpid())
	var detached []int
	t.Cleanup(func() {
		for _, pid := range detached {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for round := range 5 {
		cmd := exec.Command(bin, "-workers", "2", "-detach")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "SNAKEPIT_PRIV_DIR="+filepath.Join(root, "priv", "python"),
			"SNAKEPIT_DATA_DIR="+data, "SNAKEPIT_INSTANCE_NAME="+inst)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		var host struct {
			RunID    string `json:"run_id"`
			Pids     []int  `json:"pids"`
			Detached int    `json:"detached"`
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal([]byte(line), &host))
		detached = append(detached, host.Detached)
		require.NoError(t, syscall.Kill(host.Pids[0], syscall.SIGSTOP))
		require.NoError(t, syscall.Kill(cmd.Process.Pid, syscall.SIGKILL))
		_ = cmd.Wait()
		require.Eventually(t, func() bool { return len(testutil.ProcessesOfRun(host.RunID)) == 0 }, 2*time.Second, 10*time.Millisecond,
			"round %d: workers alive 2 s after the host SIGKILL", round)
	}
	// The detached children outlived their hosts; the next start of the
	// instance ends them (they carry the dead runs' environment markers).
	app, err := snakepit.Start(t.Context(), snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "after", Size: 1}},
		PrivDir: filepath.Join(root, "priv", "python"), DataDir: data, InstanceName: inst, Logger: testutil.QuietLogger(t)})
	require.NoError(t, err)
	require.NoError(t, app.Stop(t.Context()))
	var alive []int
	for _, pid := range detached {
		if p, err := procs.System.Process(t.Context(), pid); err == nil && !p.Zombie && p.PPID == 1 {
			alive = append(alive, pid)
		}
	}
	sort.Ints(alive)
	require.Empty(t, alive, "detached children left: %s", strings.Trim(fmt.Sprint(alive), "[]"))
}
