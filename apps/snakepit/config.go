package snakepit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/apps/snakepit/hardware"
	"github.com/snakepit-go/snakepit/internal/bundle"
	"github.com/snakepit-go/snakepit/internal/instance"
	"github.com/snakepit-go/snakepit/internal/names"
	"github.com/snakepit-go/snakepit/internal/pyenv"
	"github.com/snakepit-go/snakepit/priv"
)

// DefaultAdapter is the adapter a pool runs when none is configured: the
// showcase adapter of the bundled Python bridge.
const DefaultAdapter = "snakepit_bridge.adapters.showcase.ShowcaseAdapter"

// EnvRemoteSecret is where Config.Remote.Secret comes from when not set.
const EnvRemoteSecret = "SNAKEPIT_REMOTE_SECRET"

// DefaultPool is the name of the pool used when a call names none.
const DefaultPool = "default"

// PoolConfig is one named pool of Python workers. Zero values take the
// defaults noted (upstream Snakepit's where they make sense).
type PoolConfig struct {
	Name string // required, unique
	// Size is the number of workers (default: 2 × CPUs, like upstream).
	Size int
	// Adapter is the Python adapter class (default DefaultAdapter).
	Adapter string
	// AdapterArgs are extra flags for the worker server.
	AdapterArgs []string
	// AdapterEnv is added to each worker's environment ("KEY=VALUE").
	AdapterEnv []string
	// Profile: process (default) or thread; Threads is the thread profile's
	// concurrency per worker (default 10, upstream's threads_per_worker).
	Profile Profile
	Threads int
	// MaxCallsPerWorker caps the calls a process-profile worker runs at
	// once. An adapter that can run several (an asyncio adapter setting
	// max_concurrency = N, e.g. AsyncShowcaseAdapter) gets that many call
	// slots per worker, dispatched fairly (the least loaded worker first);
	// 0 (default): what the adapter declares (1 unless it says more).
	MaxCallsPerWorker int
	// Transport: unix socket (default) or TCP loopback.
	Transport Transport
	// ForkServer starts the pool's workers by forking them from one Python
	// process (a zygote) that imported grpc, the bridge and the adapter's
	// module once, instead of starting a new interpreter per worker: starts
	// are several times faster and the imported pages are shared. Off by
	// default; Linux only, and with the bundled worker script (or one built
	// on snakepit_bridge.server). ForkPreload names further modules the
	// zygote imports (numpy, torch, …: $SNAKEPIT_FORK_PRELOAD). A module
	// that starts threads or opens devices at import must not be preloaded:
	// only the forking thread survives a fork. See
	// README_PROCESS_MANAGEMENT.md, "Fork server".
	ForkServer  bool
	ForkPreload []string
	// MaxQueue bounds waiting calls (default 1000). TimeoutProfile (default
	// Config.TimeoutProfile, else balanced) sets the three budgets below
	// that are left zero: QueueTimeout bounds the wait in the queue (10s
	// under balanced); ExecuteTimeout is a unary call's budget and
	// StreamTimeout a stream's when the caller's context has no deadline
	// (300s and 900s under balanced).
	MaxQueue       int
	TimeoutProfile TimeoutProfile
	QueueTimeout   time.Duration
	ExecuteTimeout time.Duration
	StreamTimeout  time.Duration
	// StartupConcurrency is how many workers start at once (default 8).
	StartupConcurrency int
	// ReadyTimeout bounds one worker's start (default 30s).
	ReadyTimeout time.Duration
	// StopGrace is SIGTERM to SIGKILL when a worker stops (default 2s).
	StopGrace time.Duration
	// Affinity is the default session affinity (default hint).
	Affinity Affinity
	// CUDADevices pins the pool's workers to NVIDIA GPUs, one each, round
	// robin: worker N gets CUDA_VISIBLE_DEVICES=CUDADevices[(N-1) % len]
	// (indices or UUIDs) and SNAKEPIT_DEVICE=cuda:0 (the one it sees).
	// []string{"auto"}: every GPU NVML finds (none found: the workers run
	// without, and Start logs why). Empty: the workers see what the host
	// sees.
	CUDADevices []string
	// Telemetry reads each worker's Python telemetry stream (upstream's
	// StreamTelemetry: the bridge's tool.execution.stop/exception events and
	// what adapters emit with snakepit_bridge.telemetry) into the App's
	// events as PythonEvent, with the pool and worker. Off by default: the
	// worker then builds an event per call.
	Telemetry PythonTelemetry

	// Recycling (zero = off). TTL: a worker older than this is replaced;
	// IdleTTL: one that ran no call for this long; MaxRequests: one that
	// served this many successful calls, plus a random 0..MaxRequestsJitter
	// per worker so they do not all recycle at once; MemoryThresholdMB: one
	// whose Python process tree's RSS exceeds this. Recycling is graceful
	// and one worker at a time.
	TTL               time.Duration
	IdleTTL           time.Duration
	MaxRequests       int
	MaxRequestsJitter int
	MemoryThresholdMB int
	// ExecutionTTL bounds one call (0 = none): past it the call gets
	// deadline_exceeded and its worker, presumed hung, is killed and
	// replaced, whatever the caller's deadline.
	ExecutionTTL time.Duration
	// CancelGrace is how long a tool may keep running after its caller is
	// gone (cancelled, deadline passed) before its worker is killed and
	// replaced, so no CPU is spent for nobody (default 3s). The worker takes
	// no call meanwhile.
	CancelGrace time.Duration
	// SharedMemoryThreshold: binary parameters and binary results of at
	// least this many bytes travel through shared memory (a segment in a
	// private directory on /dev/shm, mapped by the worker without a copy)
	// instead of gRPC. 0: 1 MiB; negative: off. See WithZeroCopy for results
	// without a copy on the Go side. Streams' chunks always go by gRPC.
	SharedMemoryThreshold int
	// AllowPickle lets this pool's workers unpickle binary parameters a
	// request marks binary_format:<name>=pickle (off by default). Unpickling
	// runs code chosen by whoever built the request: turn it on only when
	// every caller of the pool is trusted. Requests forwarded through the
	// host bridge never get pickle decoded.
	AllowPickle bool
	// DrainTimeout bounds how long a recycled worker may finish its calls
	// (default 30s).
	DrainTimeout time.Duration
	// Heartbeat: the host pings each worker, on by default with upstream's
	// settings (every 2s, 10s timeout, 3 missed) unless Disabled; the worker
	// gets the same settings for its own heartbeat to the host
	// (SNAKEPIT_HEARTBEAT_CONFIG). Dependent (default): after MaxMissed
	// missed pings the worker is replaced; Independent: only reported.
	Heartbeat HeartbeatConfig
	// CrashBarrier: taint after a crash, retry of idempotent calls, the
	// crash breaker.
	CrashBarrier CrashBarrier
	// ReconcileBackoff is the first delay before a worker that could not
	// start is started again; it doubles per failure up to 30s (default 1s).
	ReconcileBackoff time.Duration
}

