package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/names"
	"github.com/snakepit-go/snakepit/internal/shm"
)

// Profile is how a worker runs tools: one call at a time in its own process,
// or many at a time on threads of one process.
type Profile string

// Profiles.
const (
	ProfileProcess Profile = "process" // grpc_server.py, capacity 1
	ProfileThread  Profile = "thread"  // grpc_server_threaded.py --max-workers N, capacity N
)

// Environment markers every worker (and every process its tools start,
// unless they clear their environment) carries.
const (
	EnvRunID         = "SNAKEPIT_RUN_ID"
	EnvInstanceName  = "SNAKEPIT_INSTANCE_NAME"
	EnvInstanceToken = "SNAKEPIT_INSTANCE_TOKEN"
)

// Environment the host sets for a worker and nothing else may: the worker's
// secrets (the Python side removes them from its environment once read),
// the pickle switch and the worker's own heartbeat settings.
const (
	EnvServerSecret    = "SNAKEPIT_SERVER_SECRET" // callers of the worker must present it
	EnvWorkerSecret    = "SNAKEPIT_WORKER_SECRET" // the worker presents it to the host's bridge
	EnvAllowPickle     = "SNAKEPIT_ALLOW_PICKLE"
	EnvHeartbeatConfig = "SNAKEPIT_HEARTBEAT_CONFIG"
	// What upstream's server has no flag for: our server reads these
	// (upstream's ignores them and keeps to TCP and its own defaults).
	EnvWorkerID = "SNAKEPIT_WORKER_ID"
	EnvListen   = "SNAKEPIT_LISTEN"
	EnvLifeline = "SNAKEPIT_LIFELINE"
)

// Credentials is where a worker's bridge secret is granted before its
// process starts and revoked once it has ended (bridge.Credentials).
type Credentials interface {
	Grant(workerID, secret string)
	Revoke(workerID, secret string)
}

// Transport is how the host reaches the worker's gRPC server.
type Transport string

// Transports.
const (
	TransportUnix Transport = "unix" // a unix socket in the worker's private directory (default on Unix)
	TransportTCP  Transport = "tcp"  // 127.0.0.1 on a port the worker picks
)

// Config says how to start one worker. The pool builds it once and every
// (re)start of the worker uses it unchanged.
type Config struct {
	WorkerID       string
	PoolName       string
	PoolIdentifier string

	// Python is the interpreter; Script the server (grpc_server.py). When
	// Profile is thread and ThreadedScript is set, ThreadedScript is used.
	Python         string
	Script         string
	ThreadedScript string
	// PythonPath entries are prepended to PYTHONPATH (the script's directory
	// always is).
	PythonPath []string
	// Adapter is the adapter class path; AdapterArgs are extra server flags.
	Adapter     string
	AdapterArgs []string
	// AdapterEnv is added to the worker's environment (KEY=VALUE).
	AdapterEnv []string
	Profile    Profile
	Threads    int // thread profile: concurrent calls (capacity)
	// MaxCallsPerWorker caps the calls a process-profile worker runs at
	// once when its adapter declares more than one (max_concurrency);
	// 0: what the adapter declares.
	MaxCallsPerWorker int
	Transport         Transport

	RunID         string
	InstanceName  string
	InstanceToken string
	// HostAddress is the host's bridge server (--elixir-address); empty when
	// there is none.
	HostAddress string
	// Credentials receives each generation's bridge secret (optional; the
	// bridge refuses the worker without it).
	Credentials Credentials
	// AllowPickle lets the worker unpickle binary parameters a request marks
	// binary_format:<name>=pickle. Off by default: unpickling runs code.
	AllowPickle bool

	// TempDir holds each generation's private directory (ready file, unix
	// socket); the App gives its run directory. Default: os.TempDir().
	TempDir string

	ReadyTimeout time.Duration // process start to ready file (default 30s)
	StopGrace    time.Duration // SIGTERM to SIGKILL (default 2s)
	// ExitWait bounds how long a failed call waits for the process's exit
	// status, so it can report worker_exit (default 2s).
	ExitWait time.Duration
	// ExecutionTTL bounds one call (0 = none): past it the call gets
	// deadline_exceeded and the process is killed and replaced, whatever
	// the caller's deadline.
	ExecutionTTL time.Duration
	// CancelGrace is how long a call's tool may keep running after its
	// caller is gone (cancel, deadline) before the worker is killed and
	// replaced (default 3s; the worker is out of rotation meanwhile).
	CancelGrace time.Duration
	// Heartbeat configures the monitor that pings the worker once ready.
	Heartbeat heartbeat.Config

	// ParentDeathSignal is sent to the Python process when the host dies
	// (Linux; default SIGKILL). The stdin lifeline covers other systems.
	ParentDeathSignal syscall.Signal

	// Processes records each spawned process in the process registry
	// (optional): reserved before the spawn, activated after it, durable
	// before the worker reports ready, removed once reaped.
	Processes ProcessRecorder
	// Registry receives the worker's registration (optional).
	Registry *actor.PID
	// Pool receives Ready, Down and StartFailed notices (optional).
	Pool *actor.PID

	Logger *slog.Logger
	// PythonLogLevel is the worker's Python logging level (debug, info,
	// warning, error, none; SNAKEPIT_LOG_LEVEL): its records reach Logger
	// at their own levels, other output at info. Empty: the worker's
	// default (warning), unless SNAKEPIT_LOG_LEVEL is in the host's
	// environment.
	PythonLogLevel string
	// CUDADevices: the worker with slot number N (its id ends in -wN) gets
	// CUDA_VISIBLE_DEVICES=CUDADevices[(N-1) % len] and SNAKEPIT_DEVICE=cuda:0.
	CUDADevices []string
	// Telemetry reads the worker's Python telemetry stream (off by default).
	Telemetry TelemetryConfig
	// SharedMemory, when set, carries binary parameters and results of at
	// least its threshold through shared-memory segments in its directory.
	SharedMemory *shm.Dir
	// ForkServer, when set, forks the worker from the pool's pre-imported
	// fork server instead of spawning a new interpreter (NewForkServer).
	ForkServer *ForkServer
	// ForkPreload are further modules the fork server imports before it
	// forks ($SNAKEPIT_FORK_PRELOAD).
	ForkPreload []string

	// extras are what a fork server's own process adds to the launch.
	extras launchExtras
	// secrets of the generation being started (set by the worker actor).
	secrets secrets
	// listen is the unix socket the worker serves ("unix:/path"; "" for TCP).
	listen string
}

