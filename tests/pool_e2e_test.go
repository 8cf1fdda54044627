//go:build unix

package tests

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/registry"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

func onePool(size int, mod func(*snakepit.PoolConfig)) snakepit.Config {
	p := snakepit.PoolConfig{Name: "default", Size: size}
	if mod != nil {
		mod(&p)
	}
	return snakepit.Config{Pools: []snakepit.PoolConfig{p}}
}

func TestExecuteRunsPythonTools(t *testing.T) {
	app := startApp(t, onePool(2, nil))
	ctx := t.Context()

	res, err := app.Execute(ctx, "add", map[string]any{"a": 2, "b": 40})
	require.NoError(t, err)
	var sum int
	require.NoError(t, res.Decode(&sum))
	assert.Equal(t, 42, sum)
	assert.NotEmpty(t, res.WorkerID)

	in := map[string]any{"text": "héllo", "n": 1.5, "list": []any{1.0, "two", nil}, "nested": map[string]any{"ok": true}}
	res, err = app.Execute(ctx, "echo", in)
	require.NoError(t, err)
	v, err := res.Value()
	require.NoError(t, err)
	assert.Equal(t, in, v)

	blob := bytes.Repeat([]byte{0, 1, 2, 250}, 256<<10) // 1 MiB
	res, err = app.Execute(ctx, "echo_binary", nil, snakepit.WithBinary(map[string][]byte{"data": blob}))
	require.NoError(t, err)
	require.True(t, res.IsBinary)
	assert.True(t, bytes.Equal(blob, res.Binary), "binary round trip")
}

func TestStreamAndCancelMidStream(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	ctx := t.Context()

	st, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 5})
	require.NoError(t, err)
	var got []int
	for c, err := range st.Chunks() {
		require.NoError(t, err)
		var m struct{ Index int }
		require.NoError(t, c.Decode(&m))
		got = append(got, m.Index)
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4}, got)

	// A long stream, closed after three chunks: the worker is freed (the
	// generator is closed) and serves the next call.
	st, err = app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 100000, "delay_ms": 5})
	require.NoError(t, err)
	for range 3 {
		_, err := st.Recv()
		require.NoError(t, err)
	}
	st.Close()
	_, err = st.Recv()
	assert.ErrorIs(t, err, snakepit.ErrCancelled)
	waitStats(t, app, "default", "the cancelled stream to free its worker", func(s statsView) bool { return s.InFlight == 0 && s.Busy == 0 })
	res, err := app.Execute(ctx, "ping", nil)
	require.NoError(t, err)
	assert.JSONEq(t, `"pong"`, string(res.JSON))
}

func TestPythonExceptionIsStructured(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	_, err := app.Execute(t.Context(), "raise_error", map[string]any{"kind": "value", "message": "bad input"})
	require.Error(t, err)
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	assert.ErrorIs(t, err, snakepit.ErrPythonException)
	assert.Equal(t, snakepit.CategoryPythonError, serr.Category)
	assert.Equal(t, "ValueError", serr.PythonType)
	assert.Equal(t, "bad input", serr.Message)
	assert.Contains(t, serr.PythonTraceback, "Traceback")
	assert.Equal(t, "default", serr.Pool)
	assert.NotEmpty(t, serr.WorkerID)
}

func TestUnknownToolAndBadArguments(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	_, err := app.Execute(t.Context(), "no_such_tool", nil)
	assert.ErrorIs(t, err, snakepit.ErrToolNotFound)
	assert.ErrorIs(t, err, snakepit.ErrValidation)

	_, err = app.Execute(t.Context(), "add", []int{1, 2})
	assert.ErrorIs(t, err, snakepit.ErrInvalidArgument)
	_, err = app.Execute(t.Context(), "", nil)
	assert.ErrorIs(t, err, snakepit.ErrInvalidArgument)
	_, err = app.Execute(t.Context(), "ping", nil, snakepit.WithPool("nope"))
	assert.ErrorIs(t, err, snakepit.ErrPoolNotFound)
}

// collect runs calls in goroutines and gathers their errors.
type collect struct {
	wg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

func (c *collect) run(f func() error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := f()
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
	}()
}

