package snakepit

import (
	"context"

	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// PoolState is where a pool is: starting until its first worker is ready,
// then ready; init_failed when every worker failed its first start;
// stopping at the end.
type PoolState string

// The pool states.
const (
	PoolStarting   PoolState = "starting"
	PoolReady      PoolState = "ready"
	PoolInitFailed PoolState = "init_failed"
	PoolStopping   PoolState = "stopping"
)

// PoolStats is a snapshot of one pool (App.Stats): gauges of now, and
// counters since the pool started.
type PoolStats struct {
	Pool  string
	State PoolState
	// Circuit is the crash breaker's state: closed, open or half_open.
	Circuit string

	// Gauges.
	Workers   int // worker slots
	Ready     int // workers that serve calls
	Available int // free call slots on ready workers
	Busy      int // workers with a call
	InFlight  int // calls running
	Queued    int // calls waiting for a worker
	Tainted   int // workers kept out of dispatch after a crash

	// Counters.
	Requests        uint64 // calls received
	Completed       uint64 // calls that succeeded
	Errors          uint64 // calls answered with an error
	Cancelled       uint64 // calls whose caller left
	QueueTimeouts   uint64 // calls that waited past their deadline
	PoolSaturated   uint64 // calls refused because the queue was full
	CircuitRejected uint64 // calls refused with circuit_open
	Retried         uint64 // idempotent calls run again after their worker died
	WorkerRestarts  uint64 // worker processes started again after an exit
	Recycled        uint64 // workers replaced by the lifecycle or by hand
}

func poolStatsFrom(s *poolpb.Stats) PoolStats {
	return PoolStats{
		Pool: s.GetPool(), State: PoolState(s.GetState()), Circuit: s.GetCircuit(),
		Workers: int(s.GetWorkers()), Ready: int(s.GetReady()), Available: int(s.GetAvailable()), Busy: int(s.GetBusy()),
		InFlight: int(s.GetInFlight()), Queued: int(s.GetQueued()), Tainted: int(s.GetTainted()),
		Requests: s.GetRequests(), Completed: s.GetCompleted(), Errors: s.GetErrors(), Cancelled: s.GetCancelled(),
		QueueTimeouts: s.GetQueueTimeouts(), PoolSaturated: s.GetPoolSaturated(), CircuitRejected: s.GetCircuitRejected(),
		Retried: s.GetRetried(), WorkerRestarts: s.GetWorkerRestarts(), Recycled: s.GetRecycled(),
	}
}

// Stats returns a snapshot of the named pool ("" is the default pool).
func (a *App) Stats(ctx context.Context, poolName string) (_ PoolStats, err error) {
	defer func() { err = public(err) }()
	s, err := askPool[*poolpb.Stats](ctx, a, poolName, &poolpb.GetStats{})
	if err != nil {
		return PoolStats{}, err
	}
	return poolStatsFrom(s), nil
}

// SessionStats are the session store's counters (App.SessionStats).
type SessionStats struct {
	Active        int    // sessions now
	MaxSessions   int    // the quota (0 = none)
	Created       uint64 // sessions created (idempotent re-creates not counted)
	Expired       uint64 // sessions removed because they expired
	Deleted       uint64 // sessions removed by Close
	RejectedQuota uint64 // creations refused by the quota
}

// SessionStats returns the session store's counters.
func (a *App) SessionStats(ctx context.Context) (_ SessionStats, err error) {
	defer func() { err = public(err) }()
	s, err := a.sessions.Stats(ctx)
	if err != nil {
		return SessionStats{}, err
	}
	return sessionStatsFrom(s), nil
}

func sessionStatsFrom(s sessions.Stats) SessionStats {
	return SessionStats{Active: s.Active, MaxSessions: s.MaxSessions, Created: s.Created, Expired: s.Expired,
		Deleted: s.Deleted, RejectedQuota: s.RejectedQuota}
}
