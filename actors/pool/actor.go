package pool

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
	"github.com/snakepit-go/snakepit/supervisors"
)

// States of a pool.
const (
	StateStarting   = "starting"    // no worker ready yet
	StateReady      = "ready"       // at least one worker ready
	StateInitFailed = "init_failed" // every worker failed its first start
	StateStopping   = "stopping"
)

// Props returns the props of a pool actor. The pool starts its workers
// under c.WorkerSupervisor when it starts, and answers every request it
// takes exactly once: itself for queued and rejected requests, through the
// worker for dispatched ones.
func Props(c Config) *actor.Props {
	c = c.WithDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &poolActor{
			cfg:     c,
			log:     c.Logger.With("pool", c.Name),
			sched:   NewScheduler(c.MaxQueue),
			pending: map[uint64]*pending{},
			byReqID: map[string]uint64{},
			workers: map[WorkerID]*workerSlot{},
		}
	}, actor.WithDispatcher(newStickyDispatcher(300, 20*time.Millisecond)), actor.WithMailbox(afterStopMailbox(c.Name)))
}

// pending is a request the pool has taken and not yet seen answered.
type pending struct {
	req     *poolpb.Execute
	replyTo *actor.PID
	// deadline bounds queueing and execution: the request's, or the pool's
	// ExecuteTimeout from when it was taken.
	deadline time.Time
	retried  bool
	// crashRetried: the call's worker died and it runs again (idempotent).
	crashRetried bool
	// trial: the half-open crash breaker let this call through as its trial.
	trial bool
	// worker and generation hold the call once dispatched; only a CallDone
	// from that very worker generation ends it.
	worker     WorkerID
	generation uint64
}

// workerSlot is the pool's view of one worker.
type workerSlot struct {
	id         WorkerID
	pid        *actor.PID
	generation uint64
	exec       *wk.Executor // nil while not ready
	startedOK  bool         // reached ready at least once
	failed     bool         // its first start failed
	starting   bool
	// dead: its actor exited after a failed start; the pool starts it again
	// at retryAt (backoff doubling up to 30s).
	dead        bool
	retryAt     time.Time
	backoff     time.Duration
	stopTimeout time.Duration

	// Lifecycle of the current generation.
	draining     bool // being recycled or removed: no new calls
	readyAt      time.Time
	lastActive   time.Time
	requests     int // successful calls
	maxRequests  int // this generation's limit (with jitter), 0 = none
	osPid        int
	taintedUntil time.Time // kept out of dispatch until then after a crash
	// unresponsive: the worker did not answer a liveness probe; no new
	// call until it does.
	unresponsive bool
}

type awaiter struct {
	replyTo  *actor.PID
	all      bool
	deadline time.Time
}

type poolActor struct {
	cfg   Config
	log   *slog.Logger
	sched *Scheduler
	state string

	nextKey uint64
	pending map[uint64]*pending
	byReqID map[string]uint64

	workers  map[WorkerID]*workerSlot
	order    []WorkerID // start order
	toStart  []WorkerID
	starting int
	// startReplies are the workers whose StartChild answer is outstanding,
	// oldest first.
	startReplies []WorkerID
	awaiters     []awaiter

	timer   *time.Timer
	timerAt time.Time
	// lastStartErr is the latest worker start failure, quoted when the pool
	// fails to initialise.
	lastStartErr error

	recycles  []*recycleJob // waiting, in order
	recycling *recycleJob   // the one running (one at a time)
	breaker   *Breaker
	slotSeq   int // the highest worker number handed out

	stats poolpb.Stats
}

// Receive handles the pool's messages.
func (p *poolActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.onStarted(ctx)
	case *poolpb.Execute:
		p.onExecute(ctx, m)
	case *poolpb.Cancel:
		p.onCancel(ctx, m)
	case *wk.CallDone:
		p.onCallDone(ctx, m)
	case *wk.Responsive:
		p.onResponsive(ctx, m)
	case *wk.Ready:
		p.onWorkerReady(ctx, m)
	case *wk.Down:
		p.onWorkerDown(ctx, m)
	case *wk.StartFailed:
		p.onStartFailed(ctx, WorkerID(m.WorkerID), m.Generation, m.Err, m.Exited)
	case *supervisors.StartChildResult:
		p.onStartChildResult(ctx, m)
	case *tick:
		p.onTick(ctx)
	case *poolpb.GetStats:
		ctx.Respond(p.snapshot())
	case *poolpb.AwaitReady:
		p.onAwaitReady(ctx, m)
	case *Recycle:
		p.onRecycle(ctx, m)
	case *Resize:
		p.onResize(ctx, m)
	case *GetWorkerStates:
		ctx.Respond(p.workerStates())
	case *EndSession:
		p.dispatchAll(ctx, p.sched.UnbindSession(m.SessionID))
	case *poolpb.ListWorkers:
		ids := make([]string, 0, len(p.order))
		for _, id := range p.order {
			ids = append(ids, string(id))
		}
		ctx.Respond(&poolpb.WorkerList{WorkerIds: ids})
	case *actor.Stopping:
		p.onStopping(ctx)
	}
}

