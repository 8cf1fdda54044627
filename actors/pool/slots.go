package pool

import (
	"time"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
)

// SlotState is where one worker slot of a pool is. A slot is a worker's
// place in the pool; its worker actor and Python process come and go by
// generation.
//
//	queued ──start permit──▶ starting ──Ready──▶ ready ──recycle/remove──▶ draining
//	   ▲                       │   ▲               │                          │ no call left
//	   │                       │   └──Ready────────┤ Down (crash)             ▼
//	   │                       │     restarting ◀──┘                       stopping
//	   │            StartFailed│(actor exited)                                │ stopped
//	   │                       ▼                                              ▼
//	   └──stopped── stopping ◀─ dead (retry at backoff)          queued (recycle) or gone (remove)
type SlotState uint8

// The slot states.
const (
	// SlotQueued: waiting for a start permit (StartupConcurrency).
	SlotQueued SlotState = iota
	// SlotStarting: its worker was started under a permit; not ready yet.
	SlotStarting
	// SlotReady: a generation serves calls (unless tainted or unresponsive).
	SlotReady
	// SlotRestarting: its process ended on its own (or its replacement's
	// start failed); the worker supervisor starts a new generation.
	SlotRestarting
	// SlotDraining: chosen for a recycle or removal: takes no new call and
	// finishes its running ones, up to DrainTimeout.
	SlotDraining
	// SlotStopping: its worker is being stopped (a recycle, a removal, or
	// the clean-up before a dead slot is tried again).
	SlotStopping
	// SlotDead: its first start failed and its actor exited; the pool tries
	// again at retryAt (backoff doubling up to 30s).
	SlotDead
)

var slotStateNames = [...]string{"queued", "starting", "ready", "restarting", "draining", "stopping", "dead"}

func (s SlotState) String() string {
	if int(s) < len(slotStateNames) {
		return slotStateNames[s]
	}
	return "unknown"
}

// stopFor says what follows when a slot's stop completes.
type stopFor uint8

const (
	stopForRecycle stopFor = iota + 1
	stopForRetry
)

// slot is the pool's view of one worker.
type slot struct {
	id    WorkerID
	state SlotState
	// gen is the newest generation heard of; live is true while it serves
	// (between its Ready and its Down or stop), and then exec is its
	// executor and the scheduler knows the worker.
	gen  uint64
	live bool
	exec *wk.Executor
	// closed: the live generation refused a call or lost one to its death;
	// its Down is on the way. No new call until then.
	closed bool
	// unresponsive: it did not answer a liveness probe; no new call until
	// it does.
	unresponsive bool
	taintedUntil time.Time // kept out of dispatch until then after a crash
	startedOK    bool      // reached ready at least once
	failed       bool      // its first start failed (and none has succeeded)
	stopFor      stopFor
	retryAt      time.Time
	backoff      time.Duration

	// The live generation's lifecycle counters.
	readyAt     time.Time
	lastActive  time.Time
	requests    int // successful calls
	maxRequests int // this generation's limit (with jitter), 0 = none
	osPid       int
}

func (s *slot) tainted(now time.Time) bool { return now.Before(s.taintedUntil) }

// dispatchable is the one rule for whether a slot may get a new call.
func (s *slot) dispatchable(now time.Time) bool {
	return s.state == SlotReady && s.live && !s.closed && !s.unresponsive && !s.tainted(now)
}

// wakeAt is when the slot next needs the timer: its taint ending, or its
// retry (zero if neither).
func (s *slot) wakeAt() time.Time {
	switch {
	case s.state == SlotReady && s.live && !s.taintedUntil.IsZero():
		return s.taintedUntil
	case s.state == SlotDead:
		return s.retryAt
	}
	return time.Time{}
}

func (c *core) addSlot(id WorkerID) *slot {
	s := &slot{id: id}
	c.slots[id] = s
	c.order = append(c.order, id)
	c.toStart = append(c.toStart, id)
	return s
}

// sync makes the scheduler's readiness of s what its slot says, and
// dispatches what that frees.
func (c *core) sync(s *slot, now time.Time) {
	if s.live {
		c.dispatchAll(c.sched.SetReady(s.id, s.dispatchable(now)))
	}
}

// endGeneration ends the live generation of s, once: the scheduler forgets
// the worker, and its strict session requests still queued fail (their
// running calls are answered by the worker's executor).
func (c *core) endGeneration(s *slot, now time.Time) {
	if !s.live {
		return
	}
	s.live, s.exec, s.closed, s.unresponsive = false, nil, false, false
	_, orphaned := c.sched.RemoveWorker(s.id)
	for _, r := range orphaned {
		c.fail(r.ID, now, c.poolErr(sperr.CodeSessionWorkerUnavailable, "the session's worker %s is gone", s.id))
	}
}

