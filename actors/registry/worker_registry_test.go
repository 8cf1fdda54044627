package registry

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// waitFor bounds every wait on a condition in these tests.
const waitFor = 5 * time.Second

var discard = slog.New(slog.DiscardHandler)

func stop(t *testing.T, sys *actor.ActorSystem, pid *actor.PID) {
	t.Helper()
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
}

// startRegistry spawns a worker registry and returns a client for it.
func startRegistry(t *testing.T, sys *actor.ActorSystem, opts ...Option) *Client {
	t.Helper()
	pid := testutil.Spawn(t, sys, Props(append([]Option{WithLogger(discard)}, opts...)...))
	return &Client{Root: sys.Root, PID: pid, Timeout: waitFor}
}

// idleProps is a stand-in worker actor that ignores every message.
func idleProps() *actor.Props {
	return actor.PropsFromFunc(func(actor.Context) {})
}

func meta(id, pool string, pid *actor.PID, osPid int) WorkerMeta {
	return WorkerMeta{WorkerID: id, PID: pid, PoolName: pool, OSPid: osPid}
}

func ids(ws []WorkerMeta) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.WorkerID)
	}
	return out
}

// gone reports whether worker id, its PID and its OS pid no longer resolve.
func gone(t *testing.T, c *Client, m WorkerMeta) bool {
	ctx := context.Background()
	_, byID, err := c.Lookup(ctx, m.WorkerID)
	require.NoError(t, err)
	_, byPID, err := c.LookupPID(ctx, m.PID)
	require.NoError(t, err)
	_, byOS, err := c.LookupOSPid(ctx, m.OSPid)
	require.NoError(t, err)
	return !byID && !byPID && !byOS
}

func TestRegisterStoresEveryField(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	worker := testutil.Spawn(t, sys, idleProps())
	want := WorkerMeta{
		WorkerID:       "ml-worker-1",
		PID:            worker,
		PoolName:       "ml",
		PoolIdentifier: "prod/ml",
		WorkerModule:   "worker.GRPCWorker",
		Adapter:        "myproj.adapters.Model",
		OSPid:          4242,
		PGID:           4240,
		StartedAt:      time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600)),
		Generation:     7,
	}
	// The fixture sets every field, so a field the registry dropped would show.
	v := reflect.ValueOf(want)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "fixture leaves %s unset", v.Type().Field(i).Name)
	}

	ctx := context.Background()
	require.NoError(t, c.Register(ctx, want))
	got, found, err := c.Lookup(ctx, want.WorkerID)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, want, got)
	assert.True(t, got.StartedAt.Equal(want.StartedAt))
	assert.True(t, got.PID.Equal(worker))

	_, found, err = c.Lookup(ctx, "nobody")
	require.NoError(t, err)
	assert.False(t, found)
}

func TestReverseLookups(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	a, b := testutil.Spawn(t, sys, idleProps()), testutil.Spawn(t, sys, idleProps())
	require.NoError(t, c.Register(ctx, meta("a", "p", a, 101)))
	require.NoError(t, c.Register(ctx, meta("b", "p", b, 102)))

	// A PID rebuilt from address and id, not the pointer the worker registered with.
	got, found, err := c.LookupPID(ctx, actor.NewPID(b.Address, b.Id))
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "b", got.WorkerID)

	got, found, err = c.LookupOSPid(ctx, 101)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, "a", got.WorkerID)

	_, found, err = c.LookupPID(ctx, actor.NewPID(a.Address, "no-such-actor"))
	require.NoError(t, err)
	assert.False(t, found)
	_, found, err = c.LookupPID(ctx, nil)
	require.NoError(t, err)
	assert.False(t, found)
	_, found, err = c.LookupOSPid(ctx, 999)
	require.NoError(t, err)
	assert.False(t, found)
}

func TestListPoolAndListAll(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	w := testutil.Spawn(t, sys, idleProps())
	for i, m := range []WorkerMeta{
		meta("c3", "cpu", w, 3), meta("g2", "gpu", w, 2), meta("c1", "cpu", w, 1), meta("c2", "cpu", w, 4),
	} {
		require.NoError(t, c.Register(ctx, m), "worker %d", i)
	}

	cpu, err := c.ListPool(ctx, "cpu")
	require.NoError(t, err)
	assert.Equal(t, []string{"c1", "c2", "c3"}, ids(cpu))
	gpu, err := c.ListPool(ctx, "gpu")
	require.NoError(t, err)
	assert.Equal(t, []string{"g2"}, ids(gpu))
	none, err := c.ListPool(ctx, "tpu")
	require.NoError(t, err)
	assert.Empty(t, none)
	all, err := c.ListAll(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"c1", "c2", "c3", "g2"}, ids(all))
}

