package pool

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// The pool actor's tests: a real pool actor and a real supervisor, with the
// in-process fake workers of fakeworker_test.go. No Python.

func TestUnaryCallsAreAnsweredByTheirWorker(t *testing.T) {
	cases := []struct {
		tool    string
		want    string // ResultJson
		wantErr *sperr.Error
	}{
		{tool: "ok", want: `"ok"`},
		{tool: "fail", wantErr: sperr.ErrPythonException},
	}
	for _, c := range cases {
		t.Run(c.tool, func(t *testing.T) {
			h := startPool(t, newFakeEnv(), Config{})
			h.ready()
			res := h.call(exec("r1", c.tool))
			assert.Equal(t, "r1", res.GetRequestId())
			assert.Equal(t, "p-w1", res.GetWorkerId())
			st := h.idle()
			assert.EqualValues(t, 1, st.GetCompleted())
			assert.EqualValues(t, 1, st.GetRequests())
			if c.wantErr != nil {
				requireCode(t, c.wantErr, errOf(res))
				assert.EqualValues(t, 1, st.GetErrors())
				return
			}
			require.Nil(t, res.GetError())
			assert.Equal(t, c.want, string(res.GetResultJson()))
			assert.EqualValues(t, 0, st.GetErrors())
		})
	}
}

// 1. Least-loaded dispatch, then the queue.
func TestDispatchToLeastLoadedThenQueue(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 2})
	h.ready()

	h.send(exec("a", "gate"))
	h.send(exec("b", "gate"))
	wa, wb := h.seen("a"), h.seen("b")
	assert.NotEqual(t, wa.worker, wb.worker, "the second call goes to the idle worker, not the busy one")
	st := h.waitStats("both workers busy", func(s *poolpb.Stats) bool { return s.GetInFlight() == 2 })
	assert.EqualValues(t, 2, st.GetBusy())
	assert.EqualValues(t, 0, st.GetAvailable())
	assert.EqualValues(t, 0, st.GetQueued())

	h.send(exec("c", "gate"))
	st = h.waitStats("c queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
	assert.EqualValues(t, 2, st.GetInFlight())
	_, ran := h.env.seen("c")
	assert.False(t, ran, "c waits while every worker is busy")

	h.env.open("a")
	require.Nil(t, errOf(h.terminal("a")))
	wc := h.seen("c")
	assert.Equal(t, wa.worker, wc.worker, "the queued call takes the slot a freed")
	st = h.waitStats("c dispatched", func(s *poolpb.Stats) bool { return s.GetQueued() == 0 && s.GetCompleted() == 1 })
	assert.EqualValues(t, 2, st.GetInFlight())

	h.env.open("b")
	h.env.open("c")
	st = h.idle()
	assert.EqualValues(t, 3, st.GetCompleted())
	assert.EqualValues(t, 2, st.GetAvailable())
	h.exactlyOnce("a", "b", "c")
	for _, id := range []string{"b", "c"} {
		assert.Nil(t, errOf(h.caller.terminals(id)[0]), id)
	}
}

// 2. A full queue rejects with pool_saturated; a stream gets it as a final chunk.
func TestSaturatedPoolRejects(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "unary"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			h := startPool(t, newFakeEnv(), Config{MaxQueue: 1})
			h.ready()
			h.send(exec("run", "gate"))
			h.seen("run")
			h.send(exec("wait", "gate"))
			h.waitStats("one queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })

			over := exec("over", "gate")
			over.Stream = stream
			h.send(over)
			reply := h.terminal("over")
			requireCode(t, sperr.ErrPoolSaturated, errOf(reply))
			assert.Equal(t, "1", errOf(reply).Details["max_queue_size"])
			if stream {
				ch, ok := reply.(*poolpb.Chunk)
				require.True(t, ok, "a stream's rejection is a Chunk, got %T", reply)
				assert.True(t, ch.GetIsFinal())
			} else {
				assert.IsType(t, &poolpb.Result{}, reply)
			}
			st := h.stats()
			assert.EqualValues(t, 1, st.GetPoolSaturated())
			assert.EqualValues(t, 1, st.GetQueued(), "the rejected call took no place in the queue")

			h.env.open("run")
			h.env.open("wait")
			h.idle()
			h.exactlyOnce("run", "wait", "over")
		})
	}
}

