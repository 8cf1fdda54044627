package pool

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/supervisors"
)

// Recycle asks the pool to replace a worker gracefully: it takes no new
// calls, finishes its running ones (up to DrainTimeout), stops, and a
// replacement starts from the same config. One worker of a pool is recycled
// at a time, so the pool never has fewer than Size-1 workers serving.
// Answered with *RecycleResult when it has a sender.
type Recycle struct {
	WorkerID string
	Reason   lifecycle.Reason
	// RSSBytes is the memory measured when the reason is memory (reported).
	RSSBytes uint64
}

// RecycleResult answers Recycle: Err is nil once the recycle is scheduled.
type RecycleResult struct{ Err error }

// Resize changes the number of workers: new ones start at once; removed ones
// (the highest-numbered) are drained like a recycle and not replaced.
// Answered with *ResizeResult.
type Resize struct{ Size int }

// ResizeResult answers Resize.
type ResizeResult struct{ Err error }

// GetWorkerStates asks for the lifecycle view of each worker; answered
// with *WorkerStates.
type GetWorkerStates struct{}

// WorkerStates answers GetWorkerStates.
type WorkerStates struct {
	Pool    string
	Workers []WorkerState
}

// WorkerState is one ready worker's lifecycle state.
type WorkerState struct {
	lifecycle.WorkerState
	OSPid      int
	Generation uint64
	Tainted    bool
}

// EventPublisher receives pool events (the actor system's EventStream).
type EventPublisher interface{ Publish(evt any) }

// WorkerRecycled is published when a recycled (or removed) worker stops.
type WorkerRecycled struct {
	Pool       string
	WorkerID   string
	Reason     lifecycle.Reason
	Generation uint64
	Uptime     time.Duration
	Requests   int
	RSSBytes   uint64
	Removed    bool // resized away, not replaced
}

// WorkerCrashed is published when a worker's process ends on its own.
type WorkerCrashed struct {
	Pool       string
	WorkerID   string
	Generation uint64
	Class      wk.ExitClass
	Exit       wk.ExitInfo
	Tainted    bool
}

// CircuitChanged is published when the pool's crash breaker changes state.
type CircuitChanged struct {
	Pool string
	From BreakerState
	To   BreakerState
}

type recycleJob struct {
	id       WorkerID
	reason   lifecycle.Reason
	rss      uint64
	remove   bool
	deadline time.Time
	stopping bool // TerminateChild sent
}

func (p *poolActor) publish(evt any) {
	if p.cfg.Events != nil {
		p.cfg.Events.Publish(evt)
	}
}

// onRecycle queues a recycle.
func (p *poolActor) onRecycle(ctx actor.Context, m *Recycle) {
	err := p.queueRecycle(ctx, WorkerID(m.WorkerID), m.Reason, m.RSSBytes, false)
	if ctx.Sender() != nil {
		ctx.Respond(&RecycleResult{Err: err})
	}
}

func (p *poolActor) queueRecycle(ctx actor.Context, id WorkerID, reason lifecycle.Reason, rss uint64, remove bool) error {
	w, ok := p.workers[id]
	switch {
	case p.state == StateStopping:
		return sperr.New(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name)
	case !ok:
		return sperr.New(sperr.CodeInvalidArgument, "pool %s has no worker %q", p.cfg.Name, id)
	case w.draining || p.queued(id):
		return nil // already on its way out
	}
	if reason == "" {
		reason = lifecycle.ReasonManual
	}
	p.recycles = append(p.recycles, &recycleJob{id: id, reason: reason, rss: rss, remove: remove})
	p.nextRecycle(ctx)
	return nil
}

func (p *poolActor) queued(id WorkerID) bool {
	for _, j := range p.recycles {
		if j.id == id {
			return true
		}
	}
	return false
}

// nextRecycle starts the next queued recycle when none runs.
func (p *poolActor) nextRecycle(ctx actor.Context) {
	for p.recycling == nil && len(p.recycles) > 0 && p.state != StateStopping {
		j := p.recycles[0]
		p.recycles = p.recycles[1:]
		w, ok := p.workers[j.id]
		if !ok {
			continue
		}
		p.recycling = j
		w.draining = true
		j.deadline = time.Now().Add(p.cfg.DrainTimeout)
		p.sched.SetReady(w.id, false)
		p.log.Info("recycling worker", "worker", w.id, "reason", j.reason, "remove", j.remove)
		p.checkDrain(ctx)
	}
}