func TestRegisterSameIDFromAnotherLivePIDFails(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	first, second := testutil.Spawn(t, sys, idleProps()), testutil.Spawn(t, sys, idleProps())
	require.NoError(t, c.Register(ctx, meta("w", "p", first, 10)))

	err := c.Register(ctx, meta("w", "p", second, 20))
	require.ErrorIs(t, err, ErrAlreadyRegistered)
	assert.Contains(t, err.Error(), `"w"`)

	got, found, err := c.Lookup(ctx, "w")
	require.NoError(t, err)
	require.True(t, found)
	assert.True(t, got.PID.Equal(first))
	_, found, err = c.LookupOSPid(ctx, 20)
	require.NoError(t, err)
	assert.False(t, found, "a refused registration must not touch the indexes")

	// The same PID registering the same id again replaces its entry.
	require.NoError(t, c.Register(ctx, meta("w", "p", first, 11)))
	got, _, err = c.Lookup(ctx, "w")
	require.NoError(t, err)
	assert.Equal(t, 11, got.OSPid)
}

func TestEntriesVanishWhenWorkerStops(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	worker := sys.Root.Spawn(idleProps())
	other := testutil.Spawn(t, sys, idleProps())
	m1, m2 := meta("w1", "p", worker, 1), meta("w2", "p", worker, 2)
	require.NoError(t, c.Register(ctx, m1))
	require.NoError(t, c.Register(ctx, m2))
	require.NoError(t, c.Register(ctx, meta("w3", "p", other, 3)))

	stop(t, sys, worker)
	require.Eventually(t, func() bool { return gone(t, c, m1) && gone(t, c, m2) }, waitFor, time.Millisecond)
	all, err := c.ListAll(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"w3"}, ids(all))
}

func TestRegistrationOfStoppedActorVanishes(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	worker := sys.Root.Spawn(idleProps())
	stop(t, sys, worker)

	// The watch of a PID that is gone already answers Terminated at once.
	m := meta("late", "p", worker, 5)
	require.NoError(t, c.Register(context.Background(), m))
	require.Eventually(t, func() bool { return gone(t, c, m) }, waitFor, time.Millisecond)
}

// A Terminated that arrives after a new actor took the same name (and registered) concerns the old actor
// only: the new actor's entry stays.
func TestLateTerminatedKeepsEntryOfNewActorWithSameName(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	old, err := sys.Root.SpawnNamed(idleProps(), "worker-x")
	require.NoError(t, err)
	require.NoError(t, c.Register(ctx, meta("x", "p", old, 1)))
	stop(t, sys, old)
	require.Eventually(t, func() bool { return gone(t, c, meta("x", "p", old, 1)) }, waitFor, time.Millisecond)

	renewed, err := sys.Root.SpawnNamed(idleProps(), "worker-x")
	require.NoError(t, err)
	t.Cleanup(func() { stop(t, sys, renewed) })
	require.True(t, renewed.Equal(old), "same name, same PID")
	require.NoError(t, c.Register(ctx, meta("x", "p", renewed, 2)))

	// Deliver the old actor's Terminated again, as if it had been late. System messages go before
	// the Lookup that follows.
	proc, ok := sys.ProcessRegistry.Get(c.PID)
	require.True(t, ok)
	proc.SendSystemMessage(c.PID, &actor.Terminated{Who: actor.NewPID(old.Address, old.Id)})
	got, found, err := c.Lookup(ctx, "x")
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, 2, got.OSPid)
}

// restartingWorker registers in Started with a fresh OS pid and generation (as a worker does after it
// starts its Python process) and panics on "crash".
type restartingWorker struct {
	registry *actor.PID
	gen      *atomic.Uint64 // shared across restarts: the producer makes a new instance each time
	results  chan<- RegisterResult
}

func (w *restartingWorker) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		g := w.gen.Add(1)
		ctx.Request(w.registry, &Register{Meta: WorkerMeta{
			WorkerID: "w", PID: ctx.Self(), PoolName: "p", OSPid: 1000 + int(g), Generation: g,
			StartedAt: time.Now(),
		}})
	case *RegisterResult:
		w.results <- *msg
	case string:
		if msg == "crash" {
			panic("worker crashed")
		}
	}
}