// launchExtras are what a fork server's own process adds to a worker's
// launch: flags, environment, and files (fd 3 on) it inherits.
type launchExtras struct {
	args  []string
	env   []string
	files []*os.File
}

// secrets are one generation's: the server secret callers must present to
// the worker, and the worker secret it presents to the bridge.
type secrets struct{ server, worker string }

// DefaultCancelGrace is Config.CancelGrace's default.
const DefaultCancelGrace = 3 * time.Second

// Capacity is how many calls the worker runs at once.
func (c Config) Capacity() int {
	if c.Profile == ProfileThread && c.Threads > 0 {
		return c.Threads
	}
	return 1
}

// ShutdownTimeout bounds a worker actor's stop: SIGTERM grace, the SIGKILL
// wait, the wait for its call goroutines, and a margin. Its supervisor
// gives it this long.
func (c Config) ShutdownTimeout() time.Duration {
	c = c.withDefaults()
	return c.StopGrace + KillWait + CallsWait + StopMargin
}

// script is the server file this worker runs.
func (c Config) script() string {
	if c.Profile == ProfileThread && c.ThreadedScript != "" {
		return c.ThreadedScript
	}
	return c.Script
}

// withDefaults fills zero durations and the transport.
func (c Config) withDefaults() Config {
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 30 * time.Second
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 2 * time.Second
	}
	if c.ExitWait <= 0 {
		c.ExitWait = DefaultExitWait
	}
	if c.CancelGrace <= 0 {
		c.CancelGrace = DefaultCancelGrace
	}
	if c.Transport == "" {
		c.Transport = TransportUnix
	}
	if c.Profile == "" {
		c.Profile = ProfileProcess
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ParentDeathSignal == 0 {
		c.ParentDeathSignal = syscall.SIGKILL
	}
	return c
}

// ProcessRecorder is the process registry as a worker uses it
// (procreg.Client implements it).
type ProcessRecorder interface {
	Reserve(e procreg.Entry)
	Activate(key string, osPid, pgid int)
	Remove(key string)
	Sync(ctx context.Context) error
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case !names.Valid(c.WorkerID):
		return fmt.Errorf("worker: WorkerID %q must be letters, digits, '-' and '_'", c.WorkerID)
	case c.PoolName == "":
		return errors.New("worker: PoolName is required")
	case c.Python == "":
		return errors.New("worker: Python is required")
	case c.Script == "" || !filepath.IsAbs(c.Script):
		return fmt.Errorf("worker: Script must be an absolute path, got %q", c.Script)
	case c.Profile != "" && c.Profile != ProfileProcess && c.Profile != ProfileThread:
		return fmt.Errorf("worker: unknown profile %q", c.Profile)
	case c.Transport != "" && c.Transport != TransportUnix && c.Transport != TransportTCP:
		return fmt.Errorf("worker: unknown transport %q", c.Transport)
	case c.Profile == ProfileThread && c.Threads < 1:
		return errors.New("worker: the thread profile needs Threads ≥ 1")
	}
	return nil
}
