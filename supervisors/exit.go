package supervisors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Reason is a named exit reason.
type Reason string

// Exit reasons that count as normal: a [Transient] child exiting with one of them (or nil) is not
// restarted.
const (
	// Normal is the reason of a child that stopped itself (ctx.Stop(ctx.Self()), ctx.Poison, or Exit with
	// nil).
	Normal Reason = "normal"
	// Shutdown is the reason of a child stopped by its supervisor, and of a supervisor that gave up and
	// called OnGiveUp.
	Shutdown Reason = "shutdown"
)

// IsNormal reports whether reason is a normal exit reason: nil, [Normal] or [Shutdown].
func IsNormal(reason any) bool {
	switch reason {
	case nil, Normal, Shutdown:
		return true
	}
	return false
}

// Exit stops the calling actor (ctx.Stop(ctx.Self())) with an exit reason its supervisor will see:
// nil, [Normal] and [Shutdown] are normal exits, anything else is abnormal (a [Transient] child is
// restarted after it). Call it from the actor's own Receive. Outside a supervisor it only stops the actor.
//
// The reason is stored where the supervisor reads it after the child's Stopped handler has run, so it
// is known when the supervisor handles the exit, whatever the order in which messages arrive.
func Exit(ctx actor.Context, reason any) {
	if inc := incarnationOf(ctx); inc != nil {
		inc.setExit(reason)
	}
	ctx.Stop(ctx.Self())
}

// IntensityError is the failure a supervisor without OnGiveUp escalates to its parent when a restart
// would exceed its intensity.
type IntensityError struct {
	// Supervisor is the supervisor that gave up.
	Supervisor *actor.PID
	// Child is the name of the child whose exit needed the restart.
	Child string
	// Reason is that child's exit reason.
	Reason any
	// MaxRestarts and Window are the intensity that was exceeded.
	MaxRestarts int
	Window      time.Duration
}

// Error describes the supervisor, the child and the reason.
func (e *IntensityError) Error() string {
	return fmt.Sprintf("supervisors: %s gave up: more than %d restarts within %v (last: child %q, %v)",
		e.Supervisor, e.MaxRestarts, e.Window, e.Child, e.Reason)
}

// Unwrap returns the child's reason when it is an error.
func (e *IntensityError) Unwrap() error {
	err, _ := e.Reason.(error)
	return err
}

// StartError says why a child failed to start: its Started handler panicked (Reason is the panic
// value), did not finish within StartTimeout ([ErrStartTimeout]), or the spawn failed (for example
// actor.ErrNameExists when an earlier instance has not finished stopping).
type StartError struct {
	// Child is the child's name.
	Child string
	// Reason is the panic value or error.
	Reason any
}

// Error describes the child and the reason.
func (e *StartError) Error() string {
	return fmt.Sprintf("supervisors: child %q failed to start: %v", e.Child, e.Reason)
}

// Unwrap returns Reason when it is an error.
func (e *StartError) Unwrap() error {
	err, _ := e.Reason.(error)
	return err
}

// crash is the value a supervised child's failure carries to its supervisor (as the panic value the
// mailbox escalates): it names the incarnation that failed, so a failure that arrives after that
// incarnation was already replaced is recognised as stale.
type crash struct {
	inc    *incarnation
	reason any
}

// Error describes the failed child and its reason.
func (c *crash) Error() string {
	return fmt.Sprintf("supervisors: child %s failed: %v", c.inc.id, c.reason)
}

// Unwrap returns the reason when it is an error.
func (c *crash) Unwrap() error {
	err, _ := c.reason.(error)
	return err
}