// Config configures an App.
type Config struct {
	// Pools to start; none means one DefaultPool of the default size and adapter.
	Pools []PoolConfig
	// Python is the interpreter (default: $SNAKEPIT_PYTHON, python3,
	// /usr/bin/python3 — the first with Python 3.10+ and grpc).
	Python string
	// Script is the worker server (default: grpc_server.py in PrivDir);
	// ThreadedScript the thread-profile server (grpc_server_threaded.py).
	// Any server that speaks the bridge protocol and the launch contract
	// (README_GRPC.md) can be the worker.
	Script         string
	ThreadedScript string
	// PrivDir is the directory holding the Python bridge (default:
	// $SNAKEPIT_PRIV_DIR, else the copy embedded in the module, written to
	// a versioned cache directory; see FindPrivDir).
	PrivDir string
	// PythonPath entries are added to the workers' PYTHONPATH.
	PythonPath []string
	// PythonBridge chooses where workers import snakepit_bridge from when
	// neither Script nor PrivDir (nor $SNAKEPIT_PRIV_DIR) is set. Auto (the
	// default, or $SNAKEPIT_PYTHON_BRIDGE): the package installed for
	// Python (pip install) if it speaks this host's protocol, else the copy
	// embedded in this module. Installed: that package or a start error.
	// Embedded: always the embedded copy.
	PythonBridge PythonBridgeSource
	// InstanceName and InstanceToken scope this deployment's processes:
	// both are on every worker's command line, and cleanup only ever kills
	// processes carrying this instance's token. Defaults:
	// $SNAKEPIT_INSTANCE_NAME, else "default"; $SNAKEPIT_INSTANCE_TOKEN,
	// else a random token kept in <DataDir>/<instance>/token (made once).
	InstanceName  string
	InstanceToken string
	// DataDir holds each instance's state: the process registry
	// (<DataDir>/<instance>/processes.db) and its token. Default:
	// $SNAKEPIT_DATA_DIR, else $XDG_STATE_HOME/snakepit, else
	// ~/.local/state/snakepit.
	DataDir string
	// RogueCleanup configures the sweep at start (README_PROCESS_MANAGEMENT.md).
	RogueCleanup RogueCleanup
	// CleanupGrace is SIGTERM to SIGKILL for processes cleanup ends
	// (default 2s).
	CleanupGrace time.Duration
	// Bridge is the gRPC server workers call back into (host tools,
	// sessions); loopback on an OS-picked port by default.
	Bridge BridgeConfig
	// Sessions configures the session store.
	Sessions SessionConfig
	// LifecycleInterval is how often TTL, idle and memory limits are
	// checked (default 60s; max requests is checked on every call).
	LifecycleInterval time.Duration
	// WorkerMaxRestarts / WorkerRestartWindow are the worker supervisor's
	// restart intensity (default: 3 + 2 × total workers within 5s).
	WorkerMaxRestarts   int
	WorkerRestartWindow time.Duration
	// RemoteAddress, when set ("host:port"; port 0 picks one), makes Start
	// enable protoactor remote on the App's actor system so actors on other
	// nodes can call its pools by PID (App.Pool). StartIn ignores it: the
	// embedding program owns its system and starts remote itself.
	RemoteAddress string
	// Remote authenticates the nodes to each other (Remote.Secret is
	// required with RemoteAddress) and may add TLS.
	Remote RemoteAuth
	// Cluster, with a Name, joins a cluster of nodes whose pools are
	// reached by name (see ClusterConfig); it needs RemoteAddress.
	Cluster ClusterConfig
	// OnEvent, when set, receives every event of the catalogue (see Event)
	// from the very start, as App.Subscribe delivers them: on a goroutine
	// of its own, never holding up a pool. CallEvents adds the three events
	// of each call.
	OnEvent    func(Event)
	CallEvents bool
	// TracerProvider, when set, traces each App.Execute with a client span
	// ("snakepit.execute <tool>") and each host tool a worker calls with a
	// server span ("snakepit.host_tool <name>"). Whether set or not, the
	// trace context of a traced call (W3C traceparent) goes to the worker,
	// whose tool span is its child, and from the tool's host-tool calls back
	// to the host: one trace across Go, Python and host tools.
	TracerProvider trace.TracerProvider
	// MeterProvider, when set, receives the App's OpenTelemetry metrics:
	// calls by pool, tool and outcome with their duration, queue wait and
	// execution time, and each pool's queue depth, calls in flight,
	// workers by state, restarts, recycles and Python memory (see
	// README_OPERATIONS.md). Nil: no metrics, nothing measured.
	MeterProvider metric.MeterProvider
	// TimeoutProfile is the pools' default timeout profile (default
	// balanced); PoolConfig.TimeoutProfile overrides it per pool and
	// WithTimeoutProfile per call.
	TimeoutProfile TimeoutProfile
	// PythonLogLevel is the workers' Python logging level: debug, info,
	// warning, error or none (default $SNAKEPIT_LOG_LEVEL, else info). Their
	// records reach Logger at their own levels with the worker's pool and
	// id (and the call's correlation_id); other output (prints) at info.
	PythonLogLevel string
	// Deprecated: the workers' output is logged by default now (see
	// PythonLogLevel); this field has no effect.
	LogPythonOutput bool
	Logger          *slog.Logger
}

