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
	if c.StartupConcurrency <= 0 {
		c.StartupConcurrency = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.WorkerProps == nil {
		c.WorkerProps = wk.Props
	}
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
	case c.WorkerSupervisor == nil:
		return fmt.Errorf("pool %s: WorkerSupervisor is required", c.Name)
	}
	w := c.Worker
	w.WorkerID, w.PoolName = c.Name+"-w0", c.Name
	return w.Validate()
}

// WorkerName is the id of the i-th worker (1-based) of pool name.
func WorkerName(pool string, i int) string { return fmt.Sprintf("%s-w%d", pool, i) }