// 3. A queued call that waits past QueueTimeout gets queue_timeout, once,
// and never runs.
func TestQueueTimeoutAnswersOnce(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{QueueTimeout: 100 * time.Millisecond})
	h.ready()
	h.send(exec("run", "gate"))
	h.seen("run")
	start := time.Now()
	h.send(exec("late", "gate"))
	requireCode(t, sperr.ErrQueueTimeout, errOf(h.terminal("late")))
	assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	st := h.waitStats("queue empty", func(s *poolpb.Stats) bool { return s.GetQueued() == 0 })
	assert.EqualValues(t, 1, st.GetQueueTimeouts())

	// Freeing the worker must not run the expired call.
	h.env.open("run")
	h.env.open("late")
	st = h.idle()
	assert.EqualValues(t, 1, st.GetCompleted(), "only run completed")
	_, ran := h.env.seen("late")
	assert.False(t, ran, "an expired call never reaches a worker")
	h.exactlyOnce("run", "late")
	assert.EqualValues(t, 1, h.stats().GetQueueTimeouts())
}

// A call's own queue timeout (Execute.queue_timeout_ms, set by a timeout
// profile) replaces the pool's; a call without one keeps the pool's.
func TestPerCallQueueTimeout(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{QueueTimeout: time.Hour})
	h.ready()
	h.send(exec("run", "gate"))
	h.seen("run")
	short := exec("short", "gate")
	short.QueueTimeoutMs = 80
	start := time.Now()
	h.send(short)
	h.send(exec("patient", "gate"))
	requireCode(t, sperr.ErrQueueTimeout, errOf(h.terminal("short")))
	waited := time.Since(start)
	assert.GreaterOrEqual(t, waited, 80*time.Millisecond)
	assert.Less(t, waited, time.Hour)
	assert.EqualValues(t, 1, h.waitStats("patient still queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 }).GetQueued())
	h.env.open("run")
	h.env.open("patient")
	h.idle()
	h.exactlyOnce("run", "short", "patient")
	_, ran := h.env.seen("patient")
	assert.True(t, ran, "the call with the pool's hour-long queue timeout ran")
}

// A call whose own deadline has already passed is refused at once.
func TestPastDeadlineIsRefused(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{})
	h.ready()
	req := exec("old", "ok")
	req.DeadlineUnixNano = time.Now().Add(-time.Second).UnixNano()
	requireCode(t, sperr.ErrQueueTimeout, errOf(h.call(req)))
	assert.EqualValues(t, 1, h.stats().GetQueueTimeouts())
}

// 4. Cancel: a queued call is answered by the pool, a running one by its
// worker's executor; both exactly once, and the slot is freed.
func TestCancel(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{})
		h.ready()
		h.send(exec("run", "gate"))
		h.seen("run")
		h.send(exec("q", "gate"))
		h.waitStats("q queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })

		h.sys.Root.Send(h.pool, &poolpb.Cancel{RequestId: "q"})
		e := errOf(h.terminal("q"))
		requireCode(t, sperr.ErrCancelled, e)
		assert.Empty(t, e.WorkerID, "answered by the pool")
		st := h.waitStats("queue empty", func(s *poolpb.Stats) bool { return s.GetQueued() == 0 })
		assert.EqualValues(t, 1, st.GetCancelled())
		assert.EqualValues(t, 1, st.GetInFlight())

		h.sys.Root.Send(h.pool, &poolpb.Cancel{RequestId: "q"}) // again: nothing left to cancel
		h.env.open("run")
		h.idle()
		_, ran := h.env.seen("q")
		assert.False(t, ran)
		h.exactlyOnce("run", "q")
		assert.EqualValues(t, 1, h.stats().GetCancelled())
	})
	t.Run("running", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{})
		h.ready()
		h.send(exec("run", "block"))
		h.seen("run")
		h.send(exec("next", "gate"))
		h.waitStats("next queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })

		h.sys.Root.Send(h.pool, &poolpb.Cancel{RequestId: "run"})
		e := errOf(h.terminal("run"))
		requireCode(t, sperr.ErrCancelled, e)
		assert.Equal(t, "p-w1", e.WorkerID, "answered by the worker's executor")
		// The freed slot goes to the queued call.
		assert.Equal(t, "p-w1", h.seen("next").worker)
		st := h.waitStats("next running", func(s *poolpb.Stats) bool { return s.GetQueued() == 0 && s.GetInFlight() == 1 })
		assert.EqualValues(t, 1, st.GetCancelled())
		h.env.open("next")
		h.idle()
		h.exactlyOnce("run", "next")
	})
	t.Run("unknown id", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{})
		h.ready()
		h.sys.Root.Send(h.pool, &poolpb.Cancel{RequestId: "nobody"})
		assert.EqualValues(t, 0, h.stats().GetCancelled())
	})
}

