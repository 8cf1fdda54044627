package worker

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Ready tells the pool a worker's Python process answers: calls may be
// submitted to Exec (until it returns ErrClosed).
type Ready struct {
	WorkerID   string
	PID        *actor.PID
	Generation uint64
	Capacity   int
	OSPid      int
	Exec       *Executor
}

// Down tells the pool a worker generation is gone: its executor takes no
// calls. Planned is true when the host stopped it.
type Down struct {
	WorkerID   string
	Generation uint64
	Planned    bool
	Exit       ExitInfo
}

// StartFailed tells the pool a worker's Python process never became ready.
// A worker that fails its first start exits normally (it is not restarted;
// the pool decides); a replacement that fails crashes and is restarted.
type StartFailed struct {
	WorkerID   string
	Generation uint64
	Err        error
	// Exited: the worker actor stopped after this (a first start); the
	// supervisor will not start it again.
	Exited bool
}

// GetInfo asks a worker for Info (answered from the mailbox even during
// long calls). With WaitReady, a worker that is starting answers when its
// start ends (ready, failed or stopped) instead of at once.
type GetInfo struct{ WaitReady bool }

// Info describes a worker.
type Info struct {
	WorkerID   string
	Generation uint64
	State      State
	OSPid      int
	InFlight   int
	StartedAt  time.Time
	Target     string
	// ServerSecret is what a client of Target must send (auth.Header). It
	// never leaves this process: Info is not a protobuf message.
	ServerSecret string
}

// State is where a worker actor's current generation is.
type State string

// The worker states (a generation moves starting → ready → stopping, or
// starting → failed when its start fails).
const (
	StateStarting State = "starting" // its Python process is starting
	StateReady    State = "ready"    // it serves calls
	StateFailed   State = "failed"   // its start failed; the actor exits
	StateStopping State = "stopping" // it is stopping its process
)

// KillProcess makes the worker SIGKILL its Python process group, as a crash
// would: in-flight calls fail with worker_exit (saying Reason) and the
// worker is restarted. The execution TTL, the heartbeat monitor, tests and
// the demo use it.
type KillProcess struct{ Reason string }

// processExited is sent by the watcher goroutine of a generation.
type processExited struct{ generation uint64 }

// booted is sent by the start goroutine when the process answers a ping.
type booted struct{ generation uint64 }

// bootFailed is sent by the start goroutine when the process did not.
type bootFailed struct {
	generation uint64
	err        error
}