func TestReRegistrationAfterRestart(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	results := make(chan RegisterResult, 2)
	var gen atomic.Uint64
	worker := testutil.Spawn(t, sys, actor.PropsFromProducer(func() actor.Actor {
		return &restartingWorker{registry: c.PID, gen: &gen, results: results}
	}))
	awaitRegistered := func() {
		t.Helper()
		select {
		case res := <-results:
			require.NoError(t, res.Err)
		case <-time.After(waitFor):
			t.Fatal("worker did not register")
		}
	}
	awaitRegistered()
	first, found, err := c.Lookup(ctx, "w")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, uint64(1), first.Generation)

	sys.Root.Send(worker, "crash")
	awaitRegistered()

	got, found, err := c.Lookup(ctx, "w")
	require.NoError(t, err)
	require.True(t, found)
	assert.True(t, got.PID.Equal(worker), "restarted in place keeps the PID")
	assert.Equal(t, uint64(2), got.Generation)
	assert.Equal(t, 1002, got.OSPid)

	byPID, found, err := c.LookupPID(ctx, worker)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, got, byPID)
	byOS, found, err := c.LookupOSPid(ctx, 1002)
	require.NoError(t, err)
	require.True(t, found)
	assert.Equal(t, got, byOS)
	_, found, err = c.LookupOSPid(ctx, first.OSPid)
	require.NoError(t, err)
	assert.False(t, found, "the old OS pid must not resolve")
	all, err := c.ListAll(ctx)
	require.NoError(t, err)
	assert.Len(t, all, 1)

	// The watch survives the restart: stopping the worker still clears its entry.
	stop(t, sys, worker)
	require.Eventually(t, func() bool { return gone(t, c, got) }, waitFor, time.Millisecond)
}

func TestRegisterWithoutSender(t *testing.T) {
	var logs testutil.SyncBuffer
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	worker := testutil.Spawn(t, sys, idleProps())

	sys.Root.Send(c.PID, &Register{Meta: meta("w", "p", worker, 7)})
	require.Eventually(t, func() bool {
		_, found, err := c.Lookup(context.Background(), "w")
		return err == nil && found
	}, waitFor, time.Millisecond)

	// A rejected registration that nobody waits for is logged, not dropped silently.
	sys.Root.Send(c.PID, &Register{Meta: meta("", "p", worker, 7)})
	require.Eventually(t, func() bool {
		return bytes.Contains(logs.Bytes(), []byte("worker registration rejected"))
	}, waitFor, time.Millisecond)
}

func TestUnregister(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	ctx := context.Background()
	worker := testutil.Spawn(t, sys, idleProps())
	m := meta("w", "p", worker, 9)
	require.NoError(t, c.Register(ctx, m))

	found, err := c.Unregister(ctx, "w")
	require.NoError(t, err)
	assert.True(t, found)
	assert.True(t, gone(t, c, m))

	found, err = c.Unregister(ctx, "w")
	require.NoError(t, err)
	assert.False(t, found)

	// The id is free again, for another PID too.
	other := testutil.Spawn(t, sys, idleProps())
	require.NoError(t, c.Register(ctx, meta("w", "p", other, 10)))
}

func TestInvalidMetaRejected(t *testing.T) {
	sys := testutil.NewSystem(t)
	c := startRegistry(t, sys)
	worker := testutil.Spawn(t, sys, idleProps())
	valid := meta("w", "p", worker, 1)
	tests := []struct {
		name   string
		change func(*WorkerMeta)
		want   string
	}{
		{"no worker id", func(m *WorkerMeta) { m.WorkerID = "" }, "worker id is empty"},
		{"no PID", func(m *WorkerMeta) { m.PID = nil }, "worker PID is missing"},
		{"PID without id", func(m *WorkerMeta) { m.PID = actor.NewPID(worker.Address, "") }, "worker PID is missing"},
		{"no pool", func(m *WorkerMeta) { m.PoolName = "" }, "pool name is empty"},
		{"zero OS pid", func(m *WorkerMeta) { m.OSPid = 0 }, "OS pid 0 is not positive"},
		{"negative OS pid", func(m *WorkerMeta) { m.OSPid = -3 }, "OS pid -3 is not positive"},
		{"negative process group", func(m *WorkerMeta) { m.PGID = -1 }, "process group -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid
			tt.change(&m)
			err := m.Validate()
			require.ErrorIs(t, err, ErrInvalidMeta)
			assert.Contains(t, err.Error(), tt.want)

			err = c.Register(context.Background(), m)
			require.ErrorIs(t, err, ErrInvalidMeta)
			all, lerr := c.ListAll(context.Background())
			require.NoError(t, lerr)
			assert.Empty(t, all)
		})
	}
	require.NoError(t, valid.Validate())

	err := WorkerMeta{}.Validate()
	require.ErrorIs(t, err, ErrInvalidMeta)
	for _, want := range []string{"worker id", "PID", "pool name", "OS pid"} {
		assert.Contains(t, err.Error(), want, "every problem is named")
	}
}