// wait waits for every call, failing the test if one has not returned
// within a minute (a call that never gets its reply).
func (c *collect) wait(t *testing.T) []error {
	t.Helper()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a call got no reply within a minute")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

func TestQueueSaturation(t *testing.T) {
	app := startApp(t, onePool(1, func(p *snakepit.PoolConfig) { p.MaxQueue = 1 }))
	ctx := t.Context()
	var c collect
	c.run(func() error { _, err := app.Execute(ctx, "sleep", map[string]any{"ms": 1500}); return err })
	waitStats(t, app, "default", "the worker to be busy", func(s statsView) bool { return s.Busy == 1 })
	c.run(func() error { _, err := app.Execute(ctx, "sleep", map[string]any{"ms": 10}); return err })
	waitStats(t, app, "default", "one call to queue", func(s statsView) bool { return s.Queued == 1 })

	_, err := app.Execute(ctx, "ping", nil)
	require.ErrorIs(t, err, snakepit.ErrPoolSaturated)
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	assert.Equal(t, snakepit.CategoryPool, serr.Category)
	assert.Equal(t, "1", serr.Details["queue_size"])

	for _, err := range c.wait(t) {
		assert.NoError(t, err, "the running and the queued call both complete")
	}
	s := waitStats(t, app, "default", "stats to settle", func(s statsView) bool { return s.InFlight == 0 })
	assert.EqualValues(t, 1, s.Saturated)
}

func TestQueueTimeoutExactlyOnce(t *testing.T) {
	app := startApp(t, onePool(1, func(p *snakepit.PoolConfig) { p.QueueTimeout = 200 * time.Millisecond }))
	ctx := t.Context()
	var c collect
	c.run(func() error { _, err := app.Execute(ctx, "sleep", map[string]any{"ms": 1500}); return err })
	waitStats(t, app, "default", "the worker to be busy", func(s statsView) bool { return s.Busy == 1 })

	start := time.Now()
	_, err := app.Execute(ctx, "ping", nil)
	require.ErrorIs(t, err, snakepit.ErrQueueTimeout)
	assert.ErrorIs(t, err, snakepit.ErrTimeout)
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "answered at the queue timeout, not when the worker freed")

	for _, err := range c.wait(t) {
		assert.NoError(t, err)
	}
	s := waitStats(t, app, "default", "stats to settle", func(s statsView) bool { return s.InFlight == 0 })
	assert.EqualValues(t, 1, s.QueueTimeouts, "exactly one queue timeout")
	assert.EqualValues(t, s.Requests, s.Completed+s.QueueTimeouts, "every request ended once")
}

func TestDeadlineExpiresMidCall(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := app.Execute(ctx, "sleep", map[string]any{"ms": 5000})
	require.Error(t, err)
	assert.ErrorIs(t, err, snakepit.ErrTimeout, "got %v", err)
	// The worker is free again and answers.
	waitStats(t, app, "default", "the worker to be free", func(s statsView) bool { return s.InFlight == 0 })
	_, err = app.Execute(t.Context(), "ping", nil)
	require.NoError(t, err)
}

func TestSIGKILLMidCallGivesWorkerExitAndPoolRecovers(t *testing.T) {
	app := startApp(t, onePool(2, nil))
	ctx := t.Context()
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}

	var c collect
	c.run(func() error { _, err := app.Execute(ctx, "sleep", map[string]any{"ms": 5000}); return err })
	waitStats(t, app, "default", "a worker to be busy", func(s statsView) bool { return s.Busy == 1 })
	// Find the busy worker's Python process.
	workers, err := reg.ListPool(ctx, "default")
	require.NoError(t, err)
	require.Len(t, workers, 2)
	var victim registry.WorkerMeta
	for _, w := range workers {
		res, err := app.System().Root.RequestFuture(w.PID, workerInfoRequest(), 5*time.Second).Result()
		require.NoError(t, err)
		if inFlight(res) == 1 {
			victim = w
		}
	}
	require.NotZero(t, victim.OSPid, "found the busy worker")
	require.NoError(t, syscall.Kill(victim.OSPid, syscall.SIGKILL))

	errs := c.wait(t)
	require.Len(t, errs, 1)
	var serr *snakepit.Error
	require.ErrorAs(t, errs[0], &serr)
	assert.ErrorIs(t, errs[0], snakepit.ErrWorkerExit)
	assert.Equal(t, snakepit.CategoryWorker, serr.Category)
	assert.Equal(t, "killed", serr.Details["signal"])
	assert.Equal(t, victim.WorkerID, serr.WorkerID)

	// The pool recovers to full size with a new process for that worker.
	waitStats(t, app, "default", "the pool to be back to 2 ready workers", func(s statsView) bool { return s.Ready == 2 && s.Restarts == 1 })
	m, found, err := reg.Lookup(ctx, victim.WorkerID)
	require.NoError(t, err)
	require.True(t, found)
	assert.NotEqual(t, victim.OSPid, m.OSPid)
	assert.Greater(t, m.Generation, victim.Generation)
	for range 4 {
		_, err := app.Execute(ctx, "ping", nil)
		require.NoError(t, err)
	}
}

