package pool

import (
	"fmt"
	"slices"
	"time"
)

// WorkerID names a worker in a pool.
type WorkerID string

// Request is a call waiting for or holding a slot. The scheduler only reads
// ID, Deadline, SessionID and Affinity; Payload is opaque to it and comes back
// unchanged in every Dispatch, expiry, cancellation, drain or orphan report.
type Request struct {
	// ID identifies the request; it must be unique among the requests the
	// scheduler holds (queued or running).
	ID uint64
	// Deadline is when the request stops waiting in the queue; the zero
	// value means no deadline. It does not bound a running call.
	Deadline time.Time
	// SessionID names the session the request belongs to; "" means none.
	SessionID string
	// Affinity says how strictly the request sticks to its session's worker.
	// It is ignored when SessionID is "".
	Affinity Affinity
	// Payload is carried along for the caller (reply address, arguments).
	Payload any
}

// Affinity says how a session's request treats the worker its session is
// bound to.
type Affinity int

const (
	// AffinityHint prefers the session's worker when it is ready with a free
	// slot and otherwise takes any worker, like a request without a session.
	AffinityHint Affinity = iota
	// AffinityStrictQueue runs only on the session's worker, waiting in the
	// queue while that worker is busy.
	AffinityStrictQueue
	// AffinityStrictFailFast runs only on the session's worker and is
	// rejected with RejectedWorkerBusy when that worker is busy.
	AffinityStrictFailFast
)

// String returns the snake_case name used in upstream Snakepit's options.
func (a Affinity) String() string {
	switch a {
	case AffinityHint:
		return "hint"
	case AffinityStrictQueue:
		return "strict_queue"
	case AffinityStrictFailFast:
		return "strict_fail_fast"
	}
	return fmt.Sprintf("Affinity(%d)", int(a))
}

// strict reports whether a is one of the strict modes.
func (a Affinity) strict() bool {
	return a == AffinityStrictQueue || a == AffinityStrictFailFast
}

// Verdict is the outcome of Submit. The zero value is not a valid verdict.
type Verdict int