// 5. A worker crash: in-flight calls get worker_exit once, the worker comes
// back as generation 2, and notices of generation 1 no longer count.
func TestWorkerCrashWithCallsInFlight(t *testing.T) {
	env := newFakeEnv()
	env.capacity = 2
	h := startPool(t, env, Config{})
	h.ready()
	h.send(exec("a", "gate"))
	h.send(exec("b", "block"))
	h.seen("a")
	h.seen("b")
	h.waitStats("both running", func(s *poolpb.Stats) bool { return s.GetInFlight() == 2 })

	h.crash("p-w1")
	for _, id := range []string{"a", "b"} {
		e := errOf(h.terminal(id))
		requireCode(t, sperr.ErrWorkerExit, e)
		assert.Equal(t, "p-w1", e.WorkerID)
	}
	st := h.waitStats("worker back", func(s *poolpb.Stats) bool {
		return s.GetReady() == 1 && s.GetWorkerRestarts() == 1 && s.GetInFlight() == 0
	})
	assert.EqualValues(t, 1, st.GetAvailable())
	assert.Equal(t, StateReady, st.GetState())
	assert.Equal(t, []string{"p-w1#1", "p-w1#2"}, env.startLog())

	// c runs on generation 2. It is the pool's third request: key 3.
	h.send(exec("c", "gate"))
	assert.Equal(t, callSeen{worker: "p-w1", gen: 2}, h.seen("c"))
	h.waitStats("c running", func(s *poolpb.Stats) bool { return s.GetInFlight() == 1 })

	// A late CallDone of generation 1 naming c's key must not free c's slot.
	h.sys.Root.Send(h.pool, &wk.CallDone{WorkerID: "p-w1", Generation: 1, Key: 3})
	st = h.stats()
	assert.EqualValues(t, 1, st.GetInFlight(), "c still holds its slot")
	h.send(exec("d", "gate"))
	h.seen("d")
	h.send(exec("e", "gate"))
	st = h.waitStats("e queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
	assert.EqualValues(t, 2, st.GetInFlight(), "capacity 2: c and d run, e waits")

	for _, id := range []string{"c", "d", "e"} {
		h.env.open(id)
	}
	h.idle()
	for _, id := range []string{"c", "d", "e"} {
		assert.Nil(t, errOf(h.terminal(id)), id)
	}
	h.stopWorkers()
	h.exactlyOnce("a", "b", "c", "d", "e")
	assert.EqualValues(t, 1, h.stats().GetWorkerRestarts())
}

// A call queued behind a worker that crashes is not lost: it runs on the
// worker's next generation (whether the pool hears of the crash through Down
// or first through the dead calls' CallDone, which hands it to the closed
// executor and makes the pool route it again).
func TestQueuedCallSurvivesWorkerCrash(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{})
	h.ready()
	h.send(exec("run", "block"))
	h.seen("run")
	h.send(exec("q", "gate"))
	h.waitStats("q queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
	h.crash("p-w1")
	requireCode(t, sperr.ErrWorkerExit, errOf(h.terminal("run")))
	assert.Equal(t, callSeen{worker: "p-w1", gen: 2}, h.seen("q"))
	h.env.open("q")
	require.Nil(t, errOf(h.terminal("q")))
	st := h.idle()
	assert.EqualValues(t, 1, st.GetWorkerRestarts())
	h.exactlyOnce("run", "q")
}

// 6. Session affinity through the actor.
func TestSessionAffinity(t *testing.T) {
	// bind runs a gate call of session s and returns the worker it is bound to.
	bind := func(h *harness) string {
		h.send(withSession(exec("s1", "gate"), "s", poolpb.Affinity_AFFINITY_DEFAULT))
		return h.seen("s1").worker
	}
	t.Run("strict fail-fast while busy", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{Size: 2})
		h.ready()
		bind(h)
		h.waitStats("s1 running", func(s *poolpb.Stats) bool { return s.GetInFlight() == 1 })
		h.send(withSession(exec("s2", "ok"), "s", poolpb.Affinity_AFFINITY_STRICT_FAIL_FAST))
		requireCode(t, sperr.ErrWorkerBusy, errOf(h.terminal("s2")))
		assert.EqualValues(t, 1, h.stats().GetAvailable(), "the other worker was free all along")
		// A hint request of the same session runs on the other worker.
		res := h.call(withSession(exec("s3", "ok"), "s", poolpb.Affinity_AFFINITY_HINT))
		require.Nil(t, res.GetError())
		h.env.open("s1")
		h.idle()
		h.exactlyOnce("s1", "s2")
	})
	t.Run("strict queue waits for its worker", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{Size: 2})
		h.ready()
		w := bind(h)
		h.send(withSession(exec("s2", "gate"), "s", poolpb.Affinity_AFFINITY_STRICT_QUEUE))
		st := h.waitStats("s2 queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
		assert.EqualValues(t, 1, st.GetAvailable(), "queued although the other worker is free")
		// A call without a session does not wait behind it.
		res := h.call(exec("free", "ok"))
		require.Nil(t, res.GetError())
		assert.NotEqual(t, w, res.GetWorkerId())

		h.env.open("s1")
		assert.Equal(t, w, h.seen("s2").worker, "s2 ran on its session's worker")
		h.env.open("s2")
		h.idle()
		h.exactlyOnce("s1", "s2")
	})
	t.Run("pool default affinity applies", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{Size: 2, Affinity: AffinityStrictFailFast})
		h.ready()
		bind(h)
		h.send(withSession(exec("s2", "ok"), "s", poolpb.Affinity_AFFINITY_DEFAULT))
		requireCode(t, sperr.ErrWorkerBusy, errOf(h.terminal("s2")))
		h.env.open("s1")
		h.idle()
	})
	t.Run("back-to-back strict fail-fast calls never find their worker busy", func(t *testing.T) {
		// The pool gets a call's slot back before its caller gets the reply.
		h := startPool(t, newFakeEnv(), Config{Size: 2})
		h.ready()
		for i := range 300 {
			res := h.call(withSession(exec("seq"+strconv.Itoa(i), "ok"), "s", poolpb.Affinity_AFFINITY_STRICT_FAIL_FAST))
			require.Nil(t, res.GetError(), "call %d", i)
		}
	})
	t.Run("a session that ends releases its queued strict calls", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{Size: 2})
		h.ready()
		w := bind(h)
		h.send(withSession(exec("s2", "ok"), "s", poolpb.Affinity_AFFINITY_STRICT_QUEUE))
		h.waitStats("s2 queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
		h.sys.Root.Send(h.pool, &EndSession{SessionID: "s"})
		h.env.open("s2")
		assert.NotEqual(t, w, h.seen("s2").worker, "unbound, s2 ran on the free worker")
		require.Nil(t, errOf(h.terminal("s2")))
		h.env.open("s1")
		h.idle()
		h.exactlyOnce("s1", "s2")
	})
	t.Run("bound worker crashes", func(t *testing.T) {
		h := startPool(t, newFakeEnv(), Config{Size: 2})
		h.ready()
		w := bind(h)
		h.send(withSession(exec("s2", "gate"), "s", poolpb.Affinity_AFFINITY_STRICT_QUEUE))
		h.waitStats("s2 queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })

		h.crash(w)
		requireCode(t, sperr.ErrWorkerExit, errOf(h.terminal("s1")))
		requireCode(t, sperr.ErrSessionWorkerUnavailable, errOf(h.terminal("s2")))
		h.waitStats("worker back", func(s *poolpb.Stats) bool { return s.GetReady() == 2 && s.GetWorkerRestarts() == 1 })
		_, ran := h.env.seen("s2")
		assert.False(t, ran)
		// The session's worker is a new process: strict calls are refused,
		// a hint call runs and binds the session again.
		h.send(withSession(exec("s3", "ok"), "s", poolpb.Affinity_AFFINITY_STRICT_QUEUE))
		requireCode(t, sperr.ErrSessionWorkerUnavailable, errOf(h.terminal("s3")))
		require.Nil(t, h.call(withSession(exec("s4", "ok"), "s", poolpb.Affinity_AFFINITY_HINT)).GetError())
		require.Nil(t, h.call(withSession(exec("s5", "ok"), "s", poolpb.Affinity_AFFINITY_STRICT_FAIL_FAST)).GetError())
		h.idle()
		h.exactlyOnce("s1", "s2", "s3")
	})
}

