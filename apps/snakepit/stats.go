package snakepit

import (
	"context"
	"sync"
	"time"

	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
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
	Pool  string    `json:"pool"`
	State PoolState `json:"state"`
	// Circuit is the crash breaker's state: closed, open or half_open.
	Circuit string `json:"circuit"`

	// Gauges.
	Workers   int `json:"workers"`   // worker slots
	Ready     int `json:"ready"`     // workers that serve calls
	Available int `json:"available"` // free call slots on ready workers
	Busy      int `json:"busy"`      // workers with a call
	InFlight  int `json:"in_flight"` // calls running
	Queued    int `json:"queued"`    // calls waiting for a worker
	Tainted   int `json:"tainted"`   // workers kept out of dispatch after a crash

	// Counters.
	Requests        uint64 `json:"requests"`         // calls received
	Completed       uint64 `json:"completed"`        // calls a worker finished, with a result or an error
	Errors          uint64 `json:"errors"`           // calls answered with an error
	Cancelled       uint64 `json:"cancelled"`        // calls whose caller left
	QueueTimeouts   uint64 `json:"queue_timeouts"`   // calls that waited past their deadline
	PoolSaturated   uint64 `json:"pool_saturated"`   // calls refused because the queue was full
	CircuitRejected uint64 `json:"circuit_rejected"` // calls refused with circuit_open
	Retried         uint64 `json:"retried"`          // idempotent calls run again after their worker died
	WorkerRestarts  uint64 `json:"worker_restarts"`  // worker processes started again after an exit
	Recycled        uint64 `json:"recycled"`         // workers replaced by the lifecycle or by hand

	// SharedMemory counts the pool's shared-memory segments (a pool of
	// this node with SharedMemoryThreshold ≥ 0; zero otherwise).
	SharedMemory SharedMemoryStats `json:"shared_memory"`
}

// SharedMemoryStats counts a pool's shared-memory segments.
type SharedMemoryStats struct {
	Lent      int `json:"lent"`       // lent to running calls, or held by a WithZeroCopy result not yet released
	Idle      int `json:"idle"`       // kept for reuse (at most 256 MiB, or a quarter of /dev/shm)
	IdleBytes int `json:"idle_bytes"` // their size
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
	st := poolStatsFrom(s)
	if d := a.shmDirs[a.poolName(poolName)]; d != nil {
		ss := d.Stats()
		st.SharedMemory = SharedMemoryStats{Lent: ss.Lent, Idle: ss.Idle, IdleBytes: ss.IdleBytes}
	}
	return st, nil
}

// SessionStats are the session store's counters (App.SessionStats).
type SessionStats struct {
	Active        int    `json:"active"`         // sessions now
	MaxSessions   int    `json:"max_sessions"`   // the quota (0 = none)
	Created       uint64 `json:"created"`        // sessions created (idempotent re-creates not counted)
	Expired       uint64 `json:"expired"`        // sessions removed because they expired
	Deleted       uint64 `json:"deleted"`        // sessions removed by Close
	RejectedQuota uint64 `json:"rejected_quota"` // creations refused by the quota
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

// WorkerInfo is one worker slot of a pool (App.Workers): its state, and
// for a slot with a serving generation its process and counters.
type WorkerInfo struct {
	ID string `json:"id"`
	// State is the slot's state: queued, starting, ready, restarting,
	// draining, stopping or dead.
	State      string    `json:"state"`
	OSPid      int       `json:"os_pid,omitempty"`
	Generation uint64    `json:"generation"`
	StartedAt  time.Time `json:"started_at,omitzero"` // when this generation became ready
	LastActive time.Time `json:"last_active,omitzero"`
	// Requests is the successful calls of this generation; MaxRequests its
	// recycle limit (0 = none).
	Requests    int  `json:"requests"`
	MaxRequests int  `json:"max_requests,omitempty"`
	InFlight    int  `json:"in_flight"`
	Draining    bool `json:"draining,omitempty"`
	Tainted     bool `json:"tainted,omitempty"`
	// RSSBytes is the resident memory of the worker's Python process tree,
	// read at most every 10 s (0 when it has no process or it could not be
	// read).
	RSSBytes uint64 `json:"rss_bytes,omitempty"`
}

// Uptime is how long this generation has served, as of now.
func (w WorkerInfo) Uptime(now time.Time) time.Duration {
	if w.StartedAt.IsZero() {
		return 0
	}
	return now.Sub(w.StartedAt)
}

// Workers returns every worker slot of the named pool ("" is the default
// pool) in slot order, with the memory of each live worker's process tree
// (read at most every 10 s).
func (a *App) Workers(ctx context.Context, poolName string) (_ []WorkerInfo, err error) {
	defer func() { err = public(err) }()
	ws, err := askPool[*pool.WorkerStates](ctx, a, poolName, &pool.GetWorkerStates{All: true})
	if err != nil {
		return nil, err
	}
	out := make([]WorkerInfo, 0, len(ws.Workers))
	for _, w := range ws.Workers {
		info := WorkerInfo{ID: w.WorkerID, State: w.Slot.String(), OSPid: w.OSPid, Generation: w.Generation,
			StartedAt: w.StartedAt, LastActive: w.LastActive, Requests: w.Requests, MaxRequests: w.MaxRequests,
			InFlight: w.InFlight, Draining: w.Draining, Tainted: w.Tainted}
		if w.OSPid > 0 {
			info.RSSBytes = a.rss.get(ctx, w.OSPid)
		}
		out = append(out, info)
	}
	return out, nil
}

// rssCache keeps each worker's process-tree RSS for rssMaxAge: reading a
// tree walks /proc (a few ms for a worker with many threads), which the
// status page (every 2 s) and a metrics scrape would otherwise both pay for
// every worker, each time.
type rssCache struct {
	mu   sync.Mutex
	seen map[int]rssAt
}

type rssAt struct {
	bytes uint64
	at    time.Time
}

const rssMaxAge = 10 * time.Second

func (c *rssCache) get(ctx context.Context, pid int) uint64 {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.seen[pid]; ok && now.Sub(r.at) < rssMaxAge {
		return r.bytes
	}
	if c.seen == nil || len(c.seen) > 4096 {
		c.seen = map[int]rssAt{} // pids of workers long gone
	}
	rss, err := lifecycle.TreeRSS(ctx, pid)
	if err != nil {
		delete(c.seen, pid)
		return 0
	}
	c.seen[pid] = rssAt{rss, now}
	return rss
}

// ForkServerInfo describes a pool's fork server (PoolConfig.ForkServer).
type ForkServerInfo struct {
	// PID is the running zygote's OS pid, 0 while none runs (it starts
	// with the pool's first worker and is restarted when it dies).
	PID    int  `json:"pid,omitempty"`
	Ready  bool `json:"ready"`
	Starts int  `json:"starts"` // zygotes started so far: restarts + 1
}

// ForkServer reports the named pool's fork server ("" is the default
// pool); ok is false when the pool has none.
func (a *App) ForkServer(poolName string) (info ForkServerInfo, ok bool) {
	fs := a.forkServers[a.poolName(poolName)]
	if fs == nil {
		return ForkServerInfo{}, false
	}
	i := fs.Info()
	return ForkServerInfo{PID: i.PID, Ready: i.Ready, Starts: i.Starts}, true
}

// SharedMemoryDir is the directory of this run's shared-memory segments
// (PoolConfig.SharedMemoryThreshold): on /dev/shm when the system has it,
// else the run directory; "" when no pool uses shared memory.
func (a *App) SharedMemoryDir() string { return a.shmDir }