const (
	// Dispatched: the request was given a slot on Decision.Worker.
	Dispatched Verdict = iota + 1
	// Queued: the request waits in the queue; it will later come out of
	// exactly one of SetReady, Done, BindSession, UnbindSession (dispatched),
	// Expire, Cancel, Drain or RemoveWorker (orphaned).
	Queued
	// RejectedSaturated: no slot was free and the queue holds maxQueue
	// requests (the caller answers pool_saturated).
	RejectedSaturated
	// RejectedWorkerBusy: an AffinityStrictFailFast request whose session's
	// worker has no free slot (the caller answers worker_busy).
	RejectedWorkerBusy
	// RejectedSessionWorkerUnavailable: a strict request whose session's
	// worker was removed or is not ready (the caller answers
	// session_worker_unavailable).
	RejectedSessionWorkerUnavailable
	// RejectedExpired: the request's deadline was at or before now when it
	// was submitted (the caller answers queue_timeout).
	RejectedExpired
	// RejectedDuplicate: a request with the same ID is already queued or
	// running; the new one is not taken (a bug in the caller).
	RejectedDuplicate
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case Dispatched:
		return "dispatched"
	case Queued:
		return "queued"
	case RejectedSaturated:
		return "rejected_saturated"
	case RejectedWorkerBusy:
		return "rejected_worker_busy"
	case RejectedSessionWorkerUnavailable:
		return "rejected_session_worker_unavailable"
	case RejectedExpired:
		return "rejected_expired"
	case RejectedDuplicate:
		return "rejected_duplicate"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Rejected reports whether v is one of the Rejected verdicts: the request was
// not taken and the caller must answer it now.
func (v Verdict) Rejected() bool {
	return v >= RejectedSaturated && v <= RejectedDuplicate
}

// Decision is what Submit decided for one request.
type Decision struct {
	// Verdict is the outcome.
	Verdict Verdict
	// Worker is the worker the request was given to, when Verdict is
	// Dispatched.
	Worker WorkerID
}

// Dispatch pairs a request with the worker it was given to. The caller sends
// the request to the worker and later reports its end with Done.
type Dispatch struct {
	// Req is the request, as submitted.
	Req Request
	// Worker is the worker holding a slot for it.
	Worker WorkerID
}

// CancelOutcome says where Cancel found a request.
type CancelOutcome int

const (
	// CancelNotFound: the request is neither queued nor running (unknown, or
	// already finished, expired, drained, orphaned or cancelled).
	CancelNotFound CancelOutcome = iota
	// CancelledQueued: the request was queued and has been removed; it
	// will not come out of the scheduler again.
	CancelledQueued
	// CancelledRunning: the request is running on CancelResult.Worker. The
	// scheduler does not touch it; the caller cancels the call, and the slot
	// is freed only when the caller reports Done.
	CancelledRunning
)

// String returns the outcome's name.
func (o CancelOutcome) String() string {
	switch o {
	case CancelNotFound:
		return "not_found"
	case CancelledQueued:
		return "cancelled_queued"
	case CancelledRunning:
		return "cancelled_running"
	}
	return fmt.Sprintf("CancelOutcome(%d)", int(o))
}

// CancelResult is what Cancel found.
type CancelResult struct {
	// Outcome says where the request was.
	Outcome CancelOutcome
	// Worker is the worker running the request, for CancelledRunning.
	Worker WorkerID
	// Req is the request, for CancelledQueued and CancelledRunning.
	Req Request
}

// Stats is a snapshot of the scheduler's counters.
type Stats struct {
	// Workers is the number of workers added and not removed.
	Workers int
	// Ready is the number of those workers marked ready.
	Ready int
	// Available is the number of ready workers with at least one free slot.
	Available int
	// Busy is the number of ready workers with no free slot.
	Busy int
	// InFlight is the number of running requests, on any worker (ready or
	// not).
	InFlight int
	// Queued is the number of requests waiting in the queue.
	Queued int
	// Capacity is the sum of the capacities of the ready workers.
	Capacity int
}

// worker is the scheduler's view of one worker. A removed worker keeps its
// struct (with removed set) as long as a session binding points at it, so a
// strict session can tell "my worker is gone" from "I have no worker yet"; a
// worker added again under the same id is a new struct.
type worker struct {
	id       WorkerID
	capacity int
	inflight int
	ready    bool
	removed  bool
}

func (w *worker) hasFreeSlot() bool { return w.ready && !w.removed && w.inflight < w.capacity }

// running is a request holding a slot.
type running struct {
	req Request
	w   *worker
}

// Scheduler holds a pool's scheduling state and makes its decisions: which
// worker runs a request, which request waits, expires or is dropped. It is a
// pure value: no goroutines, no I/O, no clock (time is an argument). Every
// method that can start requests returns them as Dispatches for the caller to
// send. It is not safe for concurrent use.
//
// Rules:
//
//   - Pick: a request without session constraints goes to the ready worker
//     with a free slot and the lowest inflight/capacity ratio; ties go to the
//     worker added first (deterministic, not round-robin).
//   - Session affinity: a session is bound to the first worker that runs one
//     of its requests (or by BindSession). AffinityHint prefers that worker
//     when it has a free slot, else picks as above. The strict modes run only
//     there; when it is busy AffinityStrictQueue waits and
//     AffinityStrictFailFast is rejected; when it is removed or not ready
//     both are rejected with RejectedSessionWorkerUnavailable. A session
//     without a binding (or whose worker is gone, for AffinityHint) picks as
//     above and binds to the worker it gets.
//   - Queue: a request that cannot run now waits, FIFO, bounded by maxQueue
//     (full: RejectedSaturated), also when no worker is ready yet.
//   - Fairness: when a worker gets a free slot (SetReady, Done, BindSession,
//     UnbindSession) it takes the oldest queued requests it may run, skipping
//     strict requests bound to other workers, so those never block the queue.
//     The scheduler keeps the invariant that no ready worker with a free slot
//     has a queued request it may run; therefore a new request that finds a
//     free slot never overtakes a queued request that could use that slot.
//   - Exactly once: every request the scheduler took (Dispatched or Queued)
//     comes out exactly once: dispatched (from Submit, SetReady, Done,
//     BindSession or UnbindSession), expired, cancelled while queued,
//     drained or orphaned; running requests leave through Done or
//     RemoveWorker.
//
// Cost: Submit is O(workers); Done, SetReady and BindSession are O(1) plus
// the queued requests they skip (strict requests bound elsewhere); Cancel is
// O(1); Expire is O(expired · log queue); RemoveWorker is O(workers + in-flight
// + queue); UnbindSession is O(workers · queue) at worst; Drain and Stats are
// linear. A request with a deadline adds O(log queue) to its enqueue and
// dequeue.
type Scheduler struct {
	maxQueue int
	workers  map[WorkerID]*worker
	order    []*worker // live workers in AddWorker order: the tie-break
	sessions map[string]*worker
	running  map[uint64]running
	q        *queue
}

// NewScheduler returns an empty scheduler whose queue holds at most maxQueue
// requests. maxQueue 0 means no queueing: a request that finds no slot is
// rejected as saturated. It panics if maxQueue is negative.
func NewScheduler(maxQueue int) *Scheduler {
	if maxQueue < 0 {
		panic(fmt.Sprintf("pool: NewScheduler: negative maxQueue %d", maxQueue))
	}
	return &Scheduler{
		maxQueue: maxQueue,
		workers:  make(map[WorkerID]*worker),
		sessions: make(map[string]*worker),
		running:  make(map[uint64]running),
		q:        newQueue(),
	}
}

// AddWorker adds a worker with capacity concurrent slots (1 for the process
// profile, N for the thread profile). The worker starts not ready; SetReady
// makes it eligible. It panics if capacity < 1 or a worker with this id is
// already present (ids are the caller's to keep unique).
func (s *Scheduler) AddWorker(id WorkerID, capacity int) {
	if capacity < 1 {
		panic(fmt.Sprintf("pool: AddWorker(%q): capacity %d < 1", id, capacity))
	}
	if _, ok := s.workers[id]; ok {
		panic(fmt.Sprintf("pool: AddWorker(%q): worker already present", id))
	}
	w := &worker{id: id, capacity: capacity}
	s.workers[id] = w
	s.order = append(s.order, w)
}

// SetReady marks a worker ready or not ready. A worker that becomes ready
// with free slots takes the oldest queued requests it may run; they are
// returned in dispatch order. A worker marked not ready keeps its running
// requests (Done still frees their slots) but gets no new ones. Unknown ids
// are ignored.
func (s *Scheduler) SetReady(id WorkerID, ready bool) []Dispatch {
	w, ok := s.workers[id]
	if !ok {
		return nil
	}
	w.ready = ready
	if !ready {
		return nil
	}
	return s.fill(w, nil)
}

// RemoveWorker forgets a worker that is gone. It returns the ids of the
// requests that were running on it (sorted; the caller fails them) and
// removes from the queue, in FIFO order, the strict requests that could only
// run on it (orphaned; the caller fails them with session_worker_unavailable).
//
// Sessions bound to the worker stay bound to a worker that is gone: their
// strict requests are rejected with RejectedSessionWorkerUnavailable until
// BindSession or UnbindSession changes the binding, and their AffinityHint
// requests run anywhere and rebind the session. Unknown ids are ignored.
func (s *Scheduler) RemoveWorker(id WorkerID) (inflight []uint64, orphaned []Request) {
	w, ok := s.workers[id]
	if !ok {
		return nil, nil
	}
	w.removed = true
	w.ready = false
	delete(s.workers, id)
	s.order = slices.DeleteFunc(s.order, func(o *worker) bool { return o == w })

	if w.inflight > 0 {
		for rid, r := range s.running {
			if r.w == w {
				inflight = append(inflight, rid)
				delete(s.running, rid)
			}
		}
		slices.Sort(inflight)
		w.inflight = 0
	}

	for e := s.q.front(); e != nil; {
		next := e.next
		if e.req.Affinity.strict() && e.req.SessionID != "" && s.sessions[e.req.SessionID] == w {
			orphaned = append(orphaned, s.q.remove(e))
		}
		e = next
	}
	return inflight, orphaned
}

// Submit decides what happens to a new request at time now: it is dispatched
// to a worker, queued, or rejected (see Verdict and the rules on Scheduler).
func (s *Scheduler) Submit(req Request, now time.Time) Decision {
	if !req.Deadline.IsZero() && !req.Deadline.After(now) {
		return Decision{Verdict: RejectedExpired}
	}
	if _, ok := s.running[req.ID]; ok || s.q.has(req.ID) {
		return Decision{Verdict: RejectedDuplicate}
	}

	var bound *worker
	if req.SessionID != "" {
		bound = s.sessions[req.SessionID]
	}

	var target *worker
	switch {
	case bound != nil && req.Affinity.strict():
		if bound.removed || !bound.ready {
			return Decision{Verdict: RejectedSessionWorkerUnavailable}
		}
		if bound.hasFreeSlot() {
			target = bound
		} else if req.Affinity == AffinityStrictFailFast {
			return Decision{Verdict: RejectedWorkerBusy}
		}
	case bound != nil && bound.hasFreeSlot():
		target = bound // AffinityHint on its session's worker
	default:
		target = s.leastLoaded()
	}

	// By the fill invariant, no queued request may run on target, so taking
	// its free slot overtakes nobody.
	if target != nil {
		s.start(req, target)
		return Decision{Verdict: Dispatched, Worker: target.id}
	}
	if s.q.len() >= s.maxQueue {
		return Decision{Verdict: RejectedSaturated}
	}
	s.q.push(req)
	return Decision{Verdict: Queued}
}

// Done reports that a request running on a worker has finished (success,
// error or cancellation), freeing its slot. The worker, if ready, then takes
// the oldest queued requests it may run; they are returned. A request id that
// is not running on that worker is ignored, so Done is idempotent.
func (s *Scheduler) Done(id WorkerID, reqID uint64) []Dispatch {
	r, ok := s.running[reqID]
	if !ok || r.w.id != id || r.w.removed {
		return nil
	}
	delete(s.running, reqID)
	r.w.inflight--
	return s.fill(r.w, nil)
}

// Cancel withdraws a request. A queued request is removed
// (CancelledQueued). A running request is reported with its worker
// (CancelledRunning) and left alone: the caller cancels the call and reports
// Done. Anything else is CancelNotFound.
func (s *Scheduler) Cancel(reqID uint64) CancelResult {
	if e := s.q.get(reqID); e != nil {
		return CancelResult{Outcome: CancelledQueued, Req: s.q.remove(e)}
	}
	if r, ok := s.running[reqID]; ok {
		return CancelResult{Outcome: CancelledRunning, Worker: r.w.id, Req: r.req}
	}
	return CancelResult{Outcome: CancelNotFound}
}

// Expire removes and returns, in queue order, every queued request whose
// deadline is at or before now. A request is returned by Expire at most once,
// and a request that left the queue is never returned.
func (s *Scheduler) Expire(now time.Time) []Request {
	return s.q.expire(now)
}

// NextDeadline returns the earliest deadline among queued requests, for the
// caller's timer; ok is false when no queued request has a deadline.
func (s *Scheduler) NextDeadline() (deadline time.Time, ok bool) {
	return s.q.nextDeadline()
}

// Drain removes and returns every queued request in FIFO order (the pool is
// stopping). Running requests and workers are untouched.
func (s *Scheduler) Drain() []Request {
	return s.q.drain()
}

// BindSession binds a session to a worker, replacing any previous binding.
// If the worker is ready with free slots it takes the oldest queued requests
// it may now run; they are returned. ok is false, and nothing changes, when
// sessionID is "" or no worker with this id is present.
//
// Sessions are also bound automatically: when a request with a SessionID is
// dispatched and its session has no binding, or is bound to a worker that is
// gone, the session is bound to the worker that got the request.
func (s *Scheduler) BindSession(sessionID string, id WorkerID) (dispatched []Dispatch, ok bool) {
	w, ok := s.workers[id]
	if !ok || sessionID == "" {
		return nil, false
	}
	s.sessions[sessionID] = w
	return s.fill(w, nil), true
}

// UnbindSession drops a session's binding (the session ended). Its strict
// requests still queued may then run on any worker; any that do are returned.
// Unknown sessions are ignored.
func (s *Scheduler) UnbindSession(sessionID string) []Dispatch {
	if _, ok := s.sessions[sessionID]; !ok {
		return nil
	}
	delete(s.sessions, sessionID)
	var out []Dispatch
	for _, w := range s.order {
		out = s.fill(w, out)
	}
	return out
}

// SessionWorker returns the worker a session is bound to; gone is true when
// that worker has been removed. ok is false when the session has no binding.
func (s *Scheduler) SessionWorker(sessionID string) (id WorkerID, gone, ok bool) {
	w, ok := s.sessions[sessionID]
	if !ok {
		return "", false, false
	}
	return w.id, w.removed, true
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	st := Stats{
		Workers:  len(s.order),
		InFlight: len(s.running),
		Queued:   s.q.len(),
	}
	for _, w := range s.order {
		if !w.ready {
			continue
		}
		st.Ready++
		st.Capacity += w.capacity
		if w.inflight < w.capacity {
			st.Available++
		} else {
			st.Busy++
		}
	}
	return st
}

// Load returns a worker's running requests and capacity; ok is false for an
// unknown worker.
func (s *Scheduler) Load(id WorkerID) (inflight, capacity int, ok bool) {
	w, ok := s.workers[id]
	if !ok {
		return 0, 0, false
	}
	return w.inflight, w.capacity, true
}

// leastLoaded returns the ready worker with a free slot and the lowest
// inflight/capacity ratio, the earliest added on ties, or nil.
func (s *Scheduler) leastLoaded() *worker {
	var best *worker
	for _, w := range s.order {
		if !w.hasFreeSlot() {
			continue
		}
		if best == nil || w.inflight*best.capacity < best.inflight*w.capacity {
			best = w
		}
	}
	return best
}

// eligible reports whether a queued request may run on w.
func (s *Scheduler) eligible(req *Request, w *worker) bool {
	if req.SessionID == "" || !req.Affinity.strict() {
		return true
	}
	b, ok := s.sessions[req.SessionID]
	return !ok || b == w
}

// fill gives w's free slots to the oldest queued requests it may run,
// appending the dispatches to out.
func (s *Scheduler) fill(w *worker, out []Dispatch) []Dispatch {
	for e := s.q.front(); e != nil && w.hasFreeSlot(); {
		next := e.next
		if s.eligible(&e.req, w) {
			req := s.q.remove(e)
			s.start(req, w)
			out = append(out, Dispatch{Req: req, Worker: w.id})
		}
		e = next
	}
	return out
}

// start gives req a slot on w and binds its session if needed.
func (s *Scheduler) start(req Request, w *worker) {
	w.inflight++
	s.running[req.ID] = running{req: req, w: w}
	if req.SessionID != "" {
		if b, ok := s.sessions[req.SessionID]; !ok || b.removed {
			s.sessions[req.SessionID] = w
		}
	}
}
