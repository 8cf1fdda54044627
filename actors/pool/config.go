package pool

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	wk "github.com/snakepit-go/snakepit/actors/worker"
)

// Config is one pool. The worker template is copied for every worker (only
// WorkerID, PoolName and Pool differ), for the first start and every
// restart alike.
type Config struct {
	Name string
	// Size is the number of workers.
	Size int
	// Worker is the template every worker of the pool is started from.
	Worker wk.Config
	// MaxQueue bounds the requests waiting for a worker (default 1000);
	// beyond it a call fails with pool_saturated.
	MaxQueue int
	// QueueTimeout bounds the wait in the queue (default 10s); past it a
	// call fails with queue_timeout.
	QueueTimeout time.Duration
	// ExecuteTimeout is a call's budget when the caller gives no deadline
	// (default 300s): queueing plus execution.
	ExecuteTimeout time.Duration
	// StreamTimeout is a stream's budget when the caller gives no deadline
	// (default ExecuteTimeout).
	StreamTimeout time.Duration
	// StartupConcurrency is how many workers may be starting at once
	// (default 8): the next starts as soon as one is ready or failed.
	StartupConcurrency int
	// Affinity is the session affinity used when a call does not say.
	Affinity Affinity
	// WorkerSupervisor is the supervisor the pool starts its workers under.
	WorkerSupervisor *actor.PID
	// WorkerProps makes a worker's props from its config (default
	// worker.Props). Tests and benchmarks put in-process fake workers here;
	// a fake must speak the worker's protocol to the pool (Ready, Down,
	// StartFailed, and an Executor that answers calls).
	WorkerProps func(wk.Config) *actor.Props

	// MaxRequests recycles a worker after that many successful calls, plus
	// a random 0..MaxRequestsJitter per generation so workers do not all
	// recycle at once (0 = off). The pool checks it on every call.
	MaxRequests       int
	MaxRequestsJitter int
	// DrainTimeout bounds how long a recycled or removed worker may finish
	// its running calls before it is stopped anyway (default 30s).
	DrainTimeout time.Duration
	// Crash configures the crash barrier.
	Crash CrashBarrier
	// ReconcileBackoff is the first delay before a worker slot whose start
	// failed is tried again; it doubles per failure up to 30s (default 1s).
	ReconcileBackoff time.Duration
	// Events receives the pool's events (PoolInitStarted, PoolInitComplete,
	// WorkerStarting, WorkerReady, WorkerTerminated, WorkerRecycled,
	// WorkerCrashed, CircuitChanged, QueueSaturated, and the call events
	// while CallEvents says so), on the pool's goroutine.
	Events EventPublisher
	// CallEvents, when set, is asked before each call event: they are built
	// and published only while it returns true (nil: never).
	CallEvents func() bool

	// keyBase gives the first request key of each start of the pool (default:
	// the clock in nanoseconds, so keys never repeat across restarts of a pool,
	// which keep its PID). In-package tests make it deterministic.
	keyBase func() uint64
	Logger  *slog.Logger
}

// WithDefaults fills unset values with the defaults.
func (c Config) WithDefaults() Config {
	if c.MaxQueue == 0 {
		c.MaxQueue = 1000
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = 10 * time.Second
	}
	if c.ExecuteTimeout <= 0 {
		c.ExecuteTimeout = 300 * time.Second
	}
	if c.StreamTimeout <= 0 {
		c.StreamTimeout = c.ExecuteTimeout
	}
	if c.StartupConcurrency <= 0 {
		c.StartupConcurrency = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.WorkerProps == nil {
		c.WorkerProps = wk.Props
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ReconcileBackoff <= 0 {
		c.ReconcileBackoff = time.Second
	}
	c.Crash = c.Crash.withDefaults()
	if c.keyBase == nil {
		c.keyBase = func() uint64 { return uint64(time.Now().UnixNano()) }
	}
	return c
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("pool: Name is required")
	case c.Size < 1:
		return fmt.Errorf("pool %s: Size must be at least 1, got %d", c.Name, c.Size)
	case c.MaxQueue < 0:
		return fmt.Errorf("pool %s: MaxQueue must not be negative", c.Name)
	case c.MaxRequests < 0 || c.MaxRequestsJitter < 0:
		return fmt.Errorf("pool %s: MaxRequests and MaxRequestsJitter must not be negative", c.Name)
	case c.Crash.TaintDuration < 0:
		return fmt.Errorf("pool %s: Crash.TaintDuration must not be negative", c.Name)
	case c.WorkerSupervisor == nil:
		return fmt.Errorf("pool %s: WorkerSupervisor is required", c.Name)
	}
	w := c.Worker
	w.WorkerID, w.PoolName = c.Name+"-w0", c.Name
	return w.Validate()
}

// WorkerName is the id of the i-th worker (1-based) of pool name.
func WorkerName(pool string, i int) string { return fmt.Sprintf("%s-w%d", pool, i) }

// CrashBarrier is how a pool protects itself from crashing workers.
type CrashBarrier struct {
	// TaintDuration keeps a worker whose process crashed (an exit of a
	// class in TaintOn) out of dispatch for that long after its replacement
	// is ready (0 = no taint).
	TaintDuration time.Duration
	// TaintOn are the exit classes that taint (default segfault, abort, killed).
	TaintOn []wk.ExitClass
	// NoRetry turns off the one retry of idempotent calls whose worker died.
	NoRetry bool
	// Breaker opens after Threshold worker crashes within Window: calls
	// then fail at once with circuit_open instead of queueing, until a trial
	// call after OpenFor succeeds. Defaults: 5 crashes in 10s, open 5s;
	// Threshold < 0 turns it off.
	Breaker BreakerConfig
}

func (c CrashBarrier) withDefaults() CrashBarrier {
	if c.TaintOn == nil {
		c.TaintOn = []wk.ExitClass{wk.ExitSegfault, wk.ExitAbort, wk.ExitKilled}
	}
	switch {
	case c.Breaker.Threshold < 0:
		c.Breaker.Threshold = 0 // off
	case c.Breaker.Threshold == 0:
		c.Breaker.Threshold = 5
	}
	if c.Breaker.Window <= 0 {
		c.Breaker.Window = 10 * time.Second
	}
	if c.Breaker.OpenFor <= 0 {
		c.Breaker.OpenFor = 5 * time.Second
	}
	return c
}

func (c CrashBarrier) taints(class wk.ExitClass) bool {
	if c.TaintDuration <= 0 {
		return false
	}
	for _, t := range c.TaintOn {
		if t == class {
			return true
		}
	}
	return false
}
