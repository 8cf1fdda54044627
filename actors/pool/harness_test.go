package pool

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
	"github.com/snakepit-go/snakepit/supervisors"
)

// The pool actor's tests: a real pool actor and a real supervisor, with the
// in-process fake workers of fakeworker_test.go. No Python.

// wait bounds every condition a test waits for.
const wait = 5 * time.Second

// harness is one actor system with a worker supervisor, a pool on fake
// workers and a recording caller. Everything is stopped when the test ends.
type harness struct {
	tb     testing.TB
	sys    *actor.ActorSystem
	sup    *actor.PID
	pool   *actor.PID
	cfg    Config
	env    *fakeEnv
	caller *caller
}

// startPool starts a pool of cfg (Name "p" and Size 1 unless set) on env's
// fake workers.
func startPool(tb testing.TB, env *fakeEnv, cfg Config) *harness {
	tb.Helper()
	sys := testutil.NewSystem(tb) // also shut down by close, first
	supProps, err := supervisors.New(supervisors.Spec{
		Strategy: supervisors.OneForOne, MaxRestarts: 100, Window: time.Second, Logger: testutil.QuietLogger(tb),
	})
	require.NoError(tb, err)
	sup, err := sys.Root.SpawnNamed(supProps, "workers")
	require.NoError(tb, err)
	if cfg.Name == "" {
		cfg.Name = "p"
	}
	if cfg.Size == 0 {
		cfg.Size = 1
	}
	cfg.WorkerSupervisor, cfg.WorkerProps, cfg.Logger = sup, env.props, testutil.QuietLogger(tb)
	// Request keys start at 1 for the first start of the pool and 1<<32 + 1
	// after a respawn (in production: the clock), so tests can name keys.
	var starts atomic.Uint64
	cfg.keyBase = func() uint64 { return (starts.Add(1) - 1) << 32 }
	h := &harness{tb: tb, sys: sys, sup: sup, cfg: cfg, env: env, caller: newCaller(sys)}
	h.pool, err = sys.Root.SpawnNamed(Props(cfg), "pool-"+cfg.Name)
	require.NoError(tb, err)
	tb.Cleanup(h.close)
	return h
}

// respawnPool starts the pool again under the same name (the way a
// supervisor restarts it): the PID stays the same.
func (h *harness) respawnPool() {
	h.tb.Helper()
	pid, err := h.sys.Root.SpawnNamed(Props(h.cfg), "pool-"+h.cfg.Name)
	require.NoError(h.tb, err)
	require.True(h.tb, pid.Equal(h.pool))
}

func (h *harness) stopPool() { _ = h.sys.Root.StopFuture(h.pool).Wait() }

func (h *harness) stopWorkers() { _ = h.sys.Root.StopFuture(h.sup).Wait() }

func (h *harness) close() {
	if h.env.holdStop != nil {
		select {
		case <-h.env.holdStop:
		default:
			close(h.env.holdStop)
		}
	}
	h.stopPool()
	h.stopWorkers()
	h.env.openAll()
	h.caller.close()
	h.sys.Shutdown()
}

// send sends an Execute (or any request) with the recording caller as sender.
func (h *harness) send(msg any) { h.sys.Root.RequestWithCustomSender(h.pool, msg, h.caller.pid) }

// ask sends msg and waits for the one reply.
func (h *harness) ask(msg any) any {
	h.tb.Helper()
	res, err := h.sys.Root.RequestFuture(h.pool, msg, wait).Result()
	require.NoError(h.tb, err, "reply to %T", msg)
	return res
}

// call runs a unary Execute and returns its Result.
func (h *harness) call(req *poolpb.Execute) *poolpb.Result {
	h.tb.Helper()
	res, ok := h.ask(req).(*poolpb.Result)
	require.True(h.tb, ok, "reply to Execute is a Result")
	return res
}

func (h *harness) stats() *poolpb.Stats {
	h.tb.Helper()
	st, ok := h.ask(&poolpb.GetStats{}).(*poolpb.Stats)
	require.True(h.tb, ok)
	return st
}

// waitStats polls the pool's stats until cond holds and returns them.
func (h *harness) waitStats(what string, cond func(*poolpb.Stats) bool) *poolpb.Stats {
	h.tb.Helper()
	var st *poolpb.Stats
	testutil.Eventually(h.tb, what, func() bool {
		st = h.stats()
		return cond(st)
	})
	return st
}

func (h *harness) awaitReady(m *poolpb.AwaitReady) *poolpb.ReadyReply {
	h.tb.Helper()
	r, ok := h.ask(m).(*poolpb.ReadyReply)
	require.True(h.tb, ok)
	return r
}