// checkDrain stops the recycled worker once it has no call running (or its
// drain time is up).
func (p *poolActor) checkDrain(ctx actor.Context) {
	j := p.recycling
	if j == nil || j.stopping {
		return
	}
	w := p.workers[j.id]
	inflight, _, _ := p.sched.Load(j.id)
	if inflight > 0 && time.Now().Before(j.deadline) {
		p.rearm(ctx)
		return
	}
	j.stopping = true
	p.publish(&WorkerRecycled{Pool: p.cfg.Name, WorkerID: string(j.id), Reason: j.reason, Generation: w.generation,
		Uptime: time.Since(w.readyAt), Requests: w.requests, RSSBytes: j.rss, Removed: j.remove})
	p.stats.Recycled++
	fut := ctx.RequestFuture(p.cfg.WorkerSupervisor, &supervisors.TerminateChild{Name: string(j.id)}, w.shutdownTimeout())
	ctx.ReenterAfter(fut, func(_ any, err error) {
		if err != nil {
			p.log.Error("recycle: stopping the worker failed", "worker", j.id, "error", err)
		}
		p.afterStop(ctx, j)
	})
}

// afterStop replaces (or removes) the stopped worker.
func (p *poolActor) afterStop(ctx actor.Context, j *recycleJob) {
	w, ok := p.workers[j.id]
	if !ok {
		p.recycling = nil
		p.nextRecycle(ctx)
		return
	}
	w.exec, w.draining, w.pid = nil, false, nil
	if _, present := p.sched.workers[w.id]; present {
		_, orphaned := p.sched.RemoveWorker(w.id)
		p.failOrphans(ctx, w.id, orphaned)
	}
	if j.remove {
		delete(p.workers, j.id)
		for i, id := range p.order {
			if id == j.id {
				p.order = append(p.order[:i:i], p.order[i+1:]...)
				break
			}
		}
		p.recycling = nil
		p.nextRecycle(ctx)
		p.answerAwaiters(ctx, time.Now())
		return
	}
	// The recycle ends when the replacement is ready (or fails to start).
	p.toStart = append(p.toStart, w.id)
	p.startWorkers(ctx)
}

// recycleDone ends the running recycle of id (its replacement is up, or
// could not start).
func (p *poolActor) recycleDone(ctx actor.Context, id WorkerID) {
	if p.recycling != nil && p.recycling.id == id && p.recycling.stopping {
		p.recycling = nil
		p.nextRecycle(ctx)
	}
}

// onResize grows or shrinks the pool.
func (p *poolActor) onResize(ctx actor.Context, m *Resize) {
	var err error
	switch {
	case m.Size < 1:
		err = sperr.New(sperr.CodeInvalidArgument, "pool %s: size must be at least 1, got %d", p.cfg.Name, m.Size)
	case p.state == StateStopping:
		err = sperr.New(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name)
	default:
		p.resize(ctx, m.Size)
	}
	if ctx.Sender() != nil {
		ctx.Respond(&ResizeResult{Err: err})
	}
}

func (p *poolActor) resize(ctx actor.Context, size int) {
	// Slots being removed already do not count.
	live := make([]WorkerID, 0, len(p.order))
	for _, id := range p.order {
		if !p.removing(id) {
			live = append(live, id)
		}
	}
	p.log.Info("resizing pool", "from", len(live), "to", size)
	p.cfg.Size = size
	for i := len(live); i < size; i++ {
		p.slotSeq++
		id := WorkerID(WorkerName(p.cfg.Name, p.slotSeq))
		p.workers[id] = &workerSlot{id: id}
		p.order = append(p.order, id)
		p.toStart = append(p.toStart, id)
	}
	for i := len(live) - 1; i >= size; i-- {
		id := live[i]
		// A slot that never started is simply dropped from the start list.
		if w := p.workers[id]; w.pid == nil && !w.starting {
			p.dropSlot(id)
			continue
		}
		_ = p.queueRecycle(ctx, id, "resize", 0, true)
	}
	p.startWorkers(ctx)
}

func (p *poolActor) removing(id WorkerID) bool {
	if p.recycling != nil && p.recycling.id == id && p.recycling.remove {
		return true
	}
	for _, j := range p.recycles {
		if j.id == id && j.remove {
			return true
		}
	}
	return false
}

func (p *poolActor) dropSlot(id WorkerID) {
	delete(p.workers, id)
	for i, o := range p.order {
		if o == id {
			p.order = append(p.order[:i:i], p.order[i+1:]...)
			break
		}
	}
	for i, o := range p.toStart {
		if o == id {
			p.toStart = append(p.toStart[:i:i], p.toStart[i+1:]...)
			break
		}
	}
}

// workerStates is the lifecycle view of the ready workers.
func (p *poolActor) workerStates() *WorkerStates {
	out := &WorkerStates{Pool: p.cfg.Name}
	now := time.Now()
	for _, id := range p.order {
		w := p.workers[id]
		if w.exec == nil {
			continue
		}
		inflight, _, _ := p.sched.Load(id)
		out.Workers = append(out.Workers, WorkerState{
			WorkerState: lifecycle.WorkerState{WorkerID: string(id), StartedAt: w.readyAt, LastActive: w.lastActive,
				Requests: w.requests, MaxRequests: w.maxRequests, InFlight: inflight,
				Draining: w.draining || p.queued(id)},
			OSPid: w.osPid, Generation: w.generation, Tainted: now.Before(w.taintedUntil),
		})
	}
	return out
}

