package supervisors

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Defaults applied by [New] and [StartChild] to zero values.
const (
	// DefaultMaxRestarts is the restart intensity used when MaxRestarts and Window are both zero.
	DefaultMaxRestarts = 3
	// DefaultWindow is the intensity window used when Window is zero.
	DefaultWindow = 5 * time.Second
	// DefaultShutdown is the time a child is given to stop when ChildSpec.Shutdown is zero.
	DefaultShutdown = 5 * time.Second
	// DefaultStartTimeout is the time a child's Started handler may take when ChildSpec.StartTimeout is
	// zero.
	DefaultStartTimeout = 10 * time.Second
)

// ErrInvalidSpec is wrapped by every validation error of a [Spec] or [ChildSpec].
var ErrInvalidSpec = errors.New("supervisors: invalid spec")

// RestartType says whether a child is restarted after it exits.
type RestartType int

const (
	// Permanent children are always restarted, whatever the exit reason.
	Permanent RestartType = iota
	// Transient children are restarted only after an abnormal exit (a panic, or [Exit] with a reason
	// other than nil, [Normal] or [Shutdown]).
	Transient
	// Temporary children are never restarted; they leave the supervisor's list when they exit.
	Temporary
)

// String returns the OTP name of the restart type.
func (r RestartType) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return fmt.Sprintf("RestartType(%d)", int(r))
}

// Strategy says which children are restarted together when one exits and must be restarted.
type Strategy int

const (
	// OneForOne restarts only the child that exited.
	OneForOne Strategy = iota
	// OneForAll stops all other children (reverse start order) and starts all again (start order).
	OneForAll
	// RestForOne stops the children started after the one that exited (reverse order) and starts that
	// child and them again (start order); children started before it are untouched.
	RestForOne
)

// String returns the OTP name of the strategy.
func (s Strategy) String() string {
	switch s {
	case OneForOne:
		return "one_for_one"
	case OneForAll:
		return "one_for_all"
	case RestForOne:
		return "rest_for_one"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// ChildSpec describes one child of a supervisor.
type ChildSpec struct {
	// Name is unique within the supervisor and must not contain '/'. The child is spawned with
	// SpawnNamed(Props, Name), so its PID is "<supervisor id>/<Name>" and stays the same across
	// restarts: holders of the PID reach the new instance (messages sent while it is down go to dead
	// letters).
	Name string
	// Props spawn the child. They are cloned for every start (the supervisor adds a receiver middleware
	// to the clone); the value given here is never modified.
	Props *actor.Props
	// Restart says whether the child is restarted after it exits.
	Restart RestartType
	// Shutdown is how long the child is given to stop: the supervisor poisons it (queued messages are
	// processed first), waits up to Shutdown, then stops it (queued messages are dropped) and waits up
	// to min(Shutdown, 1s) more. Zero means DefaultShutdown.
	Shutdown time.Duration
	// StartTimeout is how long the child's Started handler may run before the start counts as failed.
	// Zero means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Spec describes a supervisor.
type Spec struct {
	// Strategy picks the children restarted together.
	Strategy Strategy
	// MaxRestarts is the restart intensity: at most MaxRestarts restarts within Window, counted per
	// supervisor; the restart that would exceed it makes the supervisor give up. Zero with a positive
	// Window means give up on the first failure; zero with a zero Window means the defaults
	// (DefaultMaxRestarts within DefaultWindow).
	MaxRestarts int
	// Window is the sliding window of the restart intensity. Zero means DefaultWindow.
	Window time.Duration
	// Children are started in this order, each acknowledged before the next, and stopped in reverse.
	Children []ChildSpec
	// OnGiveUp, when set, is called once with the exit reason of the child whose restart exceeded the
	// intensity, after the supervisor has stopped its children and itself (it is called from the
	// supervisor's Stopped handler, so it must not block waiting for the supervisor's parent). When
	// nil, the supervisor stops its children and fails to its parent with an [*IntensityError]; a
	// parent supervisor treats that as a crashed child, protoactor's root guardian restarts the
	// supervisor in place (up to 10 times in 10 s, then stops it).
	OnGiveUp func(reason any)
	// StopConcurrency > 1 stops up to that many children at once when the supervisor stops them
	// (its own stop, or a strategy's restart of several): children still go in reverse start order,
	// in groups of StopConcurrency, each group waited for before the next. For a supervisor of
	// like children (workers) whose order does not matter, as OTP stops simple_one_for_one children
	// all at once. 0 or 1: one at a time (OTP's order for ordered children).
	StopConcurrency int
	// Logger receives the supervisor's log records; nil means slog.Default().
	Logger *slog.Logger
}

// normalized returns a copy of spec with defaults filled in and its own Children slice.
func (spec Spec) normalized() Spec {
	if spec.MaxRestarts == 0 && spec.Window == 0 {
		spec.MaxRestarts = DefaultMaxRestarts
	}
	if spec.Window == 0 {
		spec.Window = DefaultWindow
	}
	if spec.Logger == nil {
		spec.Logger = slog.Default()
	}
	children := make([]ChildSpec, len(spec.Children))
	for i, c := range spec.Children {
		children[i] = c.normalized()
	}
	spec.Children = children
	return spec
}

// validate reports the first problem of spec, wrapping ErrInvalidSpec.
func (spec Spec) validate() error {
	switch spec.Strategy {
	case OneForOne, OneForAll, RestForOne:
	default:
		return fmt.Errorf("%w: unknown strategy %v", ErrInvalidSpec, spec.Strategy)
	}
	if spec.MaxRestarts < 0 {
		return fmt.Errorf("%w: negative MaxRestarts %d", ErrInvalidSpec, spec.MaxRestarts)
	}
	if spec.Window < 0 {
		return fmt.Errorf("%w: negative Window %v", ErrInvalidSpec, spec.Window)
	}
	seen := make(map[string]bool, len(spec.Children))
	for i, c := range spec.Children {
		if err := c.validate(); err != nil {
			return fmt.Errorf("child %d: %w", i, err)
		}
		if seen[c.Name] {
			return fmt.Errorf("%w: duplicate child name %q", ErrInvalidSpec, c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

func (c ChildSpec) normalized() ChildSpec {
	if c.Shutdown == 0 {
		c.Shutdown = DefaultShutdown
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	return c
}

// validate reports the first problem of c, wrapping ErrInvalidSpec.
func (c ChildSpec) validate() error {
	switch {
	case c.Name == "":
		return fmt.Errorf("%w: empty child name", ErrInvalidSpec)
	case strings.Contains(c.Name, "/"):
		return fmt.Errorf("%w: child name %q contains '/'", ErrInvalidSpec, c.Name)
	case c.Props == nil:
		return fmt.Errorf("%w: child %q has nil Props", ErrInvalidSpec, c.Name)
	case c.Shutdown < 0:
		return fmt.Errorf("%w: child %q has negative Shutdown %v", ErrInvalidSpec, c.Name, c.Shutdown)
	case c.StartTimeout < 0:
		return fmt.Errorf("%w: child %q has negative StartTimeout %v", ErrInvalidSpec, c.Name, c.StartTimeout)
	}
	switch c.Restart {
	case Permanent, Transient, Temporary:
	default:
		return fmt.Errorf("%w: child %q has unknown restart type %v", ErrInvalidSpec, c.Name, c.Restart)
	}
	return nil
}

// forceWait is how long a child is waited for after it has been stopped (not poisoned).
func (c ChildSpec) forceWait() time.Duration {
	return min(c.Shutdown, time.Second)
}
