package pool

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"pgregory.net/rapid"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// The core's property test drives the pure pool core with random events
// from a model of its environment: a worker supervisor (children that boot,
// fail, crash and are restarted), executors (calls that run, finish, or die
// with their worker) and callers. After every event it carries out the
// core's effects on the model and checks:
//
//   - every request gets exactly one terminal reply (from the core or from
//     the executor that ran it), never two, and at the end none is missing;
//   - a call is submitted only to a live, dispatchable slot of the very
//     generation that runs it (never tainted, unresponsive, draining,
//     stopping or dead);
//   - the core never starts a worker whose actor is alive (a crash is
//     restarted by the supervisor, once), and every unplanned Down leaves
//     the slot restarting (the supervisor's restart) or on its way out
//     (a recycle or removal);
//   - the slots and the scheduler agree: a worker is in the scheduler iff
//     its slot has a live generation, and the scheduler's ready bit never
//     says ready for a slot that is not dispatchable; start permits equal
//     the slots starting; the start queue holds exactly the queued slots.

type mChild struct {
	gen     uint64
	booting bool // no Ready or StartFailed yet
	first   bool // the first start of its actor (a failure then exits)
}

type mCall struct {
	key       uint64
	worker    WorkerID
	gen       uint64
	replyTo   string
	retryable bool
	reqID     string
}

type coreEnv struct {
	t        *rapid.T
	c        *core
	now      time.Time
	gen      uint64
	children map[WorkerID]*mChild // alive worker actors
	closed   map[uint64]bool      // generations whose executor takes no call
	calls    map[uint64]*mCall    // running on an executor, by key
	stops    []WorkerID           // reported stops not yet done
	replies  map[string]int       // terminal replies per caller
	sent     []string             // every caller
	nextReq  int
	// mail holds the messages on their way to the pool, in order: the
	// core hears of an executor's or worker's doing only through it.
	mail []func()
}

func (e *coreEnv) post(f func()) { e.mail = append(e.mail, f) }

func newCoreEnv(t *rapid.T, cfg Config) *coreEnv {
	cfg.Name = "p"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.keyBase = func() uint64 { return 0 }
	cfg = cfg.WithDefaults()
	e := &coreEnv{t: t, c: newCore(cfg), now: time.Unix(1_000_000, 0), children: map[WorkerID]*mChild{},
		closed: map[uint64]bool{}, calls: map[uint64]*mCall{}, replies: map[string]int{}}
	e.c.Start()
	e.run()
	return e
}

// run carries out the core's effects and delivers the messages they
// cause, one at a time as a mailbox would, until nothing is left; the
// invariants are checked after each.
func (e *coreEnv) run() {
	for {
		for effs := e.c.effects(); len(effs) > 0; effs = e.c.effects() {
			for i := range effs {
				e.do(&effs[i])
			}
		}
		e.check()
		if len(e.mail) == 0 {
			return
		}
		f := e.mail[0]
		e.mail = e.mail[1:]
		f()
	}
}

func (e *coreEnv) do(f *Effect) {
	switch f.Kind {
	case EffStart:
		if ch, alive := e.children[f.Worker]; alive {
			e.t.Fatalf("start of %s while its actor (generation %d) is alive", f.Worker, ch.gen)
		}
		e.gen++
		e.children[f.Worker] = &mChild{gen: e.gen, booting: true, first: true}
	case EffStop:
		if ch, ok := e.children[f.Worker]; ok {
			delete(e.children, f.Worker)
			e.downPlanned(f.Worker, ch.gen)
		}
		if f.Report {
			e.stops = append(e.stops, f.Worker)
		}
	case EffSubmit:
		s := e.c.slots[f.Worker]
		if s == nil || !s.live || s.gen != f.Generation {
			e.t.Fatalf("submit of %d to %s generation %d: not its live generation", f.Key, f.Worker, f.Generation)
		}
		// closed may have been set by a refusal earlier in this very batch
		// of effects (a worker that became ready with two free slots
		// and died): that submit is refused and retried too.
		if !mayRun(s, e.now, e.closed[f.Generation]) {
			e.t.Fatalf("submit of %d to %s in state %s (tainted %v, unresponsive %v, closed %v)",
				f.Key, f.Worker, s.state, s.tainted(e.now), s.unresponsive, s.closed)
		}
		if e.closed[f.Generation] {
			e.c.OnSubmitFailed(f.Key, f.Worker, f.Generation, wk.ErrClosed, e.now)
			return
		}
		if _, dup := e.calls[f.Key]; dup {
			e.t.Fatalf("call %d submitted twice", f.Key)
		}
		e.calls[f.Key] = &mCall{key: f.Key, worker: f.Worker, gen: f.Generation, replyTo: f.ReplyTo.(string),
			retryable: f.Retryable, reqID: f.Req.GetRequestId()}
	case EffCancel:
		if cl, ok := e.calls[f.Key]; ok {
			e.finish(cl, sperr.New(sperr.CodeCancelled, "cancelled"), false)
		}
	case EffCredit:
		// Credit only for a call running on that very worker.
		if cl, ok := e.calls[f.Key]; !ok || cl.worker != f.Worker {
			e.t.Fatalf("credit for call %d on %s, which does not run it", f.Key, f.Worker)
		}
	case EffReply:
		e.reply(f.ReplyTo.(string))
	case EffReadyReply, EffPublish, EffArm, EffStopRetries:
	default:
		e.t.Fatalf("unknown effect %d", f.Kind)
	}
}

