package pool

import (
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

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
	})
}

// pending is a request the pool has taken and not yet seen answered.
type pending struct {
	req     *poolpb.Execute
	replyTo *actor.PID
	retried bool
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
	self  *actor.PID
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
	case *wk.Ready:
		p.onWorkerReady(ctx, m)
	case *wk.Down:
		p.onWorkerDown(ctx, m)
	case *wk.StartFailed:
		p.onStartFailed(ctx, WorkerID(m.WorkerID), m.Generation, m.Err)
	case *supervisors.StartChildResult:
		p.onStartChildResult(ctx, m)
	case *startNext:
		p.startWorkers(ctx)
	case *tick:
		p.onTick(ctx)
	case *poolpb.GetStats:
		ctx.Respond(p.snapshot())
	case *poolpb.AwaitReady:
		p.onAwaitReady(ctx, m)
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
	p.self = ctx.Self()
	p.state = StateStarting
	p.stats.Pool = p.cfg.Name
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
		p.starting++
		p.startReplies = append(p.startReplies, id)
		ctx.Request(p.cfg.WorkerSupervisor, &supervisors.StartChild{Spec: supervisors.ChildSpec{
			Name:     string(id),
			Props:    p.cfg.WorkerProps(wc),
			Restart:  supervisors.Transient,
			Shutdown: wc.StopGrace + 10*time.Second,
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
	p.onStartFailed(ctx, id, 0, m.Err)
}

func (p *poolActor) doneStarting(ctx actor.Context, w *workerSlot) {
	if w.starting {
		w.starting = false
		p.starting--
		ctx.Send(ctx.Self(), &startNext{})
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
	p.sched.AddWorker(w.id, m.Capacity)
	if p.state == StateStarting || p.state == StateInitFailed {
		p.state = StateReady
		p.log.Info("pool ready", "first_worker", m.WorkerID)
	}
	p.dispatchAll(ctx, p.sched.SetReady(w.id, true))
	p.answerAwaiters(ctx, time.Now())
	p.rearm(ctx)
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
	}
	p.rearm(ctx)
}

func (p *poolActor) failOrphans(ctx actor.Context, id WorkerID, orphaned []Request) {
	for _, r := range orphaned {
		p.fail(ctx, r.ID, p.poolErr(sperr.CodeSessionWorkerUnavailable, "the session's worker %s is gone", id))
	}
}

func (p *poolActor) onStartFailed(ctx actor.Context, id WorkerID, gen uint64, err error) {
	w, ok := p.workers[id]
	if !ok {
		return
	}
	p.doneStarting(ctx, w)
	p.lastStartErr = err
	if !w.startedOK {
		w.failed = true
	}
	p.log.Warn("worker start failed", "worker", id, "generation", gen, "error", err)
	if p.state != StateStarting {
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

func (p *poolActor) onExecute(ctx actor.Context, m *poolpb.Execute) {
	p.stats.Requests++
	replyTo := ctx.Sender()
	if replyTo == nil {
		p.log.Warn("execute without a sender: nowhere to reply, dropped", "tool", m.GetTool())
		return
	}
	reject := func(e *sperr.Error) {
		p.stats.Errors++
		ctx.Send(replyTo, terminal(m, e))
	}
	switch {
	case p.state == StateStopping:
		reject(p.poolErr(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name))
		return
	case p.state == StateInitFailed:
		reject(p.initFailedErr())
		return
	case m.GetTool() == "":
		reject(p.poolErr(sperr.CodeInvalidArgument, "tool name is empty"))
		return
	}
	if m.GetRequestId() != "" {
		if _, dup := p.byReqID[m.GetRequestId()]; dup {
			reject(p.poolErr(sperr.CodeInvalidArgument, "request id %q is already in use", m.GetRequestId()))
			return
		}
	}
	now := time.Now()
	if m.GetDeadlineUnixNano() == 0 {
		m.DeadlineUnixNano = now.Add(p.cfg.ExecuteTimeout).UnixNano()
	}
	p.nextKey++
	key := p.nextKey
	p.pending[key] = &pending{req: m, replyTo: replyTo}
	if m.GetRequestId() != "" {
		p.byReqID[m.GetRequestId()] = key
	}
	p.submit(ctx, key, now)
}

// submit hands a taken request to the scheduler and acts on its decision.
func (p *poolActor) submit(ctx actor.Context, key uint64, now time.Time) {
	pd := p.pending[key]
	queueDeadline := now.Add(p.cfg.QueueTimeout)
	if dl := time.Unix(0, pd.req.GetDeadlineUnixNano()); dl.Before(queueDeadline) {
		queueDeadline = dl
	}
	aff := p.cfg.Affinity
	if a := pd.req.GetAffinity(); a != poolpb.Affinity_AFFINITY_DEFAULT {
		aff = Affinity(a - 1)
	}
	d := p.sched.Submit(Request{ID: key, Deadline: queueDeadline, SessionID: pd.req.GetSessionId(), Affinity: aff}, now)
	switch d.Verdict {
	case Dispatched:
		p.dispatch(ctx, key, d.Worker)
	case Queued:
		p.rearm(ctx)
	case RejectedSaturated:
		p.stats.PoolSaturated++
		st := p.sched.Stats()
		e := p.poolErr(sperr.CodePoolSaturated, "pool %s is saturated: %d calls queued", p.cfg.Name, st.Queued)
		e.WithDetail("queue_size", strconv.Itoa(st.Queued)).WithDetail("max_queue_size", strconv.Itoa(p.cfg.MaxQueue))
		p.fail(ctx, key, e)
	case RejectedExpired:
		p.stats.QueueTimeouts++
		p.fail(ctx, key, p.poolErr(sperr.CodeQueueTimeout, "deadline passed before a worker was free"))
	case RejectedWorkerBusy:
		p.fail(ctx, key, p.poolErr(sperr.CodeWorkerBusy, "the session's worker is busy"))
	case RejectedSessionWorkerUnavailable:
		p.fail(ctx, key, p.poolErr(sperr.CodeSessionWorkerUnavailable, "the session's worker is unavailable"))
	default:
		p.fail(ctx, key, p.poolErr(sperr.CodeInternal, "scheduler refused the request: %s", d.Verdict))
	}
}

func (p *poolActor) dispatchAll(ctx actor.Context, ds []Dispatch) {
	for _, d := range ds {
		p.dispatch(ctx, d.Req.ID, d.Worker)
	}
}

// dispatch gives a request that holds a slot on w to w's executor. A worker
// that has just stopped taking calls gives the request back to the
// scheduler (once); the worker's Down notice follows.
func (p *poolActor) dispatch(ctx actor.Context, key uint64, id WorkerID) {
	pd, ok := p.pending[key]
	if !ok {
		p.dispatchAll(ctx, p.sched.Done(id, key))
		return
	}
	w := p.workers[id]
	var err error = wk.ErrClosed
	if w != nil && w.exec != nil {
		err = w.exec.Submit(wk.Call{Key: key, Req: pd.req, ReplyTo: pd.replyTo})
	}
	if err == nil {
		return
	}
	// Not ready first, so the freed slot is not handed the next queued
	// request on the same closed worker.
	p.sched.SetReady(id, false)
	freed := p.sched.Done(id, key)
	if pd.retried {
		p.fail(ctx, key, p.poolErr(sperr.CodeNoWorkers, "no worker could take the call: %v", err))
	} else {
		pd.retried = true
		p.submit(ctx, key, time.Now())
	}
	p.dispatchAll(ctx, freed)
}

func (p *poolActor) onCallDone(ctx actor.Context, m *wk.CallDone) {
	pd, ok := p.pending[m.Key]
	if ok {
		delete(p.pending, m.Key)
		if id := pd.req.GetRequestId(); id != "" {
			delete(p.byReqID, id)
		}
		p.stats.Completed++
		if m.Err != nil {
			p.stats.Errors++
		}
	}
	w := p.workers[WorkerID(m.WorkerID)]
	if w == nil || w.generation != m.Generation {
		return // the generation is gone; its slots went with it
	}
	p.dispatchAll(ctx, p.sched.Done(w.id, m.Key))
	p.rearm(ctx)
}

func (p *poolActor) onCancel(ctx actor.Context, m *poolpb.Cancel) {
	key, ok := p.byReqID[m.GetRequestId()]
	if !ok {
		return
	}
	r := p.sched.Cancel(key)
	switch r.Outcome {
	case CancelledQueued:
		p.stats.Cancelled++
		p.fail(ctx, key, p.poolErr(sperr.CodeCancelled, "cancelled while queued"))
	case CancelledRunning:
		p.stats.Cancelled++
		if w := p.workers[r.Worker]; w != nil && w.exec != nil {
			w.exec.Cancel(key)
		}
	}
}

// fail answers a taken request with e and forgets it.
func (p *poolActor) fail(ctx actor.Context, key uint64, e *sperr.Error) {
	pd, ok := p.pending[key]
	if !ok {
		return
	}
	delete(p.pending, key)
	if id := pd.req.GetRequestId(); id != "" {
		delete(p.byReqID, id)
	}
	p.stats.Errors++
	ctx.Send(pd.replyTo, terminal(pd.req, e))
}

// terminal is the one terminal reply for req carrying e.
func terminal(req *poolpb.Execute, e *sperr.Error) any {
	if req.GetStream() {
		return &poolpb.Chunk{RequestId: req.GetRequestId(), IsFinal: true, Error: sperr.ToProto(e)}
	}
	return &poolpb.Result{RequestId: req.GetRequestId(), Error: sperr.ToProto(e)}
}

func (p *poolActor) onTick(ctx actor.Context) {
	p.timerAt = time.Time{}
	now := time.Now()
	for _, r := range p.sched.Expire(now) {
		p.stats.QueueTimeouts++
		p.fail(ctx, r.ID, p.poolErr(sperr.CodeQueueTimeout, "no worker was free within the queue timeout"))
	}
	p.answerAwaiters(ctx, now)
	p.rearm(ctx)
}

// rearm points the single timer at the earliest deadline.
func (p *poolActor) rearm(ctx actor.Context) {
	next, ok := p.sched.NextDeadline()
	for _, a := range p.awaiters {
		if !a.deadline.IsZero() && (!ok || a.deadline.Before(next)) {
			next, ok = a.deadline, true
		}
	}
	if !ok || (!p.timerAt.IsZero() && !next.Before(p.timerAt)) {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timerAt = next
	self, root := ctx.Self(), ctx.ActorSystem().Root
	p.timer = time.AfterFunc(time.Until(next), func() { root.Send(self, &tick{at: next}) })
}

func (p *poolActor) onAwaitReady(ctx actor.Context, m *poolpb.AwaitReady) {
	a := awaiter{replyTo: ctx.Sender(), all: m.GetAll()}
	if a.replyTo == nil {
		return
	}
	if dl := m.GetDeadlineUnixNano(); dl > 0 {
		a.deadline = time.Unix(0, dl)
	}
	p.awaiters = append(p.awaiters, a)
	p.answerAwaiters(ctx, time.Now())
	p.rearm(ctx)
}

// answerAwaiters answers every AwaitReady whose condition holds, whose
// deadline passed, or that can never be met.
func (p *poolActor) answerAwaiters(ctx actor.Context, now time.Time) {
	ready, settled := 0, 0
	for _, w := range p.workers {
		if w.exec != nil {
			ready++
		}
		if w.startedOK || w.failed {
			settled++
		}
	}
	keep := p.awaiters[:0]
	for _, a := range p.awaiters {
		reply := &poolpb.ReadyReply{Pool: p.cfg.Name, Ready: uint64(ready), Workers: uint64(len(p.workers))}
		switch {
		case p.state == StateInitFailed:
			reply.Error = sperr.ToProto(p.initFailedErr())
		case p.state == StateStopping:
			reply.Error = sperr.ToProto(p.poolErr(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name))
		case !a.all && ready > 0, a.all && settled == len(p.workers):
		case !a.deadline.IsZero() && !now.Before(a.deadline):
			reply.Error = sperr.ToProto(p.poolErr(sperr.CodeDeadlineExceeded,
				"pool %s: %d of %d workers ready at the deadline", p.cfg.Name, ready, len(p.workers)))
		default:
			keep = append(keep, a)
			continue
		}
		ctx.Send(a.replyTo, reply)
	}
	p.awaiters = keep
}

func (p *poolActor) snapshot() *poolpb.Stats {
	st := p.sched.Stats()
	s := &poolpb.Stats{
		Pool: p.cfg.Name, Requests: p.stats.Requests, Errors: p.stats.Errors,
		QueueTimeouts: p.stats.QueueTimeouts, PoolSaturated: p.stats.PoolSaturated,
		Completed: p.stats.Completed, Cancelled: p.stats.Cancelled, WorkerRestarts: p.stats.WorkerRestarts,
		Queued: uint64(st.Queued), Workers: uint64(len(p.workers)), Ready: uint64(st.Ready),
		Available: uint64(st.Available), Busy: uint64(st.Busy), InFlight: uint64(st.InFlight), State: p.state,
	}
	return s
}

func (p *poolActor) onStopping(ctx actor.Context) {
	p.state = StateStopping
	if p.timer != nil {
		p.timer.Stop()
	}
	for _, r := range p.sched.Drain() {
		p.fail(ctx, r.ID, p.poolErr(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name))
	}
	p.answerAwaiters(ctx, time.Now())
	// Dispatched calls are answered by their workers, which stop after the
	// pool (the worker supervisor comes earlier in the runtime's order).
	ids := make([]string, 0, len(p.pending))
	for _, pd := range p.pending {
		ids = append(ids, pd.req.GetRequestId())
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		p.log.Debug("pool stopping with calls running on workers", "calls", len(ids))
	}
}
