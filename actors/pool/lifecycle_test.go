package pool

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// events records what the pool publishes.
type events struct {
	mu   sync.Mutex
	list []any
}

func (e *events) Publish(evt any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, evt)
}

func (e *events) recycled() []*WorkerRecycled {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*WorkerRecycled
	for _, x := range e.list {
		if r, ok := x.(*WorkerRecycled); ok {
			out = append(out, r)
		}
	}
	return out
}

func (e *events) of(kind func(any) bool) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, x := range e.list {
		if kind(x) {
			n++
		}
	}
	return n
}

func (h *harness) recycle(id string, reason lifecycle.Reason) {
	h.tb.Helper()
	r, ok := h.ask(&Recycle{WorkerID: id, Reason: reason}).(*RecycleResult)
	require.True(h.tb, ok)
	require.NoError(h.tb, r.Err)
}

func (h *harness) states() *WorkerStates {
	h.tb.Helper()
	s, ok := h.ask(&GetWorkerStates{}).(*WorkerStates)
	require.True(h.tb, ok)
	return s
}

func TestRecycleIsGracefulAndOneAtATime(t *testing.T) {
	ev := &events{}
	env := newFakeEnv()
	h := startPool(t, env, Config{Size: 2, Events: ev})
	h.ready()
	h.send(exec("long", "gate"))
	w := h.seen("long").worker
	other := "p-w1"
	if w == "p-w1" {
		other = "p-w2"
	}
	h.recycle(w, lifecycle.ReasonManual)
	h.recycle(other, lifecycle.ReasonTTL)
	// The busy worker drains: new calls go elsewhere, its call runs on.
	// Only one worker is out at a time, so the other keeps serving.
	res := h.call(exec("x", "ok"))
	require.Nil(t, res.GetError())
	assert.Equal(t, other, res.GetWorkerId())
	assert.Empty(t, ev.recycled(), "not stopped while its call runs")

	h.env.open("long")
	require.Nil(t, errOf(h.terminal("long")), "the running call finished normally")
	testutil.Eventually(t, "both recycled", func() bool { return len(ev.recycled()) == 2 })
	h.waitStats("both back", func(s *poolpb.Stats) bool { return s.GetReady() == 2 && s.GetRecycled() == 2 })
	rec := ev.recycled()
	assert.Equal(t, w, rec[0].WorkerID, "first come, first recycled")
	assert.Equal(t, lifecycle.ReasonManual, rec[0].Reason)
	assert.Equal(t, other, rec[1].WorkerID)
	assert.Equal(t, lifecycle.ReasonTTL, rec[1].Reason)
	assert.Equal(t, uint64(2), env.generation(w))
	assert.Equal(t, uint64(2), env.generation(other))
	h.exactlyOnce("long")
}

func TestRecycleUnknownWorker(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{})
	h.ready()
	r := h.ask(&Recycle{WorkerID: "nope"}).(*RecycleResult)
	requireCode(t, sperr.ErrInvalidArgument, r.Err.(*sperr.Error))
}

func TestMaxRequestsRecyclesOnTheCall(t *testing.T) {
	ev := &events{}
	env := newFakeEnv()
	h := startPool(t, env, Config{MaxRequests: 3, Events: ev})
	h.ready()
	for _, id := range []string{"a", "b"} {
		require.Nil(t, h.call(exec(id, "ok")).GetError())
	}
	require.NotNil(t, h.call(exec("c", "fail")).GetError(), "a failed call does not count")
	require.Nil(t, h.call(exec("d", "ok")).GetError())
	testutil.Eventually(t, "recycled at 3 successes", func() bool { return len(ev.recycled()) == 1 })
	r := ev.recycled()[0]
	assert.Equal(t, lifecycle.ReasonMaxRequests, r.Reason)
	assert.Equal(t, 3, r.Requests)
	h.waitStats("replacement ready", func(s *poolpb.Stats) bool { return s.GetReady() == 1 })
	st := h.states()
	require.Len(t, st.Workers, 1)
	assert.Equal(t, 0, st.Workers[0].Requests, "a new generation starts counting again")
	assert.Equal(t, 3, st.Workers[0].MaxRequests)
}

