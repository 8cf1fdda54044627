package pool

import (
	"time"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// Callers talk to a pool with the protobuf messages of package poolpb
// (Execute, Cancel, GetStats, AwaitReady, ListWorkers), so a pool can be
// used from another node. The messages below are local to this process.

// States of a pool.
const (
	StateStarting   = "starting"    // no worker ready yet
	StateReady      = "ready"       // at least one worker ready
	StateInitFailed = "init_failed" // every worker failed its first start
	StateStopping   = "stopping"
)

// ExecuteLocal is an Execute from a caller in the pool's own process (the
// App): the pool answers it on Reply instead of a PID and, once it is
// dispatched, grants the call to the caller (*worker.Grant on Reply) to run
// on its own goroutine. Unary calls only; streams use Execute.
type ExecuteLocal struct {
	Req   *poolpb.Execute
	Reply wk.Local
}

// tick wakes the pool when the earliest deadline it armed for has passed.
type tick struct{ at time.Time }

// EndSession tells the pool a session ended (deleted or expired): its
// worker binding is dropped, and its strict requests still queued may then
// run on any worker. Not answered.
type EndSession struct{ SessionID string }

// Recycle asks the pool to replace a worker gracefully: it takes no new
// calls, finishes its running ones (up to DrainTimeout), stops, and a
// replacement starts from the same config. One worker of a pool is recycled
// at a time, so the pool never has fewer than Size-1 workers serving.
// Answered with *RecycleResult when it has a sender.
type Recycle struct {
	WorkerID string
	Reason   lifecycle.Reason
	// RSSBytes is the memory measured when the reason is memory (reported).
	RSSBytes uint64
}

// RecycleResult answers Recycle: Err is nil once the recycle is scheduled.
type RecycleResult struct{ Err error }

// Resize changes the number of workers: new ones start at once; removed ones
// (the highest-numbered) are drained like a recycle and not replaced.
// Answered with *ResizeResult.
type Resize struct{ Size int }

// ResizeResult answers Resize.
type ResizeResult struct{ Err error }

// GetWorkerStates asks for the lifecycle view of each live worker (of
// every slot with All); answered with *WorkerStates.
type GetWorkerStates struct {
	// All includes slots with no serving generation (queued, starting,
	// restarting, dead): their lifecycle fields are zero.
	All bool
}

// WorkerStates answers GetWorkerStates.
type WorkerStates struct {
	Pool    string
	Workers []WorkerState
}

// WorkerState is one live worker's lifecycle state.
type WorkerState struct {
	lifecycle.WorkerState
	OSPid      int
	Generation uint64
	Tainted    bool
	// Slot is the state of the worker's slot in the pool.
	Slot SlotState
}

// EventPublisher receives pool events (the actor system's EventStream).
type EventPublisher interface{ Publish(evt any) }

// WorkerRecycled is published when a recycled (or removed) worker stops.
type WorkerRecycled struct {
	Pool       string
	WorkerID   string
	Reason     lifecycle.Reason
	Generation uint64
	Uptime     time.Duration
	Requests   int
	RSSBytes   uint64
	Removed    bool // resized away, not replaced
}

// WorkerCrashed is published when a worker's process ends on its own.
type WorkerCrashed struct {
	Pool       string
	WorkerID   string
	Generation uint64
	Class      wk.ExitClass
	Exit       wk.ExitInfo
	Tainted    bool
}

// CircuitChanged is published when the pool's crash breaker changes state.
type CircuitChanged struct {
	Pool string
	From BreakerState
	To   BreakerState
}

// The pool's lifecycle and call events (published through Config.Events
// next to WorkerRecycled, WorkerCrashed and CircuitChanged).

// PoolInitStarted: the pool declared its slots and starts its workers.
type PoolInitStarted struct {
	Pool string
	Size int
}

// PoolInitComplete: every slot of the pool's first start is ready or has
// failed (once per pool start).
type PoolInitComplete struct {
	Pool          string
	Ready, Failed int
}

// WorkerStarting: a slot got its start permit; its worker process is being
// spawned.
type WorkerStarting struct {
	Pool     string
	WorkerID string
}

// WorkerReady: a generation of a worker answers and takes calls.
type WorkerReady struct {
	Pool       string
	WorkerID   string
	Generation uint64
	OSPid      int
}

// WorkerTerminated: a generation's process is gone, stopped by the host
// (Planned) or on its own (a WorkerCrashed follows).
type WorkerTerminated struct {
	Pool       string
	WorkerID   string
	Generation uint64
	Planned    bool
	Exit       wk.ExitInfo
}

// QueueSaturated: a call was refused because the queue was full.
type QueueSaturated struct {
	Pool             string
	Queued, MaxQueue int
}

// CallQueued, CallDispatched and CallDone follow one call through the pool;
// they are published only while Config.CallEvents says someone listens.
type CallQueued struct {
	Pool, RequestID, Tool string
}

// CallDispatched: the call went to a worker after Waited in the queue.
type CallDispatched struct {
	Pool, RequestID, Tool, WorkerID string
	Waited                          time.Duration
}

// CallDone: the call's worker answered (or the pool did: Code says how it
// ended, "" for success); Duration is from when the pool took it.
type CallDone struct {
	Pool, RequestID, Tool, WorkerID string
	Code                            string
	Duration                        time.Duration
}