// 7. Workers failing their first start.
func TestInitFailed(t *testing.T) {
	t.Run("every worker fails", func(t *testing.T) {
		env := newFakeEnv()
		env.failFirst["p-w1"], env.failFirst["p-w2"] = true, true
		h := startPool(t, env, Config{Size: 2})
		r := h.awaitReady(&poolpb.AwaitReady{})
		e := errOf(r)
		requireCode(t, sperr.ErrPoolNotInitialized, e)
		assert.Contains(t, e.Message, "fake failure", "the last start error is quoted")
		assert.EqualValues(t, 0, r.GetReady())
		assert.EqualValues(t, 2, r.GetWorkers())
		requireCode(t, sperr.ErrPoolNotInitialized, errOf(h.call(exec("x", "ok"))))
		requireCode(t, sperr.ErrPoolNotInitialized, errOf(h.awaitReady(&poolpb.AwaitReady{All: true})))
		assert.Equal(t, StateInitFailed, h.stats().GetState())
		assert.Equal(t, []string{"p-w1#1", "p-w2#1"}, env.startLog(), "a failed first start is not restarted")
	})
	t.Run("one fails, one ready", func(t *testing.T) {
		env := newFakeEnv()
		env.failFirst["p-w1"] = true
		h := startPool(t, env, Config{Size: 2})
		r := h.awaitReady(&poolpb.AwaitReady{All: true})
		require.Nil(t, r.GetError(), "every worker settled: one ready, one failed")
		assert.EqualValues(t, 1, r.GetReady())
		require.Nil(t, h.awaitReady(&poolpb.AwaitReady{}).GetError())
		res := h.call(exec("x", "ok"))
		require.Nil(t, res.GetError())
		assert.Equal(t, "p-w2", res.GetWorkerId())
		st := h.stats()
		assert.Equal(t, StateReady, st.GetState())
		assert.EqualValues(t, 1, st.GetReady())
		assert.EqualValues(t, 2, st.GetWorkers())
	})
}