// silentProps is a stand-in registry that never answers; it reports each request it receives.
func silentProps(received chan<- struct{}) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*Lookup); ok {
			received <- struct{}{}
		}
	})
}

func TestClientHonoursContext(t *testing.T) {
	sys := testutil.NewSystem(t)
	received := make(chan struct{}, 1)
	// A minute-long client timeout: a client that ignored ctx would hang far past waitFor.
	c := &Client{Root: sys.Root, PID: testutil.Spawn(t, sys, silentProps(received)), Timeout: time.Minute}

	call := func(ctx context.Context) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, _, err := c.Lookup(ctx, "w")
			done <- err
		}()
		return done
	}
	await := func(t *testing.T, done <-chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(waitFor):
			t.Fatal("client did not return after its context ended")
			return nil
		}
	}

	t.Run("cancelled before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, await(t, call(ctx)), context.Canceled)
		assert.Empty(t, received, "a cancelled call sends nothing")
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := call(ctx)
		<-received
		cancel()
		require.ErrorIs(t, await(t, done), context.Canceled)
	})
	t.Run("deadline while waiting", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		done := call(ctx)
		<-received
		require.ErrorIs(t, await(t, done), context.DeadlineExceeded)
	})
	t.Run("client timeout", func(t *testing.T) {
		short := *c
		short.Timeout = 20 * time.Millisecond
		_, _, err := short.Lookup(context.Background(), "w")
		<-received
		require.ErrorIs(t, err, actor.ErrTimeout)
	})
}

func TestWorkerTable(t *testing.T) {
	a, b := actor.NewPID("nonhost", "a"), actor.NewPID("nonhost", "b")
	alive := func(entry) bool { return true }
	dead := func(entry) bool { return false }

	t.Run("stale holder of an id is replaced", func(t *testing.T) {
		tb := newWorkerTable()
		_, err := tb.register(entry{meta: meta("w", "p", a, 1)}, alive)
		require.NoError(t, err)
		_, err = tb.register(entry{meta: meta("w", "p", b, 2)}, alive)
		require.ErrorIs(t, err, ErrAlreadyRegistered)

		orphan, err := tb.register(entry{meta: meta("w", "p", b, 2)}, dead)
		require.NoError(t, err)
		require.NotNil(t, orphan)
		assert.True(t, orphan.Equal(a), "the replaced PID has no entry left: unwatch it")
		assert.False(t, tb.hasPID(keyOf(a)))
		_, found := tb.getOSPid(1)
		assert.False(t, found)
	})
	t.Run("replaced PID with other entries is not orphaned", func(t *testing.T) {
		tb := newWorkerTable()
		for _, m := range []WorkerMeta{meta("w", "p", a, 1), meta("v", "p", a, 3)} {
			_, err := tb.register(entry{meta: m}, alive)
			require.NoError(t, err)
		}
		orphan, err := tb.register(entry{meta: meta("w", "p", b, 2)}, dead)
		require.NoError(t, err)
		assert.Nil(t, orphan)
	})
	t.Run("reused OS pid resolves to the latest registration", func(t *testing.T) {
		tb := newWorkerTable()
		for _, m := range []WorkerMeta{meta("old", "p", a, 77), meta("new", "p", b, 77)} {
			_, err := tb.register(entry{meta: m}, alive)
			require.NoError(t, err)
		}
		got, found := tb.getOSPid(77)
		require.True(t, found)
		assert.Equal(t, "new", got.WorkerID)
		tb.remove("old")
		got, found = tb.getOSPid(77)
		require.True(t, found, "removing the stale entry keeps the newer one's OS pid")
		assert.Equal(t, "new", got.WorkerID)
	})
	t.Run("dropPID keeps what keep says", func(t *testing.T) {
		tb := newWorkerTable()
		for i, id := range []string{"w1", "w2", "w3"} {
			_, err := tb.register(entry{meta: meta(id, "p", a, 10+i), instance: id}, alive)
			require.NoError(t, err)
		}
		dropped := tb.dropPID(keyOf(a), func(e entry) bool { return e.instance == "w2" })
		assert.Equal(t, []string{"w1", "w3"}, dropped)
		got, found := tb.getPID(keyOf(a))
		require.True(t, found)
		assert.Equal(t, "w2", got.WorkerID)
	})
}