func TestStopWithCallsInFlightAnswersEachOnce(t *testing.T) {
	app := startApp(t, onePool(2, nil))
	ctx := t.Context()
	const calls = 6
	var c collect
	for range calls {
		c.run(func() error { _, err := app.Execute(ctx, "sleep", map[string]any{"ms": 3000}); return err })
	}
	waitStats(t, app, "default", "2 running and 4 queued", func(s statsView) bool { return s.Busy == 2 && s.Queued == calls-2 })
	stopAndCheck(t, app)
	errs := c.wait(t)
	require.Len(t, errs, calls, "every call returned exactly once")
	for _, err := range errs {
		require.Error(t, err)
		assert.True(t, errors.Is(err, snakepit.ErrShutdown) || errors.Is(err, snakepit.ErrWorkerExit), "got %v", err)
	}
	_, err := app.Execute(ctx, "ping", nil)
	assert.ErrorIs(t, err, snakepit.ErrShutdown, "a stopped app refuses calls")
}

func TestPoolInitFailureAnswersPoolNotInitialized(t *testing.T) {
	cfg := onePool(2, func(p *snakepit.PoolConfig) { p.Adapter = "no.such.Adapter"; p.ReadyTimeout = 20 * time.Second })
	app := startAppNoWait(t, cfg)
	err := app.AwaitReady(t.Context())
	require.ErrorIs(t, err, snakepit.ErrPoolNotInitialized)
	assert.ErrorContains(t, err, "No module named 'no'", "the worker's own output says why")
	start := time.Now()
	_, err = app.Execute(t.Context(), "ping", nil)
	require.ErrorIs(t, err, snakepit.ErrPoolNotInitialized)
	assert.Less(t, time.Since(start), time.Second, "answered at once")
}

func TestSeveralNamedPools(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{
		{Name: "a", Size: 1, AdapterEnv: []string{"POOL_TAG=alpha"}},
		{Name: "b", Size: 1, AdapterEnv: []string{"POOL_TAG=beta"}, Transport: snakepit.TransportTCP},
	}})
	for pool, tag := range map[string]string{"a": "alpha", "b": "beta"} {
		res, err := app.Execute(t.Context(), "whoami", map[string]any{"env_keys": []string{"POOL_TAG"}}, snakepit.WithPool(pool))
		require.NoError(t, err)
		var who struct {
			Env map[string]string `json:"env"`
		}
		require.NoError(t, res.Decode(&who))
		assert.Equal(t, tag, who.Env["POOL_TAG"], "pool %s", pool)
		ids, err := app.ListWorkers(t.Context(), pool)
		require.NoError(t, err)
		assert.Equal(t, []string{pool + "-w1"}, ids)
	}
	_, err := app.Execute(t.Context(), "ping", nil)
	assert.ErrorIs(t, err, snakepit.ErrPoolNotFound, "no default pool among several")
}