func (p *poolActor) onStarted(ctx actor.Context) {
	p.state = StateStarting
	// Keys must not repeat across restarts of this pool (same PID): a late
	// CallDone from a predecessor's worker must not match a new request.
	p.nextKey = p.cfg.keyBase()
	p.stats.Pool = p.cfg.Name
	p.breaker = NewBreaker(p.cfg.Crash.Breaker)
	p.slotSeq = p.cfg.Size
	for i := 1; i <= p.cfg.Size; i++ {
		id := WorkerID(WorkerName(p.cfg.Name, i))
		p.workers[id] = &workerSlot{id: id}
		p.order = append(p.order, id)
		p.toStart = append(p.toStart, id)
		// A pool restarted on its own finds its old workers still running:
		// replace them, so the new pool knows every worker it routes to.
		ctx.Request(p.cfg.WorkerSupervisor, &supervisors.TerminateChild{Name: string(id)})
	}
	p.log.Info("pool starting", "workers", p.cfg.Size, "startup_concurrency", p.cfg.StartupConcurrency)
	p.startWorkers(ctx)
}

// startWorkers starts workers while fewer than StartupConcurrency are starting.
func (p *poolActor) startWorkers(ctx actor.Context) {
	for p.starting < p.cfg.StartupConcurrency && len(p.toStart) > 0 && p.state != StateStopping {
		id := p.toStart[0]
		p.toStart = p.toStart[1:]
		wc := p.cfg.Worker
		wc.WorkerID, wc.PoolName, wc.Pool = string(id), p.cfg.Name, ctx.Self()
		if wc.Logger == nil {
			wc.Logger = p.cfg.Logger
		}
		p.workers[id].starting = true
		p.workers[id].stopTimeout = wc.ShutdownTimeout()
		p.starting++
		p.startReplies = append(p.startReplies, id)
		ctx.Request(p.cfg.WorkerSupervisor, &supervisors.StartChild{Spec: supervisors.ChildSpec{
			Name:     string(id),
			Props:    p.cfg.WorkerProps(wc),
			Restart:  supervisors.Transient,
			Shutdown: wc.ShutdownTimeout(),
		}})
	}
}

func (p *poolActor) onStartChildResult(ctx actor.Context, m *supervisors.StartChildResult) {
	// The worker supervisor answers StartChild requests in the order they
	// were sent, so the oldest outstanding one is this answer's worker.
	if len(p.startReplies) == 0 {
		return
	}
	id := p.startReplies[0]
	p.startReplies = p.startReplies[1:]
	if m.Err == nil {
		p.workers[id].pid = m.PID
		return
	}
	p.log.Error("cannot start worker", "worker", id, "error", m.Err)
	p.onStartFailed(ctx, id, 0, m.Err, true)
}

func (p *poolActor) doneStarting(ctx actor.Context, w *workerSlot) {
	if w.starting {
		w.starting = false
		p.starting--
		p.startWorkers(ctx)
	}
}

func (p *poolActor) onWorkerReady(ctx actor.Context, m *wk.Ready) {
	w, ok := p.workers[WorkerID(m.WorkerID)]
	if !ok || p.state == StateStopping {
		return
	}
	if w.generation > m.Generation {
		return // stale
	}
	if w.exec != nil || w.generation != 0 {
		// A new generation replaces the old one (its Down may not have
		// arrived): strict session requests queued for it cannot run.
		_, orphaned := p.sched.RemoveWorker(w.id)
		p.failOrphans(ctx, w.id, orphaned)
	}
	p.doneStarting(ctx, w)
	if w.startedOK && w.generation != m.Generation {
		p.stats.WorkerRestarts++
	}
	w.generation, w.exec, w.pid, w.startedOK, w.failed = m.Generation, m.Exec, m.PID, true, false
	now := time.Now()
	w.dead, w.backoff, w.retryAt = false, 0, time.Time{}
	w.readyAt, w.lastActive, w.requests, w.osPid, w.draining = now, now, 0, m.OSPid, false
	w.unresponsive = false
	w.maxRequests = lifecycle.RequestLimit(p.cfg.MaxRequests, p.cfg.MaxRequestsJitter, nil)
	p.sched.AddWorker(w.id, m.Capacity)
	if p.state == StateStarting || p.state == StateInitFailed {
		p.state = StateReady
		p.log.Info("pool ready", "first_worker", m.WorkerID)
	}
	if now.Before(w.taintedUntil) {
		p.log.Warn("worker tainted after a crash: kept out of dispatch", "worker", w.id, "until", w.taintedUntil)
	} else {
		w.taintedUntil = time.Time{}
		p.dispatchAll(ctx, p.sched.SetReady(w.id, true))
	}
	p.recycleDone(ctx, w.id)
	p.answerAwaiters(ctx, time.Now())
	p.rearm(ctx)
}

