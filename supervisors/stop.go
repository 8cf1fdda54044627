package supervisors

import (
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// stopReverse stops the running children of set (given in start order) in reverse order, each waited
// for (in groups of Spec.StopConcurrency when that is above 1); temporary children leave the list.
func (s *supervisor) stopReverse(set []*child) {
	n := s.spec.StopConcurrency
	for end := len(set); end > 0; {
		start := end - 1
		if n > 1 {
			start = max(0, end-n)
		}
		if end-start == 1 {
			s.stopChild(set[start])
		} else {
			s.stopGroup(set[start:end])
		}
		for _, c := range set[start:end] {
			if c.spec.Restart == Temporary {
				s.remove(c)
			}
		}
		end = start
	}
}

// stopGroup stops the children of group at once and waits for all of them, as stopChild does for
// one. terminate only sends to PIDs and waits on channels, so it can run beside itself.
func (s *supervisor) stopGroup(group []*child) {
	type job struct {
		c   *child
		inc *incarnation
		ok  bool
	}
	jobs := make([]*job, 0, len(group))
	for _, c := range group {
		if c.inc == nil {
			continue
		}
		inc := c.inc
		c.inc = nil
		inc.handled = true
		jobs = append(jobs, &job{c: c, inc: inc})
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.ok = s.terminate(j.c.pid, j.inc, j.c.spec)
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		if !j.ok {
			s.detached = append(s.detached, detached{pid: j.c.pid, inc: j.inc})
		}
	}
}

// stopChild stops c's current instance, if any, and waits for it (see terminate); c is left not
// running. An instance that does not stop in time is detached: it keeps its name until it finishes.
func (s *supervisor) stopChild(c *child) {
	inc := c.inc
	if inc == nil {
		return
	}
	c.inc = nil
	inc.handled = true
	if !s.terminate(c.pid, inc, c.spec) {
		s.detached = append(s.detached, detached{pid: c.pid, inc: inc})
	}
}

// terminate stops one instance and reports whether it finished stopping (its Stopped handler ran):
// Poison, wait up to Shutdown, then Stop and wait up to min(Shutdown, 1s). A failed instance has a
// suspended mailbox that would never reach the poison pill: it is stopped at once (also when it fails
// while draining) and waited up to Shutdown. protoactor cannot interrupt a handler that blocks, so an
// instance can still be running after both waits.
func (s *supervisor) terminate(pid *actor.PID, inc *incarnation, spec ChildSpec) bool {
	if inc.isDone() {
		return true
	}
	if !inc.failed.Load() {
		s.ctx.Poison(pid)
		t := time.NewTimer(spec.Shutdown)
		select {
		case <-inc.done:
			t.Stop()
			return true
		case <-inc.failedCh:
			t.Stop()
		case <-t.C:
			s.ctx.Stop(pid)
			s.log.Warn("child did not stop within its shutdown timeout, stopping it",
				slog.String("child", spec.Name), slog.Duration("shutdown", spec.Shutdown))
			return s.awaitStop(inc, spec, spec.forceWait())
		}
	}
	s.ctx.Stop(pid)
	return s.awaitStop(inc, spec, spec.Shutdown)
}

// awaitStop waits up to d for a stopped instance to finish.
func (s *supervisor) awaitStop(inc *incarnation, spec ChildSpec, d time.Duration) bool {
	if waitFor(inc.done, d) {
		return true
	}
	s.log.Error("child is stuck stopping; leaving it behind (its name stays taken until it returns)",
		slog.String("child", spec.Name))
	return false
}

// releaseDetached lets the supervisor finish stopping although detached instances are still running:
// protoactor finalises an actor's stop only when every child has sent Terminated, so the supervisor
// sends itself the Terminated a stuck child has not sent yet.
func (s *supervisor) releaseDetached() {
	self := s.ctx.Self()
	proc, ok := s.ctx.ActorSystem().ProcessRegistry.Get(self)
	for _, d := range s.detached {
		if ok && !d.inc.isDone() {
			proc.SendSystemMessage(self, &actor.Terminated{Who: d.pid})
		}
	}
	s.detached = nil
}

// waitFor waits until ch is closed or d has passed, and reports whether ch was closed.
func waitFor(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}