// PythonBridgeSource is where workers import snakepit_bridge from (Config.PythonBridge).
type PythonBridgeSource string

// The PythonBridge sources.
const (
	PythonBridgeAuto      PythonBridgeSource = ""
	PythonBridgeEmbedded  PythonBridgeSource = "embedded"
	PythonBridgeInstalled PythonBridgeSource = "installed"
)

// EnvPythonBridge sets Config.PythonBridge when the field is empty.
const EnvPythonBridge = "SNAKEPIT_PYTHON_BRIDGE"

// RogueCleanup is the sweep at start: it kills processes that run an owned
// script, carry a run marker with another run id and this instance's token,
// and whose host is gone. It never matches a process without a run marker.
type RogueCleanup struct {
	// Enabled: nil means enabled (the default); Bool(false) disables it.
	Enabled *bool
	// Scripts are the owned script names (default grpc_server.py and
	// grpc_server_threaded.py); add a custom worker script's name here.
	Scripts []string
	// RunMarkers are the flags that carry a run id (default
	// --snakepit-run-id and --run-id).
	RunMarkers []string
}

// Bool returns a pointer to v, for optional settings such as
// RogueCleanup.Enabled.
func Bool(v bool) *bool { return &v }

// withDefaults returns c with every default applied and paths resolved.
func (c Config) withDefaults(ctx context.Context) (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if len(c.Pools) == 0 {
		c.Pools = []PoolConfig{{Name: DefaultPool}}
	}
	pools := make([]PoolConfig, len(c.Pools))
	total := 0
	for i, p := range c.Pools {
		if p.Size == 0 {
			p.Size = 2 * runtime.NumCPU()
		}
		if p.Adapter == "" {
			p.Adapter = DefaultAdapter
		}
		if p.Profile == "" {
			p.Profile = ProfileProcess
		}
		if p.Profile == ProfileThread && p.Threads == 0 {
			p.Threads = 10
		}
		if p.Transport == "" {
			p.Transport = defaultTransport()
		}
		if len(p.CUDADevices) == 1 && p.CUDADevices[0] == "auto" {
			cuda := hardware.DetectCUDA()
			p.CUDADevices = hardware.Indices(cuda.GPUs)
			if !cuda.Available {
				c.Logger.Warn("pool asked for every GPU, but there is none: its workers run without", "pool", p.Name, "why", cuda.Reason)
			}
		}
		if err := p.applyProfile(c.TimeoutProfile); err != nil {
			return c, &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
				Message: fmt.Sprintf("invalid config: pool %q: %v", p.Name, err)}
		}
		pools[i] = p
		total += p.Size
	}
	c.Pools = pools
	if c.WorkerMaxRestarts == 0 {
		c.WorkerMaxRestarts = 3 + 2*total
	}
	if c.WorkerRestartWindow <= 0 {
		c.WorkerRestartWindow = 5 * time.Second
	}
	if c.InstanceName == "" {
		c.InstanceName = os.Getenv(instance.EnvName)
	}
	if c.InstanceName == "" {
		c.InstanceName = instance.DefaultName
	}
	if c.InstanceToken == "" {
		c.InstanceToken = os.Getenv(instance.EnvToken)
	}
	c.DataDir = instance.DataDir(c.DataDir)
	if c.PythonLogLevel == "" {
		c.PythonLogLevel = os.Getenv("SNAKEPIT_LOG_LEVEL")
	}
	if c.PythonLogLevel == "" {
		c.PythonLogLevel = "info"
	}
	if c.RogueCleanup.Enabled == nil {
		c.RogueCleanup.Enabled = Bool(true)
	}

	if c.Python == "" {
		interp, err := pyenv.Find(ctx)
		if err != nil {
			return c, fmt.Errorf("snakepit: %w", err)
		}
		c.Python = interp.Path
	}
	if c.PythonBridge == "" {
		c.PythonBridge = PythonBridgeSource(os.Getenv(EnvPythonBridge))
	}
	if c.PythonBridge == "auto" {
		c.PythonBridge = PythonBridgeAuto
	}
	if c.Script == "" {
		if err := c.findBridge(ctx); err != nil {
			return c, err
		}
	}
	var err error
	if c.Script, err = filepath.Abs(c.Script); err != nil {
		return c, err
	}
	if c.ThreadedScript != "" {
		if c.ThreadedScript, err = filepath.Abs(c.ThreadedScript); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Validate reports every problem with the pools of c (defaults applied).
func (c Config) validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, p := range c.Pools {
		switch {
		case p.Name == "":
			errs = append(errs, fmt.Errorf("pool %d: Name is required", i))
		case seen[p.Name]:
			errs = append(errs, fmt.Errorf("pool %q is configured twice", p.Name))
		case !names.Valid(p.Name):
			errs = append(errs, fmt.Errorf("pool %q: names may hold only letters, digits, '-' and '_'", p.Name))
		}
		seen[p.Name] = true
		if p.Size < 1 {
			errs = append(errs, fmt.Errorf("pool %q: Size must be at least 1, got %d", p.Name, p.Size))
		}
		if p.MaxQueue < 0 {
			errs = append(errs, fmt.Errorf("pool %q: MaxQueue must not be negative", p.Name))
		}
		if p.Profile != ProfileProcess && p.Profile != ProfileThread {
			errs = append(errs, fmt.Errorf("pool %q: unknown Profile %q (process or thread)", p.Name, p.Profile))
		}
		if p.ForkServer && !worker.ForkServerSupported {
			errs = append(errs, fmt.Errorf("pool %q: ForkServer is supported on Linux only", p.Name))
		}
		for _, m := range p.ForkPreload {
			if !moduleName.MatchString(m) {
				errs = append(errs, fmt.Errorf("pool %q: ForkPreload %q is not a Python module name", p.Name, m))
			}
		}
		if p.Transport != TransportUnix && p.Transport != TransportTCP {
			errs = append(errs, fmt.Errorf("pool %q: unknown Transport %q (unix or tcp)", p.Name, p.Transport))
		}
		if p.Threads < 0 || p.MaxCallsPerWorker < 0 || p.QueueTimeout < 0 || p.ExecuteTimeout < 0 || p.StreamTimeout < 0 || p.ReadyTimeout < 0 || p.StopGrace < 0 ||
			p.ExecutionTTL < 0 || p.DrainTimeout < 0 || p.CancelGrace < 0 {
			errs = append(errs, fmt.Errorf("pool %q: durations and Threads must not be negative", p.Name))
		}
		if err := limits(p).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pool %q: %w", p.Name, err))
		}
		if err := p.Heartbeat.internal().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("pool %q: heartbeat: %w", p.Name, err))
		}
		if p.Profile == ProfileThread && c.ThreadedScript == "" {
			errs = append(errs, fmt.Errorf("pool %q: the thread profile needs Config.ThreadedScript (a server that takes --max-workers)", p.Name))
		}
	}
	for what, v := range map[string]string{"InstanceName": c.InstanceName, "InstanceToken": c.InstanceToken} {
		if v != "" && !names.Valid(v) {
			errs = append(errs, fmt.Errorf("%s %q: only letters, digits, '-' and '_' may appear on a worker's command line", what, v))
		}
	}
	switch strings.ToLower(c.PythonLogLevel) {
	case "debug", "info", "warning", "warn", "error", "none":
	default:
		errs = append(errs, fmt.Errorf("PythonLogLevel %q: debug, info, warning, error or none", c.PythonLogLevel))
	}
	switch c.Bridge.Mode {
	case "", BridgeInternal, BridgeUnix, BridgeExternal, BridgeOff:
	default:
		errs = append(errs, fmt.Errorf("Bridge.Mode %q: internal, unix, external or off", c.Bridge.Mode))
	}
	if c.Bridge.Mode == BridgeExternal && c.Bridge.Address == "" {
		errs = append(errs, errors.New("bridge: Mode external needs Bridge.Address (host:port)"))
	}
	if c.Sessions.TTL < 0 || c.Sessions.SweepInterval < 0 || c.Sessions.MaxSessions < 0 {
		errs = append(errs, errors.New("sessions: TTL, SweepInterval and MaxSessions must not be negative"))
	}
	if c.CleanupGrace < 0 {
		errs = append(errs, errors.New("CleanupGrace must not be negative"))
	}
	if st, err := os.Stat(c.Script); err != nil || st.IsDir() {
		errs = append(errs, fmt.Errorf("worker script %s: not a file", c.Script))
	}
	if err := errors.Join(errs...); err != nil {
		return &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: "invalid config: " + err.Error()}
	}
	return nil
}

