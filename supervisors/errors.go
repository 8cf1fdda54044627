package supervisors

import (
	"errors"
	"fmt"
)

// Errors returned in replies to [StartChild] and [TerminateChild], and wrapped by [StartError].
var (
	// ErrStartTimeout: the child's Started handler did not finish within its StartTimeout.
	ErrStartTimeout = errors.New("supervisors: child start timed out")
	// ErrAlreadyPresent: a child with that name is already in the supervisor's list.
	ErrAlreadyPresent = errors.New("supervisors: child name already present")
	// ErrNotFound: no child with that name.
	ErrNotFound = errors.New("supervisors: no such child")
	// ErrStopping: the supervisor is stopping or has given up.
	ErrStopping = errors.New("supervisors: supervisor is stopping")
)

// panicError carries a recovered panic value as an error.
type panicError struct{ value any }

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }
