package supervisors

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// New validates spec and returns the props of a supervisor actor for it. Spawn them anywhere (from the
// root context, or as a ChildSpec of another supervisor); the supervisor's Started handler returns once
// all its children have started. Errors wrap ErrInvalidSpec.
func New(spec Spec) (*actor.Props, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	spec = spec.normalized()
	return actor.PropsFromProducer(func() actor.Actor { return newSupervisor(spec) }), nil
}

// child is one entry of the supervisor's ordered list.
type child struct {
	spec   ChildSpec
	pid    *actor.PID   // stable across restarts; nil before the first start
	inc    *incarnation // the running (or exited, not yet handled) instance; nil when not running
	starts int
}

// running is the supervisor's view: it has an instance whose end it has not handled yet.
func (c *child) running() bool { return c.inc != nil }

// detached is a child instance that did not stop within its timeouts; it still holds its name.
type detached struct {
	pid *actor.PID
	inc *incarnation
}

// supervisor is the actor. All its state is touched only from its own mailbox goroutine: Receive and
// HandleFailure (which protoactor calls from the supervisor's mailbox when a child fails).
type supervisor struct {
	spec     Spec
	log      *slog.Logger
	ctx      actor.Context
	now      func() time.Time
	children []*child
	restarts intensity
	detached []detached

	stopping     bool // Stopping or Restarting seen: nothing is restarted any more
	gaveUp       bool
	giveUpReason any
}

var (
	_ actor.Actor              = (*supervisor)(nil)
	_ actor.SupervisorStrategy = (*supervisor)(nil)
)

func newSupervisor(spec Spec) *supervisor {
	s := &supervisor{
		spec:     spec,
		log:      spec.Logger,
		now:      time.Now,
		restarts: newIntensity(spec.MaxRestarts, spec.Window),
	}
	for _, cs := range spec.Children {
		s.children = append(s.children, &child{spec: cs})
	}
	return s
}

// Receive handles lifecycle messages, children's Terminated and the requests of messages.go.
func (s *supervisor) Receive(ctx actor.Context) {
	s.ctx = ctx
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.log = s.spec.Logger.With(slog.String("supervisor", ctx.Self().Id))
		s.startChildren(slices.Clone(s.children))
		if !s.gaveUp {
			s.log.Debug("supervisor started", slog.String("strategy", s.spec.Strategy.String()),
				slog.Int("children", len(s.children)))
		}
	case *actor.Stopping, *actor.Restarting:
		s.shutdown()
	case *actor.Stopped:
		s.stopped()
	case *actor.Terminated:
		s.terminated(msg.Who)
	case *StartChild:
		ctx.Respond(s.startDynamic(msg.Spec))
	case *TerminateChild:
		ctx.Respond(&TerminateChildResult{Err: s.terminateChild(msg.Name)})
	case *WhichChildren:
		ctx.Respond(s.which())
	}
}

// HandleFailure is called by protoactor, on the supervisor's mailbox, when a child panicked (or
// escalated a failure). The child's mailbox is suspended; it is stopped and handled as an abnormal exit.
// protoactor's own restart (in place) is never used.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, who *actor.PID, _ *actor.RestartStatistics, reason, _ any) {
	if s.stopping || s.gaveUp {
		return
	}
	c := s.byID(who.Id)
	inc, reason := s.attribute(c, who, reason)
	if inc == nil {
		if c == nil && !isCrashOf(reason, who) {
			s.log.Warn("failure of a child the supervisor does not know; stopping it",
				slog.String("child", who.Id), slog.Any("reason", reason))
			sup.StopChildren(who)
		}
		return // stale: about an instance already stopped or replaced
	}
	inc.markFailed()
	s.log.Warn("child failed", slog.String("child", c.spec.Name), slog.Any("reason", reason))
	s.handleExit(c, reason, true)
}