// Requests taken while the pool starts fail with pool_not_initialized when
// its last worker fails; so do waiting AwaitReady requests.
func TestInitFailedAnswersWhatWaits(t *testing.T) {
	env := newFakeEnv()
	gate := make(chan struct{})
	env.failFirst["p-w1"], env.readyGates["p-w1"] = true, gate
	h := startPool(t, env, Config{})
	h.send(exec("x", "ok"))
	h.send(&poolpb.AwaitReady{})
	st := h.waitStats("x queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
	assert.Equal(t, StateStarting, st.GetState())
	close(gate)
	requireCode(t, sperr.ErrPoolNotInitialized, errOf(h.terminal("x")))
	requireCode(t, sperr.ErrPoolNotInitialized, errOf(h.terminal("ready")))
	st = h.stats()
	assert.Equal(t, StateInitFailed, st.GetState())
	assert.EqualValues(t, 0, st.GetQueued())
	h.exactlyOnce("x", "ready")
}

// 8. AwaitReady: deadlines, and All.
func TestAwaitReady(t *testing.T) {
	cases := []struct {
		name      string
		size      int
		gated     []string // workers that never become ready
		all       bool
		wantErr   *sperr.Error
		wantReady uint64
	}{
		{name: "none ready by the deadline", size: 1, gated: []string{"p-w1"}, wantErr: sperr.ErrDeadlineExceeded},
		{name: "all: one missing at the deadline", size: 2, gated: []string{"p-w2"}, all: true,
			wantErr: sperr.ErrDeadlineExceeded, wantReady: 1},
		{name: "any: one is enough", size: 2, gated: []string{"p-w2"}, wantReady: 1},
		{name: "all: every worker ready", size: 2, all: true, wantReady: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newFakeEnv()
			for _, w := range c.gated {
				env.readyGates[w] = make(chan struct{})
			}
			h := startPool(t, env, Config{Size: c.size})
			start := time.Now()
			r := h.awaitReady(&poolpb.AwaitReady{All: c.all, DeadlineUnixNano: start.Add(100 * time.Millisecond).UnixNano()})
			assert.EqualValues(t, c.size, r.GetWorkers())
			assert.Equal(t, "p", r.GetPool())
			assert.EqualValues(t, c.wantReady, r.GetReady())
			if c.wantErr == nil {
				require.Nil(t, r.GetError())
				return
			}
			requireCode(t, c.wantErr, errOf(r))
			assert.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "answered at the deadline, not before")
		})
	}

	t.Run("all: answered when the last worker is ready", func(t *testing.T) {
		env := newFakeEnv()
		gate := make(chan struct{})
		env.readyGates["p-w2"] = gate
		h := startPool(t, env, Config{Size: 2})
		h.send(&poolpb.AwaitReady{All: true})
		h.waitStats("w1 ready", func(s *poolpb.Stats) bool { return s.GetReady() == 1 })
		// The stats reply came after the pool took the AwaitReady: had it
		// answered, the reply would be here.
		assert.Empty(t, h.caller.all("ready"), "not answered while p-w2 is starting")
		close(gate)
		r := h.terminal("ready")
		require.Nil(t, errOf(r))
		assert.EqualValues(t, 2, r.(*poolpb.ReadyReply).GetReady())
		h.exactlyOnce("ready")
	})
	t.Run("stopping pool answers waiters with shutdown", func(t *testing.T) {
		env := newFakeEnv()
		env.readyGates["p-w1"] = make(chan struct{})
		h := startPool(t, env, Config{})
		h.send(&poolpb.AwaitReady{})
		h.stats()
		h.stopPool()
		requireCode(t, sperr.ErrShutdown, errOf(h.terminal("ready")))
		h.exactlyOnce("ready")
	})
}