func (e *coreEnv) reply(to string) {
	e.replies[to]++
	if e.replies[to] > 1 {
		e.t.Fatalf("caller %s answered %d times", to, e.replies[to])
	}
}

// finish ends a running call: the executor answers the caller (or, for a
// retryable call whose worker died, hands it back unanswered).
func (e *coreEnv) finish(cl *mCall, err *sperr.Error, died bool) {
	delete(e.calls, cl.key)
	m := &wk.CallDone{WorkerID: string(cl.worker), Generation: cl.gen, Key: cl.key, Err: err, RequestID: cl.reqID}
	if died && cl.retryable {
		m.Unanswered = true
	} else {
		e.reply(cl.replyTo)
	}
	e.post(func() { e.c.OnCallDone(m, e.now) })
}

// die ends generation gen of id: its calls fail with worker_exit.
func (e *coreEnv) die(id WorkerID, gen uint64) {
	e.closed[gen] = true
	for _, k := range e.runningOn(gen) {
		e.finish(e.calls[k], sperr.New(sperr.CodeWorkerExit, "worker died"), true)
	}
}

func (e *coreEnv) downPlanned(id WorkerID, gen uint64) {
	e.die(id, gen)
	e.post(func() { e.c.OnDown(id, gen, true, wk.ExitInfo{}, e.now) })
}