// The thread profile runs a worker's calls at once: four calls of a
// rendezvous tool return only if all four run in the Python process
// together (a barrier of 4 that breaks after 10 s), so calls run one after
// another fail instead of passing slowly.
// The four calls meet at a barrier inside the one worker process: none of
// them can return before all four run at once, so a serial run fails
// (the barrier breaks after 10 s) however fast the machine is. Each call
// is told its place in the arrival order: all four places are taken.
func TestThreadProfileRunsCallsConcurrently(t *testing.T) {
	pool := edgePool(t, snakepit.PoolConfig{Name: "default", Size: 1, Profile: snakepit.ProfileThread, Threads: 4})
	pool.Adapter = "bridge_test_adapters.ThreadSafeEdge"
	app := startApp(t, edgeConfig(t, "", pool))
	places := make(chan *snakepit.Result, 4)
	var c collect
	for range 4 {
		c.run(func() error {
			res, err := app.Execute(t.Context(), "sync_rendezvous", map[string]any{"group": "four", "peers": 4})
			if err == nil {
				places <- res
			}
			return err
		})
	}
	for _, err := range c.wait(t) {
		assert.NoError(t, err, "all four calls met inside one worker process")
	}
	close(places)
	got := map[float64]bool{}
	for res := range places {
		got[decodeJSON(t, res).(float64)] = true
	}
	assert.Equal(t, map[float64]bool{1: true, 2: true, 3: true, 4: true}, got, "four calls at the barrier at once")
	st, err := app.Stats(t.Context(), "default")
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Workers, "one worker served them")
	assert.EqualValues(t, 4, st.Requests, "each call ran once")
}

func TestStreamRecvAfterEndIsEOF(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	st, err := app.ExecuteStream(t.Context(), "stream_count", map[string]any{"n": 1})
	require.NoError(t, err)
	_, err = st.Recv()
	require.NoError(t, err)
	_, err = st.Recv()
	assert.ErrorIs(t, err, io.EOF)
	_, err = st.Recv()
	assert.ErrorIs(t, err, io.EOF)
}

func TestCancelQueuedCall(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	var c collect
	c.run(func() error { _, err := app.Execute(t.Context(), "sleep", map[string]any{"ms": 1000}); return err })
	waitStats(t, app, "default", "the worker to be busy", func(s statsView) bool { return s.Busy == 1 })

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := app.Execute(ctx, "ping", nil); errc <- err }()
	waitStats(t, app, "default", "the ping to queue", func(s statsView) bool { return s.Queued == 1 })
	cancel()
	err := <-errc
	assert.ErrorIs(t, err, snakepit.ErrCancelled)
	assert.ErrorIs(t, err, context.Canceled)
	waitStats(t, app, "default", "the queue to empty", func(s statsView) bool { return s.Queued == 0 })
	for _, err := range c.wait(t) {
		assert.NoError(t, err, "the running call is untouched")
	}
	s := waitStats(t, app, "default", "stats to settle", func(s statsView) bool { return s.InFlight == 0 })
	assert.EqualValues(t, 2, s.Requests)
	assert.EqualValues(t, 1, s.Completed, "the cancelled call never ran")
}

// streamRecord is one entry of the showcase's stream_stats.
type streamRecord struct {
	N         int  `json:"n"`
	Produced  int  `json:"produced"`
	Closed    bool `json:"closed"`
	Completed bool `json:"completed"`
}

func lastStream(t *testing.T, app *snakepit.App) streamRecord {
	t.Helper()
	res, err := app.Execute(t.Context(), "stream_stats", nil)
	require.NoError(t, err)
	var recs []streamRecord
	require.NoError(t, res.Decode(&recs))
	require.NotEmpty(t, recs)
	return recs[len(recs)-1]
}

// A reader that stops reading holds the Python generator back (inbox →
// executor goroutine → gRPC flow control → generator), and closing the
// stream closes the generator.
func TestStreamBackPressureHoldsThePythonGenerator(t *testing.T) {
	// Two threads, so stream_stats can run beside the stream.
	app := startApp(t, onePool(1, func(p *snakepit.PoolConfig) { p.Profile = snakepit.ProfileThread; p.Threads = 2 }))
	const n = 2_000_000
	st, err := app.ExecuteStream(t.Context(), "stream_count", map[string]any{"n": n})
	require.NoError(t, err)
	_, err = st.Recv()
	require.NoError(t, err)

	// Wait until production stops moving: it is held back.
	var held streamRecord
	deadline := time.Now().Add(20 * time.Second)
	for prev := -1; time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		held = lastStream(t, app)
		if held.Produced == prev {
			break
		}
		prev = held.Produced
	}
	require.Equal(t, n, held.N)
	assert.False(t, held.Completed)
	assert.Less(t, held.Produced, n/10, "the generator ran ahead of a reader that stopped reading")
	t.Logf("generator held at %d of %d items", held.Produced, n)

	st.Close()
	require.Eventually(t, func() bool { return lastStream(t, app).Closed }, 10*time.Second, 20*time.Millisecond,
		"closing the stream closes the generator")
	assert.False(t, lastStream(t, app).Completed)
}