func defaultTransport() Transport {
	if runtime.GOOS == "windows" {
		return TransportTCP
	}
	return TransportUnix
}

// findBridge sets the worker scripts when no Script is configured, in this
// order: PrivDir, $SNAKEPIT_PRIV_DIR, the snakepit_bridge installed for
// the interpreter (PythonBridge auto or installed), the embedded copy.
func (c *Config) findBridge(ctx context.Context) error {
	useDir := func(dir string) {
		c.PrivDir = dir
		c.Script = filepath.Join(dir, "grpc_server.py")
		if c.ThreadedScript == "" {
			c.ThreadedScript = filepath.Join(dir, "grpc_server_threaded.py")
		}
	}
	if c.PrivDir != "" || os.Getenv("SNAKEPIT_PRIV_DIR") != "" {
		dir, err := FindPrivDir(c.PrivDir)
		if err != nil {
			return err
		}
		useDir(dir)
		return nil
	}
	switch c.PythonBridge {
	case PythonBridgeAuto, PythonBridgeInstalled:
		b, err := pyenv.FindInstalledBridge(ctx, c.Python, c.PythonPath)
		switch {
		case err == nil && b.Protocol == worker.ProtocolVersion:
			c.Logger.Info("snakepit: workers run the installed Python bridge", "dir", b.Dir, "version", b.Version, "python", c.Python)
			c.Script = b.Script(false)
			if c.ThreadedScript == "" {
				c.ThreadedScript = b.Script(true)
			}
			return nil
		case err == nil:
			err = fmt.Errorf("snakepit: the snakepit_bridge installed for %s (%s, version %s) speaks bridge protocol %d, this host %d",
				c.Python, b.Dir, b.Version, b.Protocol, worker.ProtocolVersion)
			if c.PythonBridge == PythonBridgeInstalled {
				return &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: err.Error()}
			}
			c.Logger.Warn(err.Error() + "; using the embedded bridge")
		case c.PythonBridge == PythonBridgeInstalled:
			return &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
				Message: fmt.Sprintf("snakepit: PythonBridge installed: %v (pip install snakepit-bridge into that environment)", err)}
		case !errors.Is(err, pyenv.ErrBridgeNotInstalled):
			c.Logger.Warn("snakepit: looking for an installed Python bridge failed; using the embedded one", "err", err)
		}
	case PythonBridgeEmbedded:
	default:
		return &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
			Message: fmt.Sprintf("snakepit: unknown PythonBridge %q (auto, embedded or installed)", c.PythonBridge)}
	}
	dir, err := FindPrivDir("")
	if err != nil {
		return err
	}
	useDir(dir)
	return nil
}

