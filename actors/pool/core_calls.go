package pool

import (
	"strconv"
	"time"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// The call path, in the core: take a request, ask the scheduler, hand
// dispatched calls to a worker's executor (EffSubmit), answer what the pool
// itself holds (EffReply). Nothing here is proportional to the number of
// workers except the scheduler's pick.

// Execute takes a request from replyTo (nil: nowhere to answer, dropped).
func (c *core) Execute(m *poolpb.Execute, replyTo any, now time.Time) {
	c.stats.Requests++
	if replyTo == nil {
		c.log.Warn("execute without a sender: nowhere to reply, dropped", "tool", m.GetTool())
		return
	}
	reject := func(e *sperr.Error) {
		c.stats.Errors++
		c.emit(Effect{Kind: EffReply, ReplyTo: replyTo, Req: m, Err: e})
	}
	switch {
	case c.state == StateStopping:
		reject(c.poolErr(sperr.CodeShutdown, "pool %s is stopping", c.cfg.Name))
		return
	case c.state == StateInitFailed:
		reject(c.initFailedErr())
		return
	case m.GetTool() == "":
		reject(c.poolErr(sperr.CodeInvalidArgument, "tool name is empty"))
		return
	}
	if id := m.GetRequestId(); id != "" {
		if _, dup := c.byReqID[id]; dup {
			reject(c.poolErr(sperr.CodeInvalidArgument, "request id %q is already in use", id))
			return
		}
	}
	e, trial := c.admit(now)
	if e != nil {
		reject(e)
		return
	}
	// The caller's message is not ours to change (a local caller may reuse
	// it): the deadline is kept beside it.
	deadline := time.Unix(0, m.GetDeadlineUnixNano())
	if m.GetDeadlineUnixNano() == 0 {
		deadline = now.Add(c.cfg.ExecuteTimeout)
		if m.GetStream() {
			deadline = now.Add(c.cfg.StreamTimeout)
		}
	}
	c.nextKey++
	key := c.nextKey
	c.pending[key] = &pending{req: m, replyTo: replyTo, trial: trial, deadline: deadline, takenAt: now}
	if id := m.GetRequestId(); id != "" {
		c.byReqID[id] = key
	}
	c.submit(key, now)
}

// submit hands a taken request to the scheduler and acts on its decision.
func (c *core) submit(key uint64, now time.Time) {
	pd := c.pending[key]
	qt := c.cfg.QueueTimeout
	if ms := pd.req.GetQueueTimeoutMs(); ms > 0 {
		qt = time.Duration(ms) * time.Millisecond
	}
	queueDeadline := now.Add(qt)
	if pd.deadline.Before(queueDeadline) {
		queueDeadline = pd.deadline
	}
	aff := c.cfg.Affinity
	if a := pd.req.GetAffinity(); a != poolpb.Affinity_AFFINITY_DEFAULT {
		aff = Affinity(a - 1)
	}
	d := c.sched.Submit(Request{ID: key, Deadline: queueDeadline, SessionID: pd.req.GetSessionId(), Affinity: aff}, now)
	switch d.Verdict {
	case Dispatched:
		c.dispatch(key, d.Worker)
	case Queued:
		c.rearmQueue()
		if c.callEvents() {
			c.publish(&CallQueued{Pool: c.cfg.Name, RequestID: pd.req.GetRequestId(), Tool: pd.req.GetTool()})
		}
	case RejectedSaturated:
		c.stats.PoolSaturated++
		st := c.sched.Stats()
		c.publish(&QueueSaturated{Pool: c.cfg.Name, Queued: st.Queued, MaxQueue: c.cfg.MaxQueue})
		e := c.poolErr(sperr.CodePoolSaturated, "pool %s is saturated: %d calls queued", c.cfg.Name, st.Queued)
		e.WithDetail("queue_size", strconv.Itoa(st.Queued)).WithDetail("max_queue_size", strconv.Itoa(c.cfg.MaxQueue))
		c.fail(key, now, e)
	case RejectedExpired:
		c.stats.QueueTimeouts++
		c.fail(key, now, c.poolErr(sperr.CodeQueueTimeout, "deadline passed before a worker was free"))
	case RejectedWorkerBusy:
		c.fail(key, now, c.poolErr(sperr.CodeWorkerBusy, "the session's worker is busy"))
	case RejectedSessionWorkerUnavailable:
		c.fail(key, now, c.poolErr(sperr.CodeSessionWorkerUnavailable, "the session's worker is unavailable"))
	default:
		c.fail(key, now, c.poolErr(sperr.CodeInternal, "scheduler refused the request: %s", d.Verdict))
	}
}

func (c *core) dispatchAll(ds []Dispatch) {
	for _, d := range ds {
		c.dispatch(d.Req.ID, d.Worker)
	}
}

// dispatch gives a request that holds a slot on worker id to its executor.
func (c *core) dispatch(key uint64, id WorkerID) {
	pd, ok := c.pending[key]
	s := c.slots[id]
	if !ok || s == nil || !s.live {
		// The scheduler only holds live workers and taken requests.
		c.log.Error("scheduler dispatched what the pool does not hold", "key", key, "worker", id)
		c.dispatchAll(c.sched.Done(id, key))
		return
	}
	pd.worker, pd.generation = id, s.gen
	if c.callEvents() {
		c.publish(&CallDispatched{Pool: c.cfg.Name, RequestID: pd.req.GetRequestId(), Tool: pd.req.GetTool(),
			WorkerID: string(id), Waited: time.Since(pd.takenAt)})
	}
	c.emit(Effect{Kind: EffSubmit, Key: key, Worker: id, Generation: s.gen, Exec: s.exec, Req: pd.req,
		ReplyTo: pd.replyTo, At: pd.deadline,
		Retryable: pd.req.GetIdempotent() && !pd.req.GetStream() && !pd.crashRetried && !c.cfg.Crash.NoRetry})
}

// OnSubmitFailed: the executor of worker id, generation gen, refused call
// key (it has just stopped taking calls; its Down follows). The call is
// given back to the scheduler once.
func (c *core) OnSubmitFailed(key uint64, id WorkerID, gen uint64, err error, now time.Time) {
	pd, ok := c.pending[key]
	if !ok || pd.worker != id || pd.generation != gen {
		return
	}
	pd.worker, pd.generation = "", 0
	if s := c.slots[id]; s != nil && s.live && s.gen == gen {
		// Closed first, so the freed slot is not handed the next queued
		// request on the same closed worker.
		s.closed = true
		c.sync(s, now)
	}
	freed := c.sched.Done(id, key)
	if pd.retried {
		c.fail(key, now, c.poolErr(sperr.CodeNoWorkers, "no worker could take the call: %v", err))
	} else {
		pd.retried = true
		c.submit(key, now)
	}
	c.dispatchAll(freed)
}

// OnCallDone: a worker's executor finished call m.Key (it answered the
// caller), or handed it back unanswered (an idempotent call whose worker
// died).
func (c *core) OnCallDone(m *wk.CallDone, now time.Time) {
	pd, ok := c.pending[m.Key]
	if !ok && m.Unanswered {
		// An idempotent call handed back by a worker of this pool's
		// predecessor (the pool restarted meanwhile): nobody else will
		// answer it.
		c.answerHandedBack(m, c.poolErr(sperr.CodeWorkerExit, "the call's worker died while the pool restarted"))
		return
	}
	id := WorkerID(m.WorkerID)
	if !ok || pd.worker != id || pd.generation != m.Generation {
		return // not a call this pool gave that worker generation (a predecessor's, or a duplicate)
	}
	s := c.slots[id]
	current := s != nil && s.live && s.gen == m.Generation
	if m.Unanswered && c.state == StateStopping {
		// Too late to run it again: the worker's error is the answer.
		e := m.Err
		if e == nil {
			e = c.poolErr(sperr.CodeShutdown, "pool %s is stopping", c.cfg.Name)
		}
		c.fail(m.Key, now, e)
		return
	}
	if m.Unanswered {
		// An idempotent call whose worker died: once more, on another worker.
		pd.crashRetried, pd.worker, pd.generation = true, "", 0
		c.stats.Retried++
		c.log.Info("retrying an idempotent call after its worker died", "worker", id, "tool", pd.req.GetTool(),
			"correlation_id", pd.req.GetCorrelationId(), "error", m.Err)
		if current {
			// That generation is dead (its Down may still be on the way):
			// no new call may go to it, the retry above all.
			s.closed = true
			c.sync(s, now)
			c.dispatchAll(c.sched.Done(id, m.Key))
		}
		c.submit(m.Key, now)
		return
	}
	c.forget(m.Key, pd)
	c.stats.Completed++
	if c.callEvents() {
		code := ""
		if m.Err != nil {
			code = m.Err.Code
		}
		c.publish(&CallDone{Pool: c.cfg.Name, RequestID: pd.req.GetRequestId(), Tool: pd.req.GetTool(),
			WorkerID: string(id), Code: code, Duration: now.Sub(pd.takenAt)})
	}
	if m.Err != nil {
		c.stats.Errors++
	}
	if m.Err == nil || m.Err.Code != sperr.CodeWorkerExit {
		before := c.breaker.State(now)
		c.breaker.Success(now) // the worker lived through the call
		c.noteBreaker(before, now)
	}
	if !current {
		return // the generation is gone; its slots went with it
	}
	if m.Err == nil {
		c.countSuccess(s, now)
	} else {
		s.lastActive = now
	}
	c.dispatchAll(c.sched.Done(id, m.Key))
	c.checkDrain(now)
	c.rearmQueue()
}

// answerHandedBack answers an idempotent call its dying worker handed back
// to a pool that cannot run it again, with the worker's error, else orElse.
func (c *core) answerHandedBack(m *wk.CallDone, orElse *sperr.Error) {
	to := m.Caller()
	if to == nil {
		return
	}
	e := m.Err
	if e == nil {
		e = orElse
	}
	c.emit(Effect{Kind: EffReply, ReplyTo: to, Req: &poolpb.Execute{RequestId: m.RequestID}, Err: e})
}

// Cancel withdraws the request with this request id: a queued one is
// answered cancelled, a running one is cancelled on its worker.
func (c *core) Cancel(requestID string, now time.Time) {
	key, ok := c.byReqID[requestID]
	if !ok {
		return
	}
	r := c.sched.Cancel(key)
	switch r.Outcome {
	case CancelledQueued:
		c.stats.Cancelled++
		c.fail(key, now, c.poolErr(sperr.CodeCancelled, "cancelled while queued"))
	case CancelledRunning:
		c.stats.Cancelled++
		if s := c.slots[r.Worker]; s != nil && s.live {
			c.emit(Effect{Kind: EffCancel, Key: key, Worker: s.id, Exec: s.exec})
		}
	}
}

// Credit passes a streaming call's flow-control credit (poolpb.StreamCredit)
// to the worker running it; a call not running (queued, or answered
// already) has nothing to credit.
func (c *core) Credit(requestID string, chunks uint32) {
	key, ok := c.byReqID[requestID]
	if !ok || chunks == 0 {
		return
	}
	pd := c.pending[key]
	if pd == nil || pd.worker == "" {
		return
	}
	if s := c.slots[pd.worker]; s != nil && s.live && s.gen == pd.generation {
		c.emit(Effect{Kind: EffCredit, Key: key, Worker: s.id, Exec: s.exec, Credits: chunks})
	}
}

// fail answers a taken request with e and forgets it.
func (c *core) fail(key uint64, now time.Time, e *sperr.Error) {
	pd, ok := c.pending[key]
	if !ok {
		return
	}
	c.forget(key, pd)
	if pd.trial {
		c.breaker.Abandon(now) // the trial never reached a worker
	}
	c.stats.Errors++
	if c.callEvents() {
		c.publish(&CallDone{Pool: c.cfg.Name, RequestID: pd.req.GetRequestId(), Tool: pd.req.GetTool(),
			Code: e.Code, Duration: now.Sub(pd.takenAt)})
	}
	c.emit(Effect{Kind: EffReply, ReplyTo: pd.replyTo, Req: pd.req, Err: e})
}

func (c *core) forget(key uint64, pd *pending) {
	delete(c.pending, key)
	if id := pd.req.GetRequestId(); id != "" {
		delete(c.byReqID, id)
	}
}