func TestResize(t *testing.T) {
	env := newFakeEnv()
	h := startPool(t, env, Config{Size: 1})
	h.ready()
	require.Nil(t, h.ask(&Resize{Size: 3}).(*ResizeResult).Err)
	h.waitStats("grown", func(s *poolpb.Stats) bool { return s.GetReady() == 3 && s.GetWorkers() == 3 })
	// A call running on a removed worker finishes first.
	for _, id := range []string{"g1", "g2", "g3"} {
		h.send(exec(id, "gate"))
	}
	h.waitStats("all busy", func(s *poolpb.Stats) bool { return s.GetBusy() == 3 })
	require.Nil(t, h.ask(&Resize{Size: 1}).(*ResizeResult).Err)
	list := h.ask(&poolpb.ListWorkers{}).(*poolpb.WorkerList)
	assert.Len(t, list.GetWorkerIds(), 3, "draining workers stay until their calls end")
	for _, id := range []string{"g1", "g2", "g3"} {
		h.seen(id) // entered: its gate exists
	}
	h.env.openAll()
	h.waitStats("shrunk", func(s *poolpb.Stats) bool { return s.GetWorkers() == 1 && s.GetReady() == 1 })
	list = h.ask(&poolpb.ListWorkers{}).(*poolpb.WorkerList)
	assert.Equal(t, []string{"p-w1"}, list.GetWorkerIds())
	h.exactlyOnce("g1", "g2", "g3")
	require.NotNil(t, h.ask(&Resize{Size: 0}).(*ResizeResult).Err)
}

func TestIdempotentCallSurvivesAWorkerCrash(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 2})
	h.ready()
	req := exec("idem", "gate")
	req.Idempotent = true
	h.send(req)
	first := h.seen("idem").worker

	h.crash(first)
	testutil.Eventually(t, "the idempotent call runs again on the other worker", func() bool {
		s, ok := h.env.seen("idem")
		return ok && s.worker != first
	})
	h.env.open("idem")
	require.Nil(t, errOf(h.terminal("idem")), "answered once, by the retry")
	h.idle()
	h.exactlyOnce("idem")
	assert.EqualValues(t, 1, h.stats().GetRetried())

	// Without the flag a crash is the caller's worker_exit.
	h.send(exec("once", "gate"))
	w := h.seen("once").worker
	h.crash(w)
	requireCode(t, sperr.ErrWorkerExit, errOf(h.terminal("once")))
}

func TestCrashBreakerOpensThenRecovers(t *testing.T) {
	ev := &events{}
	h := startPool(t, newFakeEnv(), Config{Events: ev, Crash: CrashBarrier{Breaker: BreakerConfig{Threshold: 2, Window: time.Minute, OpenFor: 300 * time.Millisecond}}})
	h.ready()
	for i := range 2 {
		h.crash("p-w1")
		h.waitStats("restarted", func(s *poolpb.Stats) bool { return s.GetReady() == 1 && s.GetWorkerRestarts() == uint64(i+1) })
	}
	st := h.stats()
	assert.Equal(t, string(BreakerOpen), st.GetCircuit())
	e := errOf(h.call(exec("refused", "ok")))
	requireCode(t, sperr.ErrCircuitOpen, e)
	assert.NotEmpty(t, e.Details["retry_after_ms"])
	assert.EqualValues(t, 1, h.stats().GetCircuitRejected())

	testutil.Eventually(t, "half-open after OpenFor", func() bool { return h.stats().GetCircuit() == string(BreakerHalfOpen) })
	require.Nil(t, h.call(exec("trial", "ok")).GetError(), "the trial call runs")
	testutil.Eventually(t, "closed after a good trial", func() bool { return h.stats().GetCircuit() == string(BreakerClosed) })
	require.Nil(t, h.call(exec("after", "ok")).GetError())
	for _, to := range []BreakerState{BreakerOpen, BreakerClosed} {
		assert.Equal(t, 1, ev.of(func(x any) bool { c, ok := x.(*CircuitChanged); return ok && c.To == to }), "a change to %s", to)
	}
}