// FindPrivDir locates the Python bridge: configured if set, else
// $SNAKEPIT_PRIV_DIR, else the copy embedded in this module, written once
// to a versioned cache directory (<user cache dir>/snakepit/bridge-<hash>,
// or under $SNAKEPIT_CACHE_DIR), so a program outside this repository
// needs nothing else.
func FindPrivDir(configured string) (string, error) {
	has := func(dir string) bool {
		st, err := os.Stat(filepath.Join(dir, "grpc_server.py"))
		return err == nil && !st.IsDir()
	}
	if configured != "" {
		if has(configured) {
			return filepath.Abs(configured)
		}
		return "", fmt.Errorf("snakepit: PrivDir %s holds no grpc_server.py", configured)
	}
	if env := os.Getenv("SNAKEPIT_PRIV_DIR"); env != "" {
		if has(env) {
			return filepath.Abs(env)
		}
		return "", fmt.Errorf("snakepit: SNAKEPIT_PRIV_DIR=%s holds no grpc_server.py", env)
	}
	root, err := bundle.CacheRoot()
	if err != nil {
		return "", fmt.Errorf("snakepit: the embedded Python bridge: %w (or set Config.PrivDir)", err)
	}
	dir, err := bundle.Extract(priv.Python, "python", "bridge", root)
	if err != nil {
		return "", fmt.Errorf("snakepit: the embedded Python bridge: %w (or set Config.PrivDir)", err)
	}
	return dir, nil
}

