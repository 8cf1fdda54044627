package pool

import (
	"fmt"
	"time"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/internal/sperr"
)

// Recycling and resizing, in the core. Which worker is due for a recycle
// is decided by actors/lifecycle (its limits and its manager); the pool
// carries a recycle out: one worker at a time, so the pool never has fewer
// than Size-1 workers serving.

// recyclePhase is where a recycle job is.
type recyclePhase uint8

const (
	recycleWaiting   recyclePhase = iota // queued behind another
	recycleDraining                      // its slot finishes its calls
	recycleStopping                      // its worker is being stopped
	recycleReplacing                     // its replacement is starting
)

type recycleJob struct {
	id       WorkerID
	reason   lifecycle.Reason
	rss      uint64
	remove   bool
	deadline time.Time
	phase    recyclePhase
}

// Recycle queues a graceful replacement of worker id.
func (c *core) Recycle(id WorkerID, reason lifecycle.Reason, rss uint64, now time.Time) error {
	return c.queueRecycle(id, reason, rss, false, now)
}

func (c *core) queueRecycle(id WorkerID, reason lifecycle.Reason, rss uint64, remove bool, now time.Time) error {
	_, ok := c.slots[id]
	switch {
	case c.state == StateStopping:
		return sperr.New(sperr.CodeShutdown, "pool %s is stopping", c.cfg.Name)
	case !ok:
		return sperr.New(sperr.CodeInvalidArgument, "pool %s has no worker %q", c.cfg.Name, id)
	case c.jobOf(id) != nil:
		return nil // already on its way out
	}
	if reason == "" {
		reason = lifecycle.ReasonManual
	}
	c.recycles = append(c.recycles, &recycleJob{id: id, reason: reason, rss: rss, remove: remove})
	c.nextRecycle(now)
	return nil
}

// jobOf is the recycle job of id, running or waiting (nil if none).
func (c *core) jobOf(id WorkerID) *recycleJob {
	if c.recycling != nil && c.recycling.id == id {
		return c.recycling
	}
	for _, j := range c.recycles {
		if j.id == id {
			return j
		}
	}
	return nil
}

// nextRecycle starts the next queued recycle when none runs.
func (c *core) nextRecycle(now time.Time) {
	for c.recycling == nil && len(c.recycles) > 0 && c.state != StateStopping {
		j := c.recycles[0]
		c.recycles = c.recycles[1:]
		s, ok := c.slots[j.id]
		if !ok {
			continue
		}
		c.recycling = j
		j.phase, j.deadline = recycleDraining, now.Add(c.cfg.DrainTimeout)
		if s.state == SlotQueued {
			// Nothing runs yet: a removal drops the slot, a recycle is moot.
			c.recycling = nil
			if j.remove {
				c.removeSlot(j.id)
				c.answerAwaiters(now)
			}
			continue
		}
		c.releasePermit(s)
		s.state = SlotDraining
		c.sync(s, now)
		c.log.Info("recycling worker", "worker", s.id, "reason", j.reason, "remove", j.remove)
		c.checkDrain(now)
	}
}

// checkDrain stops the draining worker once it has no call running (or its
// drain time is up).
func (c *core) checkDrain(now time.Time) {
	j := c.recycling
	if j == nil || j.phase != recycleDraining {
		return
	}
	s := c.slots[j.id]
	inflight, _, _ := c.sched.Load(j.id)
	if inflight > 0 && now.Before(j.deadline) {
		c.rearm()
		return
	}
	j.phase = recycleStopping
	c.publish(&WorkerRecycled{Pool: c.cfg.Name, WorkerID: string(j.id), Reason: j.reason, Generation: s.gen,
		Uptime: now.Sub(s.readyAt), Requests: s.requests, RSSBytes: j.rss, Removed: j.remove})
	c.stats.Recycled++
	c.stop(s, stopForRecycle)
}

// replaced ends the running recycle of s once its replacement is ready or
// could not start.
func (c *core) replaced(s *slot, now time.Time) {
	if j := c.recycling; j != nil && j.id == s.id && j.phase == recycleReplacing {
		c.recycling = nil
		c.nextRecycle(now)
	}
}