func (e *coreEnv) runningOn(gen uint64) []uint64 {
	var ks []uint64
	for k, cl := range e.calls {
		if cl.gen == gen {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}

func (e *coreEnv) childIDs(booting bool) []WorkerID {
	var ids []WorkerID
	for id, ch := range e.children {
		if ch.booting == booting {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (e *coreEnv) callKeys() []uint64 {
	ks := make([]uint64, 0, len(e.calls))
	for k := range e.calls {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// mayRun is the test's own statement of when a slot may get a call;
// closedOK lets a closed slot pass.
func mayRun(s *slot, now time.Time, closedOK bool) bool {
	return s.state == SlotReady && s.live && (closedOK || !s.closed) && !s.unresponsive && !now.Before(s.taintedUntil)
}

// check verifies that the slots and the scheduler agree.
func (e *coreEnv) check() {
	c := e.c
	starting, queued := 0, 0
	for id, s := range c.slots {
		_, inSched := c.sched.workers[id]
		if inSched != s.live {
			e.t.Fatalf("%s: live %v but in the scheduler %v (state %s)", id, s.live, inSched, s.state)
		}
		if inSched && c.sched.workers[id].ready && !mayRun(s, e.now, false) {
			e.t.Fatalf("%s: ready in the scheduler but not dispatchable (state %s, tainted %v, unresponsive %v, closed %v)",
				id, s.state, s.tainted(e.now), s.unresponsive, s.closed)
		}
		j := c.recycling
		mine := j != nil && j.id == id
		switch {
		case s.state == SlotDraining && !(mine && j.phase == recycleDraining):
			e.t.Fatalf("%s is draining, but not for the running recycle", id)
		case s.state == SlotStopping && s.stopFor == stopForRecycle && !(mine && j.phase == recycleStopping):
			e.t.Fatalf("%s is stopping for a recycle that is not stopping it", id)
		case s.state == SlotStopping && s.stopFor == 0:
			e.t.Fatalf("%s is stopping for no reason", id)
		case mine && j.phase == recycleDraining && s.state != SlotDraining,
			mine && j.phase == recycleStopping && s.state != SlotStopping:
			e.t.Fatalf("%s: recycle phase %d, slot %s", id, j.phase, s.state)
		}
		switch s.state {
		case SlotStarting:
			starting++
		case SlotQueued:
			queued++
			if !slices.Contains(c.toStart, id) {
				e.t.Fatalf("%s is queued but not in the start queue", id)
			}
		}
	}
	if j := c.recycling; j != nil && c.slots[j.id] == nil {
		e.t.Fatalf("recycle of %s, which has no slot", j.id)
	}
	if starting != c.starting {
		e.t.Fatalf("%d start permits held, %d slots starting", c.starting, starting)
	}
	if queued != len(c.toStart) || c.state == StateStopping && len(c.toStart) > queued {
		e.t.Fatalf("start queue %v, %d slots queued", c.toStart, queued)
	}
	if c.starting > c.cfg.StartupConcurrency {
		e.t.Fatalf("%d starting, more than %d", c.starting, c.cfg.StartupConcurrency)
	}
	for k, pd := range c.pending {
		r, running := c.sched.running[k]
		switch {
		case c.sched.q.has(k):
		case running:
			if r.w.id != pd.worker || c.slots[pd.worker] == nil || c.slots[pd.worker].gen != pd.generation {
				e.t.Fatalf("call %d runs on %s in the scheduler, held for %s/%d", k, r.w.id, pd.worker, pd.generation)
			}
		case pd.worker != "":
			if _, ok := e.calls[k]; !ok {
				e.t.Fatalf("call %d held for %s/%d, which does not run it", k, pd.worker, pd.generation)
			}
		default:
			e.t.Fatalf("call %d is held but neither queued nor running", k)
		}
	}
}

func TestCoreProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := Config{
			Size:               rapid.IntRange(1, 4).Draw(t, "size"),
			MaxQueue:           rapid.IntRange(0, 6).Draw(t, "maxQueue"),
			StartupConcurrency: rapid.IntRange(1, 3).Draw(t, "startupConcurrency"),
			MaxRequests:        rapid.IntRange(0, 4).Draw(t, "maxRequests"),
			QueueTimeout:       time.Duration(rapid.IntRange(1, 5).Draw(t, "queueTimeoutS")) * time.Second,
			DrainTimeout:       time.Duration(rapid.IntRange(1, 5).Draw(t, "drainTimeoutS")) * time.Second,
			Crash: CrashBarrier{
				TaintDuration: time.Duration(rapid.IntRange(0, 3).Draw(t, "taintS")) * time.Second,
				Breaker:       BreakerConfig{Threshold: rapid.SampledFrom([]int{-1, 3}).Draw(t, "breaker")},
			},
		}
		e := newCoreEnv(t, cfg)
		steps := rapid.IntRange(1, 120).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			e.step()
		}
		e.finishAll()
	})
}

// step applies one random event.
func (e *coreEnv) step() {
	t, c := e.t, e.c
	switch rapid.IntRange(0, 14).Draw(t, "event") {
	case 0, 1: // a call arrives
		e.nextReq++
		to := fmt.Sprintf("caller%d", e.nextReq)
		e.sent = append(e.sent, to)
		req := &poolpb.Execute{Tool: "t", RequestId: to,
			SessionId:  rapid.SampledFrom([]string{"", "s1", "s2"}).Draw(t, "session"),
			Affinity:   poolpb.Affinity(rapid.IntRange(0, 3).Draw(t, "affinity")),
			Idempotent: rapid.Bool().Draw(t, "idempotent")}
		c.Execute(req, to, e.now)
	case 2: // a running call finishes
		if ks := e.callKeys(); len(ks) > 0 {
			k := rapid.SampledFrom(ks).Draw(t, "done")
			var err *sperr.Error
			if rapid.Bool().Draw(t, "failed") {
				err = sperr.New(sperr.CodePythonException, "tool failed")
			}
			e.finish(e.calls[k], err, false)
		}
	case 3, 4: // a booting worker becomes ready
		if ids := e.childIDs(true); len(ids) > 0 {
			id := rapid.SampledFrom(ids).Draw(t, "ready")
			ch := e.children[id]
			ch.booting = false
			c.OnReady(id, ch.gen, rapid.IntRange(1, 2).Draw(t, "capacity"), 100+int(ch.gen), nil, e.now)
		}
	case 5: // a booting worker's start fails
		if ids := e.childIDs(true); len(ids) > 0 {
			id := rapid.SampledFrom(ids).Draw(t, "startFails")
			ch := e.children[id]
			exited := ch.first
			if exited {
				delete(e.children, id)
			} else {
				e.gen++
				e.children[id] = &mChild{gen: e.gen, booting: true} // the supervisor restarts it
			}
			c.OnStartFailed(id, ch.gen, errors.New("boot failed"), exited, e.now)
		}
	case 6: // a ready worker crashes; its supervisor restarts it
		if ids := e.childIDs(false); len(ids) > 0 {
			id := rapid.SampledFrom(ids).Draw(t, "crash")
			ch := e.children[id]
			e.die(id, ch.gen)
			e.gen++
			e.children[id] = &mChild{gen: e.gen, booting: true}
			if rapid.Bool().Draw(t, "downArrives") {
				gen := ch.gen
				e.post(func() {
					c.OnDown(id, gen, false, wk.ExitInfo{Signal: "SIGKILL"}, e.now)
					if s := c.slots[id]; s != nil && s.gen == gen {
						if s.state != SlotRestarting && s.state != SlotDraining && s.state != SlotStopping {
							t.Fatalf("%s after its crash: %s, not restarting nor on its way out", id, s.state)
						}
					}
				})
			}
		}
	case 7: // the liveness probe changes its mind
		if ids := e.childIDs(false); len(ids) > 0 {
			id := rapid.SampledFrom(ids).Draw(t, "probe")
			c.OnResponsive(id, e.children[id].gen, rapid.Bool().Draw(t, "responsive"), "probe", e.now)
		}
	case 8: // time passes
		e.now = e.now.Add(time.Duration(rapid.IntRange(1, 4000).Draw(t, "ms")) * time.Millisecond)
		c.Tick(e.now)
	case 9: // a recycle is asked for
		if len(c.order) > 0 {
			_ = c.Recycle(rapid.SampledFrom(c.order).Draw(t, "recycle"), "manual", 0, e.now)
		}
	case 10:
		_ = c.Resize(rapid.IntRange(1, 4).Draw(t, "resize"), e.now)
	case 11: // a stop completes
		if len(e.stops) > 0 {
			id := e.stops[0]
			e.stops = e.stops[1:]
			c.OnStopped(id, e.now)
		}
	case 12:
		if e.nextReq > 0 {
			c.Cancel(fmt.Sprintf("caller%d", rapid.IntRange(1, e.nextReq).Draw(t, "cancel")), e.now)
		}
	case 13:
		c.EndSession(rapid.SampledFrom([]string{"s1", "s2"}).Draw(t, "endSession"))
	case 14:
		if e.nextReq > 0 {
			c.Credit(fmt.Sprintf("caller%d", rapid.IntRange(1, e.nextReq).Draw(t, "credit")), 1)
		}
	}
	e.run()
}

// finishAll stops the pool as the runtime does and lets every executor
// answer: then every caller has exactly one reply.
func (e *coreEnv) finishAll() {
	e.c.Stopping(e.now)
	e.run()
	for _, cl := range e.calls {
		cl.retryable = false // EffStopRetries
	}
	for _, id := range e.childIDs(false) {
		e.die(id, e.children[id].gen)
	}
	for _, k := range e.callKeys() {
		e.finish(e.calls[k], sperr.New(sperr.CodeShutdown, "stopped"), true)
	}
	e.run()
	for _, to := range e.sent {
		if e.replies[to] != 1 {
			e.t.Fatalf("caller %s answered %d times at the end", to, e.replies[to])
		}
	}
	if len(e.c.pending) != 0 {
		e.t.Fatalf("%d calls still held after the stop", len(e.c.pending))
	}
}
