package snakepit

import (
	"time"

	"github.com/snakepit-go/snakepit/actors/bridge"
	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/worker"
)

// The configuration's own types. They are the package's, not the actors':
// Config converts them at the boundary (internal), so the public API reads
// on its own and the actors may change without changing it.

// Profile is how a pool's workers run tools.
type Profile string

// Profiles.
const (
	ProfileProcess Profile = "process" // one call at a time per process (default)
	ProfileThread  Profile = "thread"  // Threads calls at a time per process
)

// Transport is how the host reaches a worker.
type Transport string

// Transports.
const (
	TransportUnix Transport = "unix" // unix socket (default)
	TransportTCP  Transport = "tcp"  // 127.0.0.1, a port the worker picks
)

// Affinity is how strictly a session's calls stay on its worker.
type Affinity int

// Affinity modes.
const (
	AffinityHint           Affinity = iota // prefer the session's worker (default)
	AffinityStrictQueue                    // wait for it
	AffinityStrictFailFast                 // fail with worker_busy when it is busy
)

// String names the mode.
func (a Affinity) String() string { return pool.Affinity(a).String() }

// BridgeMode is where the host's bridge server (the gRPC server workers
// call back into) listens.
type BridgeMode string

// Bridge modes.
const (
	BridgeInternal BridgeMode = "internal" // 127.0.0.1, a port the OS picks (default)
	BridgeUnix     BridgeMode = "unix"     // a unix socket (mode 0600)
	BridgeExternal BridgeMode = "external" // host:port in BridgeConfig.Address
	BridgeOff      BridgeMode = "off"      // no bridge: no host tools, no sessions from Python
)

// HeartbeatConfig configures the host's heartbeat to each worker. Zero
// values take upstream's defaults (every 2 s, 10 s timeout, 3 missed).
type HeartbeatConfig struct {
	// Disabled: no heartbeat.
	Disabled bool
	// Interval is the pause between the end of one ping and the start of
	// the next (default 2s).
	Interval time.Duration
	// Timeout is one ping's deadline (default 10s).
	Timeout time.Duration
	// MaxMissed is the number of consecutive missed pings that mean "lost"
	// (default 3).
	MaxMissed int
	// InitialDelay is the pause before the first ping (default 0).
	InitialDelay time.Duration
	// Independent: when lost, only publish heartbeat_lost. The default
	// (dependent) kills the worker's process, which is then replaced.
	Independent bool
}

func (h HeartbeatConfig) internal() heartbeat.Config {
	return heartbeat.Config{Disabled: h.Disabled, Interval: h.Interval, Timeout: h.Timeout, MaxMissed: h.MaxMissed,
		InitialDelay: h.InitialDelay, Independent: h.Independent}
}

// ExitClass is how a worker process ended.
type ExitClass string

// The classes of a worker process's end.
const (
	ExitClean    ExitClass = "clean"    // exit code 0
	ExitError    ExitClass = "exit"     // a non-zero exit code
	ExitSegfault ExitClass = "segfault" // SIGSEGV, SIGBUS, SIGILL, SIGFPE (or exit code 139)
	ExitAbort    ExitClass = "abort"    // SIGABRT (or exit code 134)
	ExitKilled   ExitClass = "killed"   // SIGKILL (or exit code 137): the host, or the OOM killer
	ExitSignal   ExitClass = "signal"   // another signal
	ExitUnknown  ExitClass = "unknown"  // no exit status
)

// CrashBarrier configures how a pool protects itself from crashing workers.
type CrashBarrier struct {
	// TaintDuration keeps a worker whose process crashed (an exit of a
	// class in TaintOn) out of dispatch for that long after its replacement
	// is ready (0 = no taint).
	TaintDuration time.Duration
	// TaintOn are the exit classes that taint (default segfault, abort, killed).
	TaintOn []ExitClass
	// NoRetry turns off the one retry of idempotent calls whose worker died.
	NoRetry bool
	// Breaker opens after Threshold worker crashes within Window.
	Breaker BreakerConfig
}

// BreakerConfig configures the crash breaker: after Threshold worker
// crashes within Window, calls fail at once with circuit_open until a
// trial call after OpenFor succeeds. Defaults: 5 crashes in 10 s, open 5 s;
// Threshold < 0 turns it off.
type BreakerConfig struct {
	Threshold int
	Window    time.Duration
	OpenFor   time.Duration
}

func (c CrashBarrier) internal() pool.CrashBarrier {
	out := pool.CrashBarrier{TaintDuration: c.TaintDuration, NoRetry: c.NoRetry,
		Breaker: pool.BreakerConfig{Threshold: c.Breaker.Threshold, Window: c.Breaker.Window, OpenFor: c.Breaker.OpenFor}}
	if c.TaintOn != nil {
		out.TaintOn = make([]worker.ExitClass, len(c.TaintOn))
		for i, e := range c.TaintOn {
			out.TaintOn[i] = worker.ExitClass(e)
		}
	}
	return out
}

// internal is the listener mode for m.
func (m BridgeMode) internal() bridge.Mode { return bridge.Mode(m) }

// PythonTelemetry configures a pool's Python telemetry stream
// (PoolConfig.Telemetry).
type PythonTelemetry struct {
	Enabled bool
	// Allow and Deny are glob patterns on the dotted event name
	// ("tool.execution.*"): an event must match an Allow (when any) and no
	// Deny. Applied in the worker, so filtered events cost no traffic.
	Allow, Deny []string
	// SamplingRate in (0, 1) keeps that share of the events (of those
	// matching SamplingPatterns, when given); 0 keeps all.
	SamplingRate     float64
	SamplingPatterns []string
}
