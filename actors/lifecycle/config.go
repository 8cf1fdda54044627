package lifecycle

import (
	"time"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/worker"
)

// Config is everything a pool's workers are started and recycled with. It
// is built once per pool from the pool's configuration; the pool's worker
// template (WorkerConfig) and its recycling limits (Limits) come from it,
// so the first start of a worker and every replacement — after a crash, a
// recycle or a resize — are made from the same values.
type Config struct {
	PoolName       string
	PoolIdentifier string
	Profile        worker.Profile
	WorkerModule   string // the worker implementation (worker.Module)
	Adapter        string
	AdapterArgs    []string
	AdapterEnv     []string
	Threads        int
	Transport      worker.Transport

	Python         string
	Script         string
	ThreadedScript string
	PythonPath     []string

	ReadyTimeout time.Duration
	StopGrace    time.Duration
	// ExecutionTTL bounds one call: past it the call gets deadline_exceeded
	// and its (hung) worker is killed and replaced (0 = none).
	ExecutionTTL time.Duration
	// CancelGrace: how long a tool may run on after its caller is gone
	// before the worker is replaced (worker.Config.CancelGrace).
	CancelGrace time.Duration
	// AllowPickle lets workers unpickle binary parameters marked pickle.
	AllowPickle bool

	TTL               time.Duration
	IdleTTL           time.Duration
	MaxRequests       int
	MaxRequestsJitter int
	MemoryThresholdMB int

	Heartbeat heartbeat.Config
}

// Limits are the recycling limits.
func (c Config) Limits() Limits {
	return Limits{TTL: c.TTL, IdleTTL: c.IdleTTL, MaxRequests: c.MaxRequests,
		MaxRequestsJitter: c.MaxRequestsJitter, MemoryThresholdMB: c.MemoryThresholdMB}
}

// WorkerConfig is the template every worker of the pool starts from (the
// pool sets WorkerID and its own PID per worker). Host-wide settings (run
// id, instance, bridge address, registries, logger) are filled by the
// caller.
func (c Config) WorkerConfig() worker.Config {
	return worker.Config{
		PoolName: c.PoolName, PoolIdentifier: c.PoolIdentifier,
		Python: c.Python, Script: c.Script, ThreadedScript: c.ThreadedScript, PythonPath: clone(c.PythonPath),
		Adapter: c.Adapter, AdapterArgs: clone(c.AdapterArgs), AdapterEnv: clone(c.AdapterEnv),
		Profile: c.Profile, Threads: c.Threads, Transport: c.Transport,
		ReadyTimeout: c.ReadyTimeout, StopGrace: c.StopGrace, ExecutionTTL: c.ExecutionTTL,
		CancelGrace: c.CancelGrace, AllowPickle: c.AllowPickle,
		Heartbeat: c.Heartbeat,
	}
}

func clone(s []string) []string {
	if s == nil {
		return nil
	}
	return append([]string(nil), s...)
}