// startSlots starts queued slots while permits are free.
func (c *core) startSlots() {
	for c.starting < c.cfg.StartupConcurrency && len(c.toStart) > 0 && c.state != StateStopping {
		s := c.slots[c.toStart[0]]
		c.toStart = c.toStart[1:]
		s.state = SlotStarting
		c.starting++
		c.emit(Effect{Kind: EffStart, Worker: s.id})
		c.publish(&WorkerStarting{Pool: c.cfg.Name, WorkerID: string(s.id)})
	}
}

// releasePermit ends the start of s (ready, failed or stopped).
func (c *core) releasePermit(s *slot) {
	if s.state == SlotStarting {
		c.starting--
	}
}

// OnReady: a generation of worker id answers; calls may go to exec.
func (c *core) OnReady(id WorkerID, gen uint64, capacity, osPid int, exec *wk.Executor, now time.Time) {
	s, ok := c.slots[id]
	if !ok || c.state == StateStopping || gen <= s.gen && s.gen != 0 {
		return // unknown, stopping, or stale
	}
	switch s.state {
	case SlotQueued, SlotDead:
		return // no worker of this slot is running: a predecessor's
	}
	// A new generation replaces the old one (whose Down may not have
	// arrived).
	c.endGeneration(s, now)
	if s.startedOK {
		c.stats.WorkerRestarts++
	}
	c.releasePermit(s)
	c.startSlots()
	s.gen, s.live, s.exec, s.startedOK, s.failed = gen, true, exec, true, false
	s.backoff, s.retryAt = 0, time.Time{}
	s.readyAt, s.lastActive, s.requests, s.osPid = now, now, 0, osPid
	s.maxRequests = lifecycle.RequestLimit(c.cfg.MaxRequests, c.cfg.MaxRequestsJitter, nil)
	if s.state == SlotStarting || s.state == SlotRestarting {
		s.state = SlotReady // a draining or stopping slot stays so
	}
	c.sched.AddWorker(id, capacity)
	if c.state == StateStarting || c.state == StateInitFailed {
		c.state = StateReady
		c.log.Info("pool ready", "first_worker", id)
	}
	if s.tainted(now) {
		c.log.Warn("worker tainted after a crash: kept out of dispatch", "worker", id, "until", s.taintedUntil)
	} else {
		s.taintedUntil = time.Time{}
	}
	c.publish(&WorkerReady{Pool: c.cfg.Name, WorkerID: string(id), Generation: gen, OSPid: osPid})
	c.sync(s, now)
	c.replaced(s, now)
	c.checkDrain(now)
	c.checkInitComplete()
	c.answerAwaiters(now)
	c.rearm()
}

// OnResponsive: the live generation answers its liveness probe again (ok)
// or stopped answering it.
func (c *core) OnResponsive(id WorkerID, gen uint64, ok bool, reason string, now time.Time) {
	s, found := c.slots[id]
	if !found || s.gen != gen || !s.live || s.unresponsive == !ok {
		return
	}
	s.unresponsive = !ok
	if !ok {
		c.log.Warn("worker unresponsive: no new calls until it answers", "worker", id, "reason", reason)
	}
	c.sync(s, now)
}

// OnDown: generation gen of worker id is gone. Planned: the host stopped
// it; otherwise its process ended on its own (a crash): the breaker counts
// it, it may be tainted, and its supervisor starts the next generation.
func (c *core) OnDown(id WorkerID, gen uint64, planned bool, exit wk.ExitInfo, now time.Time) {
	s, ok := c.slots[id]
	if !ok || s.gen != gen || !s.live {
		return
	}
	c.endGeneration(s, now)
	if s.state == SlotReady {
		s.state = SlotRestarting
	}
	c.publish(&WorkerTerminated{Pool: c.cfg.Name, WorkerID: string(id), Generation: gen, Planned: planned, Exit: exit})
	if !planned {
		c.log.Warn("worker down", "worker", id, "exit", exit.String())
		c.crashed(s, exit, now)
	}
	c.checkDrain(now)
	c.rearm()
}