// Workers start in a window of StartupConcurrency: the next starts when one
// is ready.
func TestStartupWindow(t *testing.T) {
	env := newFakeEnv()
	gate := make(chan struct{})
	env.readyGates["p-w1"] = gate
	h := startPool(t, env, Config{Size: 3, StartupConcurrency: 1})
	testutil.Eventually(t, "p-w1 started", func() bool { return len(env.startLog()) == 1 })
	assert.Equal(t, StateStarting, h.stats().GetState())
	assert.Equal(t, []string{"p-w1#1"}, env.startLog(), "no second worker starts while p-w1 is starting")
	close(gate)
	h.ready()
	assert.Equal(t, []string{"p-w1#1", "p-w2#1", "p-w3#1"}, env.startLog())
}

// 9. Stopping the pool: queued calls get shutdown from the pool; running
// calls are answered by their workers when the supervisor stops them.
func TestStopAnswersQueuedAndRunningCalls(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{})
	h.ready()
	h.send(exec("run", "gate"))
	h.seen("run")
	h.send(exec("q1", "gate"))
	q2 := exec("q2", "gate")
	q2.Stream = true
	h.send(q2)
	h.waitStats("two queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 2 })

	h.stopPool()
	for _, id := range []string{"q1", "q2"} {
		e := errOf(h.terminal(id))
		requireCode(t, sperr.ErrShutdown, e)
		assert.Empty(t, e.WorkerID, "%s answered by the pool", id)
	}
	assert.IsType(t, &poolpb.Chunk{}, h.caller.terminals("q2")[0], "a stream is answered with a final chunk")
	assert.Empty(t, h.caller.all("run"), "the running call is not the pool's to answer")

	h.stopWorkers()
	e := errOf(h.terminal("run"))
	requireCode(t, sperr.ErrShutdown, e)
	assert.Equal(t, "p-w1", e.WorkerID, "answered by its worker")
	h.exactlyOnce("run", "q1", "q2")
	for _, id := range []string{"run", "q1", "q2"} {
		_, ran := h.env.seen(id)
		assert.Equal(t, id == "run", ran, id)
	}
}

// Streams through the pool: chunks in order, one final.
func TestStreamThroughPool(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{})
	h.ready()
	req := exec("st", "stream")
	req.Stream = true
	h.send(req)
	h.terminal("st")
	h.idle()
	var ids []string
	for _, m := range h.caller.all("st") {
		ch, ok := m.(*poolpb.Chunk)
		require.True(t, ok, "got %T", m)
		require.Nil(t, ch.GetError())
		ids = append(ids, ch.GetChunkId())
	}
	assert.Equal(t, []string{"1", "2", "3", "final"}, ids)
	h.exactlyOnce("st")
}

