package snakepit

import (
	"time"

	"github.com/snakepit-go/snakepit/actors/pool"
)

// Events published on the App's actor system's EventStream
// (App.System().EventStream.Subscribe), as pointers: *WorkerRecycled,
// *WorkerCrashed, *CircuitChanged (and the heartbeat monitors' events).

// RecycleReason says why a worker was recycled.
type RecycleReason string

// The reasons a worker is recycled.
const (
	RecycleTTL         RecycleReason = "ttl"          // alive longer than PoolConfig.TTL
	RecycleMaxRequests RecycleReason = "max_requests" // served its request limit
	RecycleMemory      RecycleReason = "memory"       // its process tree's RSS is over the threshold
	RecycleIdle        RecycleReason = "idle_ttl"     // no call for PoolConfig.IdleTTL
	RecycleManual      RecycleReason = "manual"       // App.RecycleWorker
	RecycleResize      RecycleReason = "resize"       // App.ResizePool removed it
)

// WorkerRecycled is published when a recycled (or removed) worker stops.
type WorkerRecycled struct {
	At         time.Time
	Pool       string
	WorkerID   string
	Reason     RecycleReason
	Generation uint64
	Uptime     time.Duration
	Requests   int
	RSSBytes   uint64
	Removed    bool // resized away, not replaced
}

// WorkerCrashed is published when a worker's process ends on its own.
type WorkerCrashed struct {
	At         time.Time
	Pool       string
	WorkerID   string
	Generation uint64
	Class      ExitClass
	Exit       WorkerExit
	Tainted    bool // kept out of dispatch for the pool's TaintDuration
}

// WorkerExit is how a worker's process ended.
type WorkerExit struct {
	OSPid    int
	ExitCode int    // -1 when killed by a signal
	Signal   string // "" unless killed by a signal
	Output   string // the last few KB of its stdout and stderr
	// KilledFor says why the host killed the process (execution TTL,
	// heartbeat lost, a request), "" when it ended on its own.
	KilledFor string
}

// CircuitState is the state of a pool's crash breaker.
type CircuitState string

// Breaker states.
const (
	CircuitClosed   CircuitState = "closed"    // calls go through
	CircuitOpen     CircuitState = "open"      // calls fail at once with circuit_open
	CircuitHalfOpen CircuitState = "half_open" // one trial call goes through
)

// CircuitChanged is published when a pool's crash breaker changes state.
type CircuitChanged struct {
	At   time.Time
	Pool string
	From CircuitState
	To   CircuitState
}

// eventBridge hands the pools' events, as the package's own types, to the
// App's subscribers (App.Subscribe, never blocking the pool) and, for the
// three the actor system's event stream has always carried
// (WorkerRecycled, WorkerCrashed, CircuitChanged), to that stream too.
type eventBridge struct {
	next pool.EventPublisher
	hub  *eventHub
}

func (b eventBridge) Publish(evt any) {
	out := b.hub.fromPool(evt, time.Now())
	if out == nil {
		b.next.Publish(evt)
		return
	}
	b.hub.publish(out)
	switch out.(type) {
	case *WorkerRecycled, *WorkerCrashed, *CircuitChanged:
		b.next.Publish(out)
	}
}