// Resize changes the number of workers: new ones start at once; removed
// ones (the highest-numbered) are drained like a recycle and not replaced.
func (c *core) Resize(size int, now time.Time) error {
	switch {
	case size < 1:
		return sperr.New(sperr.CodeInvalidArgument, "pool %s: size must be at least 1, got %d", c.cfg.Name, size)
	case c.state == StateStopping:
		return sperr.New(sperr.CodeShutdown, "pool %s is stopping", c.cfg.Name)
	}
	// Slots being removed already do not count.
	live := make([]WorkerID, 0, len(c.order))
	for _, id := range c.order {
		if j := c.jobOf(id); j == nil || !j.remove {
			live = append(live, id)
		}
	}
	c.log.Info("resizing pool", "from", len(live), "to", size)
	c.cfg.Size = size
	for i := len(live); i < size; i++ {
		c.slotSeq++
		c.addSlot(WorkerID(WorkerName(c.cfg.Name, c.slotSeq)))
	}
	for i := len(live) - 1; i >= size; i-- {
		if s := c.slots[live[i]]; s.state == SlotQueued && c.jobOf(s.id) == nil {
			c.removeSlot(s.id) // it never started: simply dropped
			continue
		}
		_ = c.queueRecycle(live[i], "resize", 0, true, now)
	}
	c.startSlots()
	c.answerAwaiters(now)
	return nil
}

// WorkerStates is the lifecycle view of the live workers (with all, of
// every slot: one not live has only its id, generation and state).
func (c *core) WorkerStates(now time.Time, all bool) *WorkerStates {
	out := &WorkerStates{Pool: c.cfg.Name}
	for _, id := range c.order {
		s := c.slots[id]
		if !s.live {
			if all {
				out.Workers = append(out.Workers, WorkerState{WorkerState: lifecycle.WorkerState{WorkerID: string(id)},
					Generation: s.gen, Tainted: s.tainted(now), Slot: s.state})
			}
			continue
		}
		inflight, _, _ := c.sched.Load(id)
		out.Workers = append(out.Workers, WorkerState{
			WorkerState: lifecycle.WorkerState{WorkerID: string(id), StartedAt: s.readyAt, LastActive: s.lastActive,
				Requests: s.requests, MaxRequests: s.maxRequests, InFlight: inflight,
				Draining: c.jobOf(id) != nil || s.state == SlotDraining},
			OSPid: s.osPid, Generation: s.gen, Tainted: s.tainted(now), Slot: s.state,
		})
	}
	return out
}

// countSuccess counts a successful call of s and recycles it at its limit.
func (c *core) countSuccess(s *slot, now time.Time) {
	s.requests++
	s.lastActive = now
	if s.maxRequests > 0 && s.requests >= s.maxRequests && s.state == SlotReady {
		_ = c.queueRecycle(s.id, lifecycle.ReasonMaxRequests, 0, false, now)
	}
}

func (c *core) noteBreaker(before BreakerState, now time.Time) {
	if after := c.breaker.State(now); after != before {
		c.log.Warn("crash breaker", "from", before, "to", after)
		c.publish(&CircuitChanged{Pool: c.cfg.Name, From: before, To: after})
	}
}

// admit applies the breaker to a new call: nil (trial: the call is the
// half-open breaker's one trial), or the circuit_open error.
func (c *core) admit(now time.Time) (e *sperr.Error, trial bool) {
	before := c.breaker.State(now)
	ok := c.breaker.Allow(now)
	c.noteBreaker(before, now)
	if ok {
		return nil, before == BreakerHalfOpen
	}
	c.stats.CircuitRejected++
	e = c.poolErr(sperr.CodeCircuitOpen, "pool %s: too many worker crashes, calls are refused for now", c.cfg.Name)
	if d := c.breaker.RetryAfter(now); d > 0 {
		e.WithDetail("retry_after_ms", fmt.Sprint(d.Milliseconds()))
	}
	return e, false
}