func TestTaintKeepsACrashedWorkerOutForAWhile(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 2, Crash: CrashBarrier{TaintDuration: 400 * time.Millisecond}})
	h.ready()
	h.crash("p-w1")
	h.waitStats("tainted replacement", func(s *poolpb.Stats) bool { return s.GetTainted() == 1 && s.GetWorkerRestarts() == 1 })
	for _, id := range []string{"a", "b", "c"} {
		res := h.call(exec(id, "ok"))
		require.Nil(t, res.GetError())
		assert.Equal(t, "p-w2", res.GetWorkerId(), "the tainted worker gets no call")
		h.idle()
	}
	h.waitStats("taint over", func(s *poolpb.Stats) bool { return s.GetTainted() == 0 })
	h.send(exec("g1", "gate"))
	h.send(exec("g2", "gate"))
	assert.NotEqual(t, h.seen("g1").worker, h.seen("g2").worker, "both workers take calls again")
	h.env.open("g1")
	h.env.open("g2")
	h.idle()
}

func TestReconcileRestartsAFailedSlotWithBackoff(t *testing.T) {
	env := newFakeEnv()
	env.failStarts["p-w2"] = 2 // the first start and the first retry fail
	h := startPool(t, env, Config{Size: 2, ReconcileBackoff: 30 * time.Millisecond})
	h.waitStats("w2 eventually ready", func(s *poolpb.Stats) bool { return s.GetReady() == 2 })
	assert.Equal(t, uint64(3), env.generation("p-w2"), "two failures, then a start that worked")
}

func TestAnUnresponsiveWorkerGetsNoCallUntilItAnswers(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 2})
	h.ready()
	gen := h.env.generation("p-w1")
	h.sys.Root.Send(h.pool, &wk.Responsive{WorkerID: "p-w1", Generation: gen + 100, OK: false}) // another generation's: ignored
	h.sys.Root.Send(h.pool, &wk.Responsive{WorkerID: "p-w1", Generation: gen, OK: false, Reason: "probe timed out"})
	for _, id := range []string{"a", "b", "c"} {
		res := h.call(exec(id, "ok"))
		require.Nil(t, res.GetError())
		assert.Equal(t, "p-w2", res.GetWorkerId(), "the unresponsive worker gets no call")
		h.idle()
	}
	h.sys.Root.Send(h.pool, &wk.Responsive{WorkerID: "p-w1", Generation: gen, OK: true})
	h.send(exec("g1", "gate"))
	h.send(exec("g2", "gate"))
	assert.NotEqual(t, h.seen("g1").worker, h.seen("g2").worker, "both workers take calls again")
	h.env.open("g1")
	h.env.open("g2")
	h.idle()
}

// GetWorkerStates with All lists every slot, those without a serving
// generation with their state only; without All, the live workers.
func TestWorkerStatesAllSlots(t *testing.T) {
	env := newFakeEnv()
	gate := make(chan struct{})
	env.readyGates["p-w2"] = gate
	h := startPool(t, env, Config{Size: 3, StartupConcurrency: 1})
	testutil.Eventually(t, "p-w1 ready, p-w2 started", func() bool { return h.stats().GetReady() == 1 && len(env.startLog()) == 2 })

	all, ok := h.ask(&GetWorkerStates{All: true}).(*WorkerStates)
	require.True(t, ok)
	require.Len(t, all.Workers, 3)
	byID := map[string]WorkerState{}
	for _, w := range all.Workers {
		byID[w.WorkerID] = w
	}
	assert.Equal(t, SlotReady, byID["p-w1"].Slot)
	assert.False(t, byID["p-w1"].StartedAt.IsZero(), "a live worker has its ready time")
	assert.Equal(t, SlotStarting, byID["p-w2"].Slot, "held at its start")
	assert.True(t, byID["p-w2"].StartedAt.IsZero(), "no serving generation: no lifecycle figures")
	assert.Equal(t, SlotQueued, byID["p-w3"].Slot, "waiting for a start permit")

	live := h.states()
	require.Len(t, live.Workers, 1)
	assert.Equal(t, "p-w1", live.Workers[0].WorkerID)
	close(gate)
	h.ready()
	assert.Len(t, h.states().Workers, 3)
}