// A pool actor that stops is restarted by the runtime supervisor; the new
// pool replaces the old pool's workers (it cannot know their calls) and
// serves again. No process of the old workers survives.
func TestPoolRestartReplacesItsWorkers(t *testing.T) {
	app := startApp(t, onePool(2, nil))
	ctx := t.Context()
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	before, err := reg.ListPool(ctx, "default")
	require.NoError(t, err)
	require.Len(t, before, 2)

	require.NoError(t, app.System().Root.StopFuture(app.Pool("")).Wait())
	require.Eventually(t, func() bool {
		after, err := reg.ListPool(ctx, "default")
		if err != nil || len(after) != 2 {
			return false
		}
		for i := range after {
			if after[i].OSPid == before[i].OSPid {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "both workers replaced")
	require.NoError(t, app.AwaitInitComplete(ctx))
	_, err = app.Execute(ctx, "ping", nil)
	require.NoError(t, err)
	for _, w := range before {
		assert.False(t, testutil.Alive(w.OSPid), "old worker process %d is gone", w.OSPid)
	}
}

// A stream nobody reads or closes must not hold Stop up or leave a goroutine
// blocked on it (goleak checks the package at the end).
func TestStopWithAnAbandonedStream(t *testing.T) {
	app := startApp(t, onePool(1, func(p *snakepit.PoolConfig) { p.Profile = snakepit.ProfileThread; p.Threads = 2 }))
	st, err := app.ExecuteStream(t.Context(), "stream_count", map[string]any{"n": 1_000_000})
	require.NoError(t, err)
	// Never read, never closed: wait until the generator is held back, so the
	// worker's call goroutine is surely blocked on the full stream.
	for prev, deadline := -1, time.Now().Add(20*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		res, err := app.Execute(t.Context(), "stream_stats", nil)
		require.NoError(t, err)
		var recs []streamRecord
		require.NoError(t, res.Decode(&recs))
		if len(recs) == 0 {
			continue
		}
		cur := recs[len(recs)-1].Produced
		if cur > 0 && cur == prev {
			break
		}
		prev = cur
	}
	start := time.Now()
	stopAndCheck(t, app)
	assert.Less(t, time.Since(start), 3*time.Second, "stop did not wait for the blocked call goroutine")
	_, err = st.Recv()
	assert.ErrorIs(t, err, snakepit.ErrShutdown, "the stream ends with the app")
}

// A stream nobody reads or closes ends at its deadline and gives its worker
// back (its call goroutine was blocked on the full stream).
func TestAbandonedStreamReleasesItsWorkerAtItsDeadline(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	st, err := app.ExecuteStream(t.Context(), "stream_count", map[string]any{"n": 1_000_000}, snakepit.WithTimeout(300*time.Millisecond))
	require.NoError(t, err)
	waitStats(t, app, "default", "the stream to run", func(s statsView) bool { return s.InFlight == 1 })
	// The worker is taken by the stream until its deadline (plus the grace
	// for the pool's own reply); then this call runs.
	res, err := app.Execute(t.Context(), "ping", nil)
	require.NoError(t, err)
	assert.JSONEq(t, `"pong"`, string(res.JSON))
	_, err = st.Recv()
	assert.ErrorIs(t, err, snakepit.ErrDeadlineExceeded)
}

// Close may be called from another goroutine to end a Recv that waits.
func TestStreamCloseFromAnotherGoroutineEndsRecv(t *testing.T) {
	app := startApp(t, onePool(1, nil))
	st, err := app.ExecuteStream(t.Context(), "stream_count", map[string]any{"n": 10, "delay_ms": 60_000})
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { _, err := st.Recv(); errc <- err }()
	waitStats(t, app, "default", "the stream to run", func(s statsView) bool { return s.InFlight == 1 })
	st.Close()
	select {
	case err := <-errc:
		assert.ErrorIs(t, err, snakepit.ErrCancelled)
	case <-time.After(10 * time.Second):
		t.Fatal("Recv still waits after Close")
	}
	waitStats(t, app, "default", "the worker to be free", func(s statsView) bool { return s.InFlight == 0 })
}
