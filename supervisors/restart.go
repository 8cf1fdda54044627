package supervisors

import (
	"log/slog"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
)

// shouldRestart is the restart-type rule: permanent always, transient after an abnormal exit,
// temporary never.
func shouldRestart(t RestartType, abnormal bool) bool {
	switch t {
	case Permanent:
		return true
	case Transient:
		return abnormal
	}
	return false
}

// restartRange is the strategy rule: the children [from, to) of n that are restarted together when
// child i must be restarted.
func restartRange(s Strategy, i, n int) (from, to int) {
	switch s {
	case OneForAll:
		return 0, n
	case RestForOne:
		return i, n
	}
	return i, i + 1
}

// handleExit handles the end of child c's current instance: c.inc has exited (Terminated) or failed
// (its mailbox is suspended). It is restarted with its restart set, or left stopped, or the supervisor
// gives up.
func (s *supervisor) handleExit(c *child, reason any, abnormal bool) {
	c.inc.handled = true
	if !shouldRestart(c.spec.Restart, abnormal) {
		s.stopChild(c)
		if c.spec.Restart == Temporary {
			s.remove(c)
		}
		return
	}
	if !s.restarts.allow(s.now()) {
		s.giveUp(c, reason)
		return
	}
	set := s.restartSet(c)
	s.log.Info("restarting", slog.String("child", c.spec.Name), slog.String("strategy", s.spec.Strategy.String()),
		slog.Int("children", len(set)))
	s.stopReverse(set)
	s.startChildren(set)
}

// restartSet returns the children restarted together with c, in start order.
func (s *supervisor) restartSet(c *child) []*child {
	from, to := restartRange(s.spec.Strategy, slices.Index(s.children, c), len(s.children))
	return slices.Clone(s.children[from:to])
}

// startChildren starts the children of cs that are still in the list and not running, in start
// order, each acknowledged before the next. A child that fails to start is handled as a crash: its
// restart set is stopped and joins what is left to start, under the intensity.
func (s *supervisor) startChildren(cs []*child) {
	for len(cs) > 0 {
		c := cs[0]
		cs = cs[1:]
		if c.inc != nil || !slices.Contains(s.children, c) {
			continue
		}
		err := s.startChild(c)
		if err == nil {
			continue
		}
		s.log.Error("child failed to start", slog.String("child", c.spec.Name), slog.Any("error", err))
		if c.spec.Restart == Temporary {
			s.remove(c)
			continue
		}
		if !s.restarts.allow(s.now()) {
			s.giveUp(c, err)
			return
		}
		set := s.restartSet(c)
		s.stopReverse(set)
		cs = s.inStartOrder(set, cs)
	}
}

// inStartOrder returns the children of the list that are in a or b, in start order.
func (s *supervisor) inStartOrder(a, b []*child) []*child {
	var out []*child
	for _, c := range s.children {
		if slices.Contains(a, c) || slices.Contains(b, c) {
			out = append(out, c)
		}
	}
	return out
}

// startChild spawns c under its name with the acknowledging middleware and waits until its Started
// handler has finished. On failure the instance is stopped and c is left not running.
func (s *supervisor) startChild(c *child) error {
	inc := newIncarnation(s.ctx.Self().Id+"/"+c.spec.Name, s.log)
	props := c.spec.Props.Clone(actor.WithReceiverMiddleware(inc.middleware))
	pid, err := s.spawn(props, c.spec.Name)
	if err != nil {
		return &StartError{Child: c.spec.Name, Reason: err}
	}
	if c.pid == nil {
		c.pid = pid
	}
	c.inc = inc
	c.starts++
	if !waitFor(inc.started, c.spec.StartTimeout) {
		s.stopChild(c)
		return &StartError{Child: c.spec.Name, Reason: ErrStartTimeout}
	}
	if r := inc.startFailure(); r != nil {
		s.stopChild(c)
		return &StartError{Child: c.spec.Name, Reason: r}
	}
	return nil
}

// spawn is SpawnNamed with its panic (props carrying a guardian strategy) turned into an error.
func (s *supervisor) spawn(props *actor.Props, name string) (pid *actor.PID, err error) {
	defer func() {
		if r := recover(); r != nil {
			pid, err = nil, &panicError{r}
		}
	}()
	return s.ctx.SpawnNamed(props, name)
}

// giveUp stops all children in reverse order, then either stops the supervisor (OnGiveUp is called
// from its Stopped handler) or fails to the parent with an *IntensityError.
func (s *supervisor) giveUp(c *child, reason any) {
	s.gaveUp = true
	s.log.Error("restart intensity exceeded, giving up", slog.String("child", c.spec.Name),
		slog.Any("reason", reason), slog.Int("max_restarts", s.spec.MaxRestarts),
		slog.Duration("window", s.spec.Window))
	s.stopReverse(slices.Clone(s.children))
	if s.spec.OnGiveUp != nil {
		s.giveUpReason = reason
		Exit(s.ctx, Shutdown)
		return
	}
	err := &IntensityError{
		Supervisor: s.ctx.Self(), Child: c.spec.Name, Reason: reason,
		MaxRestarts: s.spec.MaxRestarts, Window: s.spec.Window,
	}
	// Fail the way protoactor actors fail: the mailbox recovers the panic and sends a Failure to the
	// parent. Under a parent supervisor the value names this instance, like a child's panic does.
	if inc := incarnationOf(s.ctx); inc != nil {
		panic(inc.fail(err))
	}
	panic(err)
}