// attribute finds the instance a Failure is about and unwraps its reason; nil means the failure is
// stale. A failure marked by the receiver middleware names its instance exactly; one that is not (a
// panic in a ReenterAfter continuation, or a failure escalated by protoactor code) is taken to be about
// the current instance.
func (s *supervisor) attribute(c *child, who *actor.PID, reason any) (*incarnation, any) {
	if cr, ok := reason.(*crash); ok && cr.inc.id == who.Id {
		if c == nil || cr.inc != c.inc || cr.inc.handled {
			return nil, cr.reason
		}
		return cr.inc, cr.reason
	}
	if c == nil || c.inc == nil || c.inc.handled {
		return nil, reason
	}
	return c.inc, reason
}

func isCrashOf(reason any, who *actor.PID) bool {
	cr, ok := reason.(*crash)
	return ok && cr.inc.id == who.Id
}

// terminated handles a child's Terminated: an exit of the current instance that the supervisor did not
// ask for is handled with the reason the child gave (Normal unless Exit said otherwise). Terminated
// messages about instances the supervisor stopped or replaced are stale and ignored.
func (s *supervisor) terminated(who *actor.PID) {
	if s.stopping || s.gaveUp {
		return
	}
	c := s.byID(who.Id)
	if c == nil || c.inc == nil || c.inc.handled || !c.inc.isDone() {
		return
	}
	reason := c.inc.exitReason()
	abnormal := !IsNormal(reason)
	level := slog.LevelInfo
	if abnormal {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "child exited", slog.String("child", c.spec.Name), slog.Any("reason", reason))
	s.handleExit(c, reason, abnormal)
}

// shutdown stops all children in reverse start order (Stopping, or an in-place Restarting imposed by a
// parent that is not a supervisor).
func (s *supervisor) shutdown() {
	s.stopping = true
	s.stopReverse(slices.Clone(s.children))
	s.releaseDetached()
}

func (s *supervisor) stopped() {
	if !s.gaveUp || s.spec.OnGiveUp == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("OnGiveUp panicked", slog.Any("reason", r))
		}
	}()
	s.spec.OnGiveUp(s.giveUpReason)
}

func (s *supervisor) startDynamic(spec ChildSpec) *StartChildResult {
	if s.stopping || s.gaveUp {
		return &StartChildResult{Err: ErrStopping}
	}
	if err := spec.validate(); err != nil {
		return &StartChildResult{Err: err}
	}
	if s.byName(spec.Name) != nil {
		return &StartChildResult{Err: fmt.Errorf("%w: %q", ErrAlreadyPresent, spec.Name)}
	}
	c := &child{spec: spec.normalized()}
	s.children = append(s.children, c)
	if err := s.startChild(c); err != nil {
		s.remove(c)
		s.log.Warn("dynamic child failed to start", slog.String("child", spec.Name), slog.Any("error", err))
		return &StartChildResult{Err: err}
	}
	return &StartChildResult{PID: c.pid}
}

func (s *supervisor) terminateChild(name string) error {
	c := s.byName(name)
	if c == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	s.stopChild(c)
	s.remove(c)
	return nil
}

func (s *supervisor) which() *Children {
	items := make([]ChildInfo, len(s.children))
	for i, c := range s.children {
		items[i] = ChildInfo{
			Name:     c.spec.Name,
			PID:      c.pid,
			Restart:  c.spec.Restart,
			Running:  c.running(),
			Restarts: max(c.starts-1, 0),
		}
	}
	return &Children{Items: items}
}

func (s *supervisor) byName(name string) *child {
	for _, c := range s.children {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

func (s *supervisor) byID(id string) *child {
	name, ok := strings.CutPrefix(id, s.ctx.Self().Id+"/")
	if !ok {
		return nil
	}
	return s.byName(name)
}

func (s *supervisor) remove(c *child) {
	s.children = slices.DeleteFunc(s.children, func(x *child) bool { return x == c })
}