// 10. Validation, and the worker list.
func TestValidation(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 3})
	h.ready()

	res := h.call(&poolpb.Execute{RequestId: "e"})
	requireCode(t, sperr.ErrInvalidArgument, errOf(res))
	assert.Equal(t, "e", res.GetRequestId())

	h.send(exec("dup", "gate"))
	h.seen("dup")
	res = h.call(exec("dup", "ok"))
	e := errOf(res)
	requireCode(t, sperr.ErrInvalidArgument, e)
	assert.Contains(t, e.Message, "already in use")
	assert.Empty(t, h.caller.terminals("dup"), "the first request is untouched")
	h.env.open("dup")
	require.Nil(t, errOf(h.terminal("dup")))
	h.idle()
	h.exactlyOnce("dup")
	// Once answered, the id may be used again.
	require.Nil(t, h.call(exec("dup", "ok")).GetError())

	list, ok := h.ask(&poolpb.ListWorkers{}).(*poolpb.WorkerList)
	require.True(t, ok)
	assert.Equal(t, []string{"p-w1", "p-w2", "p-w3"}, list.GetWorkerIds())
	st := h.stats()
	assert.EqualValues(t, 3, st.GetWorkers())
	assert.EqualValues(t, 4, st.GetRequests())
}

// Regression tests for bugs these tests found (fixed in calls.go and actor.go).

// A CallDone naming a key and an older generation must be ignored: the pool
// used to forget the request before it checked the generation, so the
// running call could no longer be cancelled.
func TestStaleCallDoneDoesNotForgetTheCall(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{})
	h.ready()
	h.crash("p-w1")
	h.waitStats("worker back", func(s *poolpb.Stats) bool { return s.GetWorkerRestarts() == 1 && s.GetReady() == 1 })
	h.send(exec("c", "block")) // the pool's first request: key 1, on generation 2
	assert.EqualValues(t, 2, h.seen("c").gen)
	h.sys.Root.Send(h.pool, &wk.CallDone{WorkerID: "p-w1", Generation: 1, Key: 1})
	assert.EqualValues(t, 0, h.stats().GetCompleted(), "a stale CallDone completes nothing")
	h.sys.Root.Send(h.pool, &poolpb.Cancel{RequestId: "c"})
	requireCode(t, sperr.ErrCancelled, errOf(h.terminal("c")))
}

// A restarted pool (same PID, workers replaced) gets the CallDone notices of
// its predecessor's calls; none of them may make it forget a request it
// holds (it used to, when keys restarted from 1: that request was never
// answered).
func TestRestartedPoolAnswersRequestsDespitePredecessorsCallDone(t *testing.T) {
	env := newFakeEnv()
	env.holdStop = make(chan struct{})
	h := startPool(t, env, Config{})
	h.ready()
	h.send(exec("old", "gate")) // key 1 of the first pool, on p-w1 generation 1
	h.seen("old")
	h.stopPool()

	// The new pool replaces p-w1; the old p-w1 stops only when released.
	h.respawnPool()
	h.send(exec("new", "gate")) // key 1 of the new pool: queued, no worker yet
	h.waitStats("new queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
	close(env.holdStop) // old p-w1 answers "old" and sends CallDone{p-w1, gen 1, key 1}

	requireCode(t, sperr.ErrShutdown, errOf(h.terminal("old")))
	h.waitStats("new worker ready", func(s *poolpb.Stats) bool { return s.GetReady() == 1 })
	c := h.seen("new")
	assert.Equal(t, "p-w1", c.worker)
	h.env.open("new")
	require.Nil(t, errOf(h.terminal("new")))
	h.idle()
	h.exactlyOnce("old", "new")
}

// AwaitReady{All: true} waits until every worker has started or failed,
// also when the last worker to settle fails its first start after another
// worker is ready (the pool used to never answer then).
func TestAwaitAllAnsweredWhenLastWorkerFailsAfterPoolIsReady(t *testing.T) {
	env := newFakeEnv()
	gate := make(chan struct{})
	env.failFirst["p-w2"], env.readyGates["p-w2"] = true, gate
	h := startPool(t, env, Config{Size: 2})
	require.Nil(t, h.awaitReady(&poolpb.AwaitReady{}).GetError())
	h.send(&poolpb.AwaitReady{All: true})
	h.stats()
	assert.Empty(t, h.caller.all("ready"), "p-w2 is still starting")
	close(gate) // p-w2 fails its first start: every worker has settled
	r := h.terminal("ready")
	require.Nil(t, errOf(r))
	assert.EqualValues(t, 1, r.(*poolpb.ReadyReply).GetReady())
}
