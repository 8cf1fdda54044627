package supervisors

import "github.com/asynkron/protoactor-go/actor"

// Requests a supervisor answers with ctx.Respond. Send them as pointers, with Request or RequestFuture
// (or use the helpers in client.go).

// StartChild adds a child at the end of the start order and starts it. The reply is a
// *StartChildResult. A child that fails to start is not added (and the failure is not a crash: it is not
// restarted and does not count toward the intensity).
type StartChild struct {
	// Spec describes the new child; its name must not be in the list yet.
	Spec ChildSpec
}

// StartChildResult answers [StartChild].
type StartChildResult struct {
	// PID of the started child; nil when Err is set.
	PID *actor.PID
	// Err is nil, an ErrInvalidSpec, ErrAlreadyPresent, ErrStopping or a *StartError.
	Err error
}

// TerminateChild stops the named child (it is not restarted) and removes it from the list. The reply is
// a *TerminateChildResult.
type TerminateChild struct {
	// Name of the child.
	Name string
}

// TerminateChildResult answers [TerminateChild].
type TerminateChildResult struct {
	// Err is nil or ErrNotFound.
	Err error
}

// WhichChildren asks for the supervisor's children. The reply is a *Children.
type WhichChildren struct{}

// Children answers [WhichChildren].
type Children struct {
	// Items are the children in start order.
	Items []ChildInfo
}

// ChildInfo describes one child.
type ChildInfo struct {
	// Name of the child.
	Name string
	// PID of the child, the same across restarts; nil if it was never started.
	PID *actor.PID
	// Restart is the child's restart type.
	Restart RestartType
	// Running is the supervisor's view: true while it has an instance whose exit it has not handled yet
	// (a child that has just exited shows as running until the supervisor handles its Terminated).
	Running bool
	// Restarts counts the starts of this child after its first one.
	Restarts int
}
