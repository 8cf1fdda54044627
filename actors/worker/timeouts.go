package worker

import "time"

// The fixed waits of a worker's stop, named once; Config.ShutdownTimeout
// and the pool's and App's stop budgets are derived from them.
const (
	// KillWait is how long a stop waits for the process to be reaped after
	// SIGKILL (and a call killed for outliving its caller keeps its slot
	// past ExitWait).
	KillWait = 5 * time.Second
	// CallsWait is how long a stopping worker waits for its call goroutines
	// to answer their callers after the process is gone.
	CallsWait = 5 * time.Second
	// StopMargin is the rest of a worker actor's stop (closing the
	// connection, telling the pool) beyond the waits above.
	StopMargin = time.Second
	// ReplyMargin is what a parent waiting for a worker's stop (the pool's
	// TerminateChild, the App's stop) adds to ShutdownTimeout for the
	// supervisor's answer to arrive.
	ReplyMargin = 5 * time.Second
)

// DefaultExitWait is Config.ExitWait's default: how long a failed call
// waits for the process's exit status.
const DefaultExitWait = 2 * time.Second