// usesSharedMemory reports whether a pool carries payloads through shared
// memory.
func (c Config) usesSharedMemory() bool {
	for _, p := range c.Pools {
		if p.SharedMemoryThreshold >= 0 {
			return true
		}
	}
	return false
}

// moduleName is a dotted Python module name.
var moduleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// workerConfig is the one template of a pool's workers: the first start
// and every replacement (after a crash, a recycle, a resize or a retry)
// are made from it. The pool fills in each worker's id and its own PID.
func (c Config) workerConfig(p PoolConfig, runID string) worker.Config {
	return worker.Config{
		PoolName: p.Name, PoolIdentifier: c.InstanceName + "/" + p.Name,
		Python: c.Python, Script: c.Script, ThreadedScript: c.ThreadedScript, PythonPath: slices.Clone(c.PythonPath),
		Adapter: p.Adapter, AdapterArgs: slices.Clone(p.AdapterArgs), AdapterEnv: slices.Clone(p.AdapterEnv),
		Profile: worker.Profile(p.Profile), Threads: p.Threads, MaxCallsPerWorker: p.MaxCallsPerWorker, Transport: worker.Transport(p.Transport),
		ReadyTimeout: p.ReadyTimeout, StopGrace: p.StopGrace, ExecutionTTL: p.ExecutionTTL,
		CancelGrace: p.CancelGrace, AllowPickle: p.AllowPickle, Heartbeat: p.Heartbeat.internal(),
		RunID: runID, InstanceName: c.InstanceName, InstanceToken: c.InstanceToken,
		ForkPreload: slices.Clone(p.ForkPreload), Logger: c.Logger, PythonLogLevel: c.PythonLogLevel, CUDADevices: slices.Clone(p.CUDADevices),
		Telemetry: worker.TelemetryConfig{Enabled: p.Telemetry.Enabled, Allow: slices.Clone(p.Telemetry.Allow),
			Deny: slices.Clone(p.Telemetry.Deny), SamplingRate: p.Telemetry.SamplingRate,
			SamplingPatterns: slices.Clone(p.Telemetry.SamplingPatterns)},
	}
}

// limits are a pool's recycling limits, for the lifecycle manager.
func limits(p PoolConfig) lifecycle.Limits {
	return lifecycle.Limits{TTL: p.TTL, IdleTTL: p.IdleTTL, MaxRequests: p.MaxRequests,
		MaxRequestsJitter: p.MaxRequestsJitter, MemoryThresholdMB: p.MemoryThresholdMB}
}

// poolConfig turns a PoolConfig into the pool actor's config.
func (c Config) poolConfig(p PoolConfig, runID string) pool.Config {
	return pool.Config{
		Name: p.Name, Size: p.Size, MaxQueue: p.MaxQueue, QueueTimeout: p.QueueTimeout,
		ExecuteTimeout: p.ExecuteTimeout, StreamTimeout: p.StreamTimeout, StartupConcurrency: p.StartupConcurrency, Affinity: pool.Affinity(p.Affinity),
		MaxRequests: p.MaxRequests, MaxRequestsJitter: p.MaxRequestsJitter, DrainTimeout: p.DrainTimeout,
		Crash: p.CrashBarrier.internal(), ReconcileBackoff: p.ReconcileBackoff, Logger: c.Logger, Worker: c.workerConfig(p, runID),
	}
}