// countSuccess counts a successful call of w and recycles it at its limit.
func (p *poolActor) countSuccess(ctx actor.Context, w *workerSlot) {
	w.requests++
	w.lastActive = time.Now()
	if w.maxRequests > 0 && w.requests >= w.maxRequests && !w.draining {
		_ = p.queueRecycle(ctx, w.id, lifecycle.ReasonMaxRequests, 0, false)
	}
}

// onCrash handles a worker process that ended on its own: the breaker
// counts it, the worker may be tainted, an event is published.
func (p *poolActor) onCrash(w *workerSlot, exit wk.ExitInfo) {
	now := time.Now()
	class := wk.Classify(exit)
	tainted := p.cfg.Crash.taints(class)
	if tainted {
		w.taintedUntil = now.Add(p.cfg.Crash.TaintDuration)
	}
	before := p.breaker.State(now)
	p.breaker.Failure(now)
	p.noteBreaker(before, now)
	p.publish(&WorkerCrashed{Pool: p.cfg.Name, WorkerID: string(w.id), Generation: w.generation, Class: class, Exit: exit, Tainted: tainted})
}

func (p *poolActor) noteBreaker(before BreakerState, now time.Time) {
	if after := p.breaker.State(now); after != before {
		p.log.Warn("crash breaker", "from", before, "to", after)
		p.publish(&CircuitChanged{Pool: p.cfg.Name, From: before, To: after})
	}
}

// admit applies the breaker to a new call: nil (trial: the call is the
// half-open breaker's one trial), or the circuit_open error.
func (p *poolActor) admit(now time.Time) (e *sperr.Error, trial bool) {
	before := p.breaker.State(now)
	ok := p.breaker.Allow(now)
	p.noteBreaker(before, now)
	if ok {
		return nil, before == BreakerHalfOpen
	}
	p.stats.CircuitRejected++
	e = p.poolErr(sperr.CodeCircuitOpen, "pool %s: too many worker crashes, calls are refused for now", p.cfg.Name)
	if d := p.breaker.RetryAfter(now); d > 0 {
		e.WithDetail("retry_after_ms", fmt.Sprint(d.Milliseconds()))
	}
	return e, false
}

// untaint readies workers whose taint has expired; it returns the earliest
// taint still running (zero if none).
func (p *poolActor) untaint(ctx actor.Context, now time.Time) time.Time {
	var next time.Time
	for _, w := range p.workers {
		if w.taintedUntil.IsZero() || w.exec == nil || w.draining {
			continue
		}
		if !now.Before(w.taintedUntil) {
			w.taintedUntil = time.Time{}
			if !w.unresponsive {
				p.dispatchAll(ctx, p.sched.SetReady(w.id, true))
			}
			continue
		}
		if next.IsZero() || w.taintedUntil.Before(next) {
			next = w.taintedUntil
		}
	}
	return next
}

// reconcile restarts slots whose start failed, with backoff; it returns
// the earliest retry still ahead (zero if none).
func (p *poolActor) reconcile(ctx actor.Context, now time.Time) time.Time {
	var next time.Time
	for _, id := range p.order {
		w := p.workers[id]
		if !w.dead || w.starting || w.retryAt.IsZero() {
			continue
		}
		if now.Before(w.retryAt) {
			if next.IsZero() || w.retryAt.Before(next) {
				next = w.retryAt
			}
			continue
		}
		w.retryAt = time.Time{}
		p.log.Info("retrying a worker whose start failed", "worker", id, "after", w.backoff)
		p.restartSlot(ctx, w)
	}
	return next
}

// restartSlot stops whatever is left of a slot's worker and starts it again.
func (p *poolActor) restartSlot(ctx actor.Context, w *workerSlot) {
	w.starting = true // counted when the StartChild goes out
	fut := ctx.RequestFuture(p.cfg.WorkerSupervisor, &supervisors.TerminateChild{Name: string(w.id)}, w.shutdownTimeout())
	ctx.ReenterAfter(fut, func(any, error) {
		w.starting = false
		if _, ok := p.workers[w.id]; !ok || p.state == StateStopping {
			return
		}
		p.toStart = append(p.toStart, w.id)
		p.startWorkers(ctx)
	})
}

// shutdownTimeout is how long the pool waits for the worker supervisor to
// stop this slot's worker.
func (w *workerSlot) shutdownTimeout() time.Duration { return w.stopTimeout + wk.ReplyMargin }