// onResponsive takes a worker that does not answer its liveness probe out
// of dispatch, and puts it back once it answers (unless it is tainted or
// draining).
func (p *poolActor) onResponsive(ctx actor.Context, m *wk.Responsive) {
	w, ok := p.workers[WorkerID(m.WorkerID)]
	if !ok || w.generation != m.Generation || w.exec == nil || w.unresponsive == !m.OK {
		return
	}
	w.unresponsive = !m.OK
	if !m.OK {
		p.log.Warn("worker unresponsive: no new calls until it answers", "worker", w.id, "reason", m.Reason)
		p.sched.SetReady(w.id, false)
		return
	}
	if w.draining || time.Now().Before(w.taintedUntil) {
		return
	}
	p.dispatchAll(ctx, p.sched.SetReady(w.id, true))
}

func (p *poolActor) onWorkerDown(ctx actor.Context, m *wk.Down) {
	w, ok := p.workers[WorkerID(m.WorkerID)]
	if !ok || w.generation != m.Generation {
		return
	}
	w.exec = nil
	// Running calls are answered by the worker's executor; strict session
	// requests queued for this worker can no longer run.
	_, orphaned := p.sched.RemoveWorker(w.id)
	p.failOrphans(ctx, w.id, orphaned)
	if !m.Planned {
		p.log.Warn("worker down", "worker", m.WorkerID, "exit", m.Exit.String())
		p.onCrash(w, m.Exit)
	}
	p.rearm(ctx)
}

func (p *poolActor) failOrphans(ctx actor.Context, id WorkerID, orphaned []Request) {
	for _, r := range orphaned {
		p.fail(ctx, r.ID, p.poolErr(sperr.CodeSessionWorkerUnavailable, "the session's worker %s is gone", id))
	}
}

func (p *poolActor) onStartFailed(ctx actor.Context, id WorkerID, gen uint64, err error, exited bool) {
	w, ok := p.workers[id]
	if !ok {
		return
	}
	p.doneStarting(ctx, w)
	p.lastStartErr = err
	if exited && p.state != StateStopping {
		// Its actor is gone: reconcile starts the slot again, with backoff.
		w.dead = true
		w.backoff = min(max(2*w.backoff, p.cfg.ReconcileBackoff), 30*time.Second)
		w.retryAt = time.Now().Add(w.backoff)
		p.rearm(ctx)
	}
	p.recycleDone(ctx, id)
	if !w.startedOK {
		w.failed = true
	}
	p.log.Warn("worker start failed", "worker", id, "generation", gen, "error", err)
	if p.state != StateStarting {
		p.answerAwaiters(ctx, time.Now()) // this may have been the last worker AwaitReady{All} waited for
		return
	}
	for _, w := range p.workers {
		if !w.failed {
			return // some worker may still come up
		}
	}
	p.state = StateInitFailed
	p.log.Error("pool initialisation failed: no worker started", "error", err)
	// Everything waiting can never run.
	for _, r := range p.sched.Drain() {
		p.fail(ctx, r.ID, p.initFailedErr())
	}
	p.answerAwaiters(ctx, time.Now())
}

func (p *poolActor) initFailedErr() *sperr.Error {
	e := p.poolErr(sperr.CodePoolNotInitialized, "pool %s failed to initialise: no worker started", p.cfg.Name)
	if p.lastStartErr != nil {
		e.Message += ": " + p.lastStartErr.Error()
	}
	return e
}

func (p *poolActor) poolErr(code, format string, args ...any) *sperr.Error {
	e := sperr.New(code, format, args...)
	e.Pool = p.cfg.Name
	return e
}

func (p *poolActor) snapshot() *poolpb.Stats {
	st := p.sched.Stats()
	s := &poolpb.Stats{
		Pool: p.cfg.Name, Requests: p.stats.Requests, Errors: p.stats.Errors,
		QueueTimeouts: p.stats.QueueTimeouts, PoolSaturated: p.stats.PoolSaturated,
		Completed: p.stats.Completed, Cancelled: p.stats.Cancelled, WorkerRestarts: p.stats.WorkerRestarts,
		Queued: uint64(st.Queued), Workers: uint64(len(p.workers)), Ready: uint64(st.Ready),
		Available: uint64(st.Available), Busy: uint64(st.Busy), InFlight: uint64(st.InFlight), State: p.state,
		Recycled: p.stats.Recycled, CircuitRejected: p.stats.CircuitRejected, Retried: p.stats.Retried,
	}
	now := time.Now()
	if p.breaker != nil {
		s.Circuit = string(p.breaker.State(now))
	}
	for _, w := range p.workers {
		if now.Before(w.taintedUntil) {
			s.Tainted++
		}
	}
	return s
}

func (p *poolActor) onStopping(ctx actor.Context) {
	p.state = StateStopping
	// No call is handed back to this pool from now on (it could not retry
	// it once gone): executors answer such calls themselves.
	for _, w := range p.workers {
		if w.exec != nil {
			w.exec.StopRetries()
		}
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	for _, r := range p.sched.Drain() {
		p.fail(ctx, r.ID, p.poolErr(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name))
	}
	p.answerAwaiters(ctx, time.Now())
	// Dispatched calls are answered by their workers, which stop after the
	// pool (the worker supervisor comes earlier in the runtime's order).
	if len(p.pending) > 0 {
		p.log.Debug("pool stopping with calls running on workers", "calls", len(p.pending))
	}
}