// crashed accounts a worker process that ended on its own.
func (c *core) crashed(s *slot, exit wk.ExitInfo, now time.Time) {
	class := wk.Classify(exit)
	tainted := c.cfg.Crash.taints(class)
	if tainted {
		s.taintedUntil = now.Add(c.cfg.Crash.TaintDuration)
	}
	before := c.breaker.State(now)
	c.breaker.Failure(now)
	c.noteBreaker(before, now)
	c.publish(&WorkerCrashed{Pool: c.cfg.Name, WorkerID: string(s.id), Generation: s.gen, Class: class, Exit: exit, Tainted: tainted})
}

// OnStartFailed: worker id's process never became ready (gen 0: the worker
// supervisor could not start it). Exited: its actor is gone, so the pool
// starts the slot again itself, with backoff; otherwise the supervisor does.
func (c *core) OnStartFailed(id WorkerID, gen uint64, err error, exited bool, now time.Time) {
	s, ok := c.slots[id]
	if !ok || gen != 0 && gen < s.gen {
		return
	}
	switch s.state {
	case SlotQueued, SlotDead, SlotStopping:
		return // nothing of this slot is starting
	}
	c.releasePermit(s)
	c.lastStartErr = err
	c.log.Warn("worker start failed", "worker", id, "generation", gen, "error", err)
	if !s.startedOK {
		s.failed = true
	}
	if s.state == SlotStarting || s.state == SlotRestarting {
		if exited && c.state != StateStopping {
			s.state = SlotDead
			s.backoff = min(max(2*s.backoff, c.cfg.ReconcileBackoff), 30*time.Second)
			s.retryAt = now.Add(s.backoff)
		} else {
			s.state = SlotRestarting
		}
	}
	c.replaced(s, now)
	c.startSlots()
	c.checkDrain(now)
	c.checkInitComplete()
	c.rearm()
	if c.state != StateStarting {
		c.answerAwaiters(now) // this may have been the last worker AwaitReady{All} waited for
		return
	}
	for _, o := range c.slots {
		if !o.failed {
			return // some worker may still come up
		}
	}
	c.state = StateInitFailed
	c.log.Error("pool initialisation failed: no worker started", "error", err)
	// Everything waiting can never run.
	for _, r := range c.sched.Drain() {
		c.fail(r.ID, now, c.initFailedErr())
	}
	c.answerAwaiters(now)
}

// OnStopped: the stop of worker id (an EffStop with Report) is done.
func (c *core) OnStopped(id WorkerID, now time.Time) {
	s, ok := c.slots[id]
	if !ok || s.state != SlotStopping {
		return
	}
	c.endGeneration(s, now)
	why := s.stopFor
	s.stopFor = 0
	if why == stopForRecycle && c.recycling != nil && c.recycling.id == id && c.recycling.remove {
		c.removeSlot(id)
		c.recycling = nil
		c.nextRecycle(now)
		c.answerAwaiters(now)
		return
	}
	if why == stopForRecycle && c.recycling != nil && c.recycling.id == id {
		c.recycling.phase = recycleReplacing // ends when the replacement is ready or fails
	}
	if c.state == StateStopping {
		return
	}
	s.state = SlotQueued
	c.toStart = append(c.toStart, id)
	c.startSlots()
}

// stop stops the worker of s, reporting back for why.
func (c *core) stop(s *slot, why stopFor) {
	c.releasePermit(s)
	s.state, s.stopFor = SlotStopping, why
	c.sync(s, time.Time{}) // not dispatchable while stopping
	c.emit(Effect{Kind: EffStop, Worker: s.id, Timeout: c.stopTimeout(), Report: true})
	c.startSlots()
}

// untaint readies slots whose taint has run out.
func (c *core) untaint(now time.Time) {
	for _, s := range c.slots {
		if !s.taintedUntil.IsZero() && !s.tainted(now) && s.live {
			s.taintedUntil = time.Time{}
			c.sync(s, now)
		}
	}
}

// retryDead starts again the dead slots whose retry is due: what is left
// of their worker is stopped first.
func (c *core) retryDead(now time.Time) {
	for _, id := range c.order {
		s := c.slots[id]
		if s.state == SlotDead && !now.Before(s.retryAt) {
			c.log.Info("retrying a worker whose start failed", "worker", id, "after", s.backoff)
			s.retryAt = time.Time{}
			c.stop(s, stopForRetry)
		}
	}
}

func (c *core) removeSlot(id WorkerID) {
	delete(c.slots, id)
	drop := func(l []WorkerID) []WorkerID {
		for i, o := range l {
			if o == id {
				return append(l[:i:i], l[i+1:]...)
			}
		}
		return l
	}
	c.order = drop(c.order)
	c.toStart = drop(c.toStart)
}
