package pool

import (
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// The call path: take a request, ask the scheduler, hand dispatched calls
// to a worker's executor, answer what the pool itself holds.

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
	e, trial := p.admit(now)
	if e != nil {
		reject(e)
		return
	}
	// The caller's message is not ours to change (a local caller may reuse
	// it): the deadline is kept beside it.
	deadline := time.Unix(0, m.GetDeadlineUnixNano())
	if m.GetDeadlineUnixNano() == 0 {
		deadline = now.Add(p.cfg.ExecuteTimeout)
	}
	p.nextKey++
	key := p.nextKey
	p.pending[key] = &pending{req: m, replyTo: replyTo, trial: trial, deadline: deadline}
	if m.GetRequestId() != "" {
		p.byReqID[m.GetRequestId()] = key
	}
	p.submit(ctx, key, now)
}

// submit hands a taken request to the scheduler and acts on its decision.
func (p *poolActor) submit(ctx actor.Context, key uint64, now time.Time) {
	pd := p.pending[key]
	queueDeadline := now.Add(p.cfg.QueueTimeout)
	if pd.deadline.Before(queueDeadline) {
		queueDeadline = pd.deadline
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
		p.rearmQueue(ctx)
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
		p.log.Error("scheduler dispatched a request the pool does not hold", "key", key, "worker", id)
		p.dispatchAll(ctx, p.sched.Done(id, key))
		return
	}
	w := p.workers[id]
	var err error = wk.ErrClosed
	if w != nil && w.exec != nil {
		err = w.exec.Submit(wk.Call{Key: key, Req: pd.req, ReplyTo: pd.replyTo, Deadline: pd.deadline,
			Retryable: pd.req.GetIdempotent() && !pd.req.GetStream() && !pd.crashRetried && !p.cfg.Crash.NoRetry})
	}
	if err == nil {
		pd.worker, pd.generation = id, w.generation
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
	if !ok && m.Unanswered {
		// An idempotent call handed back by a worker of this pool's
		// predecessor (the pool restarted meanwhile): nobody else will
		// answer it.
		answerHandedBack(ctx, m, func() *sperr.Error {
			return p.poolErr(sperr.CodeWorkerExit, "the call's worker died while the pool restarted")
		})
		return
	}
	if !ok || pd.worker != WorkerID(m.WorkerID) || pd.generation != m.Generation {
		return // not a call this pool gave that worker generation (a predecessor's, or a duplicate)
	}
	w := p.workers[WorkerID(m.WorkerID)]
	current := w != nil && w.generation == m.Generation
	if m.Unanswered {
		// An idempotent call whose worker died: once more, on another worker.
		pd.crashRetried, pd.worker, pd.generation = true, "", 0
		p.stats.Retried++
		p.log.Info("retrying an idempotent call after its worker died", "worker", m.WorkerID, "error", m.Err)
		if current {
			// That generation is dead (its Down may still be on the way):
			// no new call may go to it, the retry above all.
			p.sched.SetReady(w.id, false)
			p.dispatchAll(ctx, p.sched.Done(w.id, m.Key))
		}
		p.submit(ctx, m.Key, time.Now())
		return
	}
	delete(p.pending, m.Key)
	if id := pd.req.GetRequestId(); id != "" {
		delete(p.byReqID, id)
	}
	p.stats.Completed++
	if m.Err != nil {
		p.stats.Errors++
	}
	if m.Err == nil || m.Err.Code != sperr.CodeWorkerExit {
		now := time.Now()
		before := p.breaker.State(now)
		p.breaker.Success(now) // the worker lived through the call
		p.noteBreaker(before, now)
	}
	if !current {
		return // the generation is gone; its slots went with it
	}
	if m.Err == nil {
		p.countSuccess(ctx, w)
	} else {
		w.lastActive = time.Now()
	}
	p.dispatchAll(ctx, p.sched.Done(w.id, m.Key))
	p.checkDrain(ctx) // rearms fully when a drain starts waiting
	p.rearmQueue(ctx)
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
	if pd.trial {
		p.breaker.Abandon(time.Now()) // the trial never reached a worker
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