// ready waits until every worker is ready.
func (h *harness) ready() {
	h.tb.Helper()
	r := h.awaitReady(&poolpb.AwaitReady{All: true})
	require.Nil(h.tb, r.GetError())
	require.EqualValues(h.tb, h.cfg.Size, r.GetReady())
}

// seen waits until the call with correlation id id has reached a worker.
func (h *harness) seen(id string) callSeen {
	h.tb.Helper()
	var c callSeen
	testutil.Eventually(h.tb, "call "+id+" reaches a worker", func() bool {
		var ok bool
		c, ok = h.env.seen(id)
		return ok
	})
	return c
}

// crash makes a worker die as if its Python process had exited.
func (h *harness) crash(worker string) { h.sys.Root.Send(h.env.pid(worker), &crashWorker{}) }

// exec is an Execute whose correlation id is its request id, so the fake
// client can tell calls apart.
func exec(id, tool string) *poolpb.Execute {
	return &poolpb.Execute{RequestId: id, Tool: tool, CorrelationId: id}
}

func withSession(e *poolpb.Execute, session string, a poolpb.Affinity) *poolpb.Execute {
	e.SessionId, e.Affinity = session, a
	return e
}

// errOf is the error a terminal reply carries (nil for success).
func errOf(msg any) *sperr.Error {
	switch m := msg.(type) {
	case *poolpb.Result:
		return sperr.FromProto(m.GetError())
	case *poolpb.Chunk:
		return sperr.FromProto(m.GetError())
	case *poolpb.ReadyReply:
		return sperr.FromProto(m.GetError())
	}
	return sperr.New(sperr.CodeInternal, "not a reply: %T", msg)
}

// requireCode checks that err is a structured error with code's sentinel.
func requireCode(tb testing.TB, want *sperr.Error, got *sperr.Error) {
	tb.Helper()
	require.NotNil(tb, got, "want %s, got success", want.Code)
	require.True(tb, errors.Is(got, want), "want %s, got %v", want.Code, got)
}

// caller is a reply address that records every message it gets, by request
// id: the "exactly one terminal reply" checks read it. It is a process in
// the actor system's registry, like the app's inbox.
type caller struct {
	sys *actor.ActorSystem
	pid *actor.PID

	mu   sync.Mutex
	msgs map[string][]any // Result/Chunk by request id; ReadyReply under "ready"
}

func newCaller(sys *actor.ActorSystem) *caller {
	c := &caller{sys: sys, msgs: map[string][]any{}}
	c.pid, _ = sys.ProcessRegistry.Add(c, "caller"+sys.ProcessRegistry.NextId())
	return c
}

func (c *caller) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	id := "other"
	switch m := msg.(type) {
	case *poolpb.Result:
		id = m.GetRequestId()
	case *poolpb.Chunk:
		id = m.GetRequestId()
	case *poolpb.ReadyReply:
		id = "ready"
	}
	c.mu.Lock()
	c.msgs[id] = append(c.msgs[id], msg)
	c.mu.Unlock()
}

func (c *caller) SendSystemMessage(*actor.PID, any) {}
func (c *caller) Stop(*actor.PID)                   {}
func (c *caller) close()                            { c.sys.ProcessRegistry.Remove(c.pid) }

// all returns every message recorded for id.
func (c *caller) all(id string) []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.msgs[id]...)
}

// terminals returns the terminal replies recorded for id: Results, final
// Chunks and ReadyReplies.
func (c *caller) terminals(id string) []any {
	var out []any
	for _, m := range c.all(id) {
		if ch, ok := m.(*poolpb.Chunk); ok && !ch.GetIsFinal() {
			continue
		}
		out = append(out, m)
	}
	return out
}

// terminal waits for id's first terminal reply.
func (h *harness) terminal(id string) any {
	h.tb.Helper()
	testutil.Eventually(h.tb, "a terminal reply for "+id, func() bool { return len(h.caller.terminals(id)) > 0 })
	return h.caller.terminals(id)[0]
}

// exactlyOnce checks that each id got exactly one terminal reply. Call it
// once the pool is settled (or stopped), so a second reply would be there.
func (h *harness) exactlyOnce(ids ...string) {
	h.tb.Helper()
	for _, id := range ids {
		assert.Len(h.tb, h.caller.terminals(id), 1, "terminal replies for %s", id)
	}
}

// idle waits until nothing is queued or running.
func (h *harness) idle() *poolpb.Stats {
	h.tb.Helper()
	return h.waitStats("pool idle", func(s *poolpb.Stats) bool { return s.GetInFlight() == 0 && s.GetQueued() == 0 })
}
