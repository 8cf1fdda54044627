// Package snakepit is the public Go API: start an App (a supervision tree of
// actors that owns pools of long-lived Python worker processes), run Python
// tools through it with Execute and ExecuteStream, and stop it leaving no
// process behind.
//
//	app, err := snakepit.Start(ctx, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "ml", Size: 4}}})
//	defer app.Stop(context.Background())
//	_ = app.AwaitReady(ctx)
//	res, err := app.Execute(ctx, "add", map[string]any{"a": 1, "b": 2}, snakepit.WithPool("ml"))
//
// Everything above is plain Go: the package's own types, converted at its
// boundary from the actors that implement it.
//
// # Interop with actors
//
// A protoactor program can embed the tree and talk to it directly. StartIn
// builds the tree in the caller's actor system; App.System is the system,
// App.Pool(name) a pool actor's PID and App.Registry the worker registry's
// (package actors/registry has its messages). Send a poolpb.Execute to a
// pool and receive a poolpb.Result (or poolpb.Chunk messages ending with a
// final one); ErrorFromProto reads the error a reply carries. The messages
// are protobuf, so this works across nodes too; RemoteOptions configures
// protoactor remote for a caller node. These six are the only names here
// that mention actors or generated protobuf.
package snakepit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"go.opentelemetry.io/otel/trace"

	"github.com/snakepit-go/snakepit/actors/bridge"
	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/lifecycle/manager"
	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/registry"
	"github.com/snakepit-go/snakepit/actors/registry/cleanup"
	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/instance"
	"github.com/snakepit-go/snakepit/internal/logutil"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/rundir"
	"github.com/snakepit-go/snakepit/internal/runid"
	"github.com/snakepit-go/snakepit/internal/shm"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/workerhook"
	"github.com/snakepit-go/snakepit/proto/poolpb"
	"github.com/snakepit-go/snakepit/supervisors"
)

// App is a running snakepit: its supervision tree, pools and workers.
type App struct {
	cfg       Config
	system    *actor.ActorSystem
	ownSystem bool
	remote    *remote.Remote // set when Start enabled remote
	barrier   *endpointBarrier
	cluster   *cluster     // set when Config.Cluster joined a cluster
	aliases   []*actor.PID // the pools' stable ids (PoolID)
	root      *actor.PID
	runID     string
	log       *slog.Logger
	pools     map[string]*actor.PID
	poolCfg   map[string]PoolConfig
	// forkServers are the pools' fork servers (PoolConfig.ForkServer),
	// opened and closed by the runtime supervisor's forkservers child.
	forkServers map[string]*worker.ForkServer
	registry    *actor.PID
	reqPrefix   string
	reqSeq      atomic.Uint64

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool
	gaveUp   chan struct{}
	// streams are the open streams' inboxes; Stop closes any left open so
	// no worker goroutine stays blocked on a stream nobody reads.
	streams sync.Map // *inbox → struct{}
	giveUp  sync.Once
	reason  atomic.Value
	// lost answers local calls whose messages became dead letters.
	lost *eventstream.Subscription
	// heartbeats turns the heartbeat monitors' events into HeartbeatMissed.
	heartbeats *eventstream.Subscription

	instDir   string       // <DataDir>/<InstanceName>
	startedAt time.Time    // when Start began
	metrics   *metrics     // nil without Config.MeterProvider
	tracer    trace.Tracer // nil without Config.TracerProvider
	recent    errorRing    // the last failed calls (RecentErrors)
	rss       rssCache     // the workers' process-tree RSS (Workers)
	events    *eventHub    // App.Subscribe

	runDir     string // removed at Stop (and by the next start if this host dies)
	shmDir     string // shared-memory segments (runDir, or a run directory on /dev/shm); "" when no pool uses them
	shmDirs    map[string]*shm.Dir
	tools      *bridge.Tools
	creds      *bridge.Credentials // the workers' bridge secrets
	sessions   *sessions.Client
	bridgeAddr string
	conns      *workerConns

	mu          sync.Mutex // guards the cleanup reports
	startReport cleanup.Report
	stopReport  cleanup.Report
}

// Start starts an App in an actor system of its own.
func Start(ctx context.Context, cfg Config) (_ *App, err error) {
	defer func() { err = public(err) }()
	if cfg.Cluster.Name != "" && cfg.RemoteAddress == "" {
		return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
			Message: "snakepit: Cluster needs RemoteAddress: the calls between nodes travel over protoactor remote"}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	system := actor.NewActorSystem(
		// protoactor's own records (dead letters, restarts, endpoint
		// retries) are demoted one level: they show when the user asks
		// for more than their level.
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(logutil.Demote(logger.Handler(), 4)).With("lib", "protoactor")
		}),
		// Dead letters are normal while a tree stops (late notices to
		// stopped actors); keep the log throttle short-lived.
		actor.WithDeadLetterThrottleInterval(50*time.Millisecond),
	)
	var rem *remote.Remote
	if cfg.RemoteAddress != "" {
		if cfg.Remote.Secret == "" {
			cfg.Remote.Secret = os.Getenv(EnvRemoteSecret)
		}
		if cfg.Remote.Secret == "" {
			system.Shutdown()
			return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
				Message: "snakepit: RemoteAddress needs Remote.Secret (or $" + EnvRemoteSecret + "), shared by every node: without it any host that reaches the port could run tools"}
		}
		var err error
		if rem, err = startRemote(system, cfg.RemoteAddress, cfg.Remote); err != nil {
			system.Shutdown()
			return nil, err
		}
	}
	var barrier *endpointBarrier
	if rem != nil {
		barrier = newEndpointBarrier(system)
	}
	app, err := start(ctx, system, cfg, true)
	if err != nil {
		if rem != nil {
			barrier.shutdown(rem, false)
		}
		system.Shutdown()
		return nil, err
	}
	app.remote, app.barrier = rem, barrier
	return app, nil
}

// StartIn starts an App inside an existing actor system (so actors of the
// embedding program can talk to its pools). Stop leaves the system running.
func StartIn(ctx context.Context, system *actor.ActorSystem, cfg Config) (_ *App, err error) {
	defer func() { err = public(err) }()
	return start(ctx, system, cfg, false)
}

// workerStopConcurrency bounds how many workers stop at once.
const workerStopConcurrency = 32

// runtimeStopMargin is what the runtime supervisor's stop gets beyond its
// workers': the pools, the bridge, the session store, the cleanup pass and
// the registry stop within it.
const runtimeStopMargin = 30 * time.Second

// workersShutdown bounds the worker supervisor's stop: its workers stop
// workerStopConcurrency at a time, each within its own shutdown timeout
// (with headroom for pools resized to twice their configured size), so a
// stop of hung workers never overruns it.
func workersShutdown(cfg Config) time.Duration {
	total, longest := 0, time.Duration(0)
	for _, p := range cfg.Pools {
		total += p.Size
		longest = max(longest, cfg.workerConfig(p, "").ShutdownTimeout())
	}
	groups := (2*total + workerStopConcurrency - 1) / workerStopConcurrency
	return max(30*time.Second, time.Duration(groups)*longest+worker.ReplyMargin)
}

func start(ctx context.Context, system *actor.ActorSystem, cfg Config, own bool) (*App, error) {
	cfg, err := cfg.withDefaults(ctx)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// The instance: its token (made once when none is configured), its
	// directory and its process registry, checked before anything spawns.
	startedAt := time.Now()
	inst, err := instance.Resolve(cfg.DataDir, cfg.InstanceName, cfg.InstanceToken)
	if err != nil {
		return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: "snakepit: " + err.Error()}
	}
	cfg.InstanceName, cfg.InstanceToken = inst.Name, inst.Token
	store, _, err := procreg.OpenStore(inst.RegistryPath(), cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("snakepit: %w", err)
	}
	var hostStart int64
	if me, err := procs.System.Process(ctx, os.Getpid()); err == nil {
		hostStart = me.CreateTime
	}
	id := runid.New()
	// What SIGKILLed hosts of this instance left in the temp dir and on
	// /dev/shm goes first; this run's directory holds its workers'
	// directories and sockets.
	sweepRunDirs(ctx, "", inst.Name, id, cfg.Logger)
	shmBase := shm.Base()
	if shmBase != "" {
		sweepRunDirs(ctx, shmBase, inst.Name, id, cfg.Logger)
	}
	owner := rundir.Owner{RunID: id, Instance: inst.Name, HostPID: os.Getpid(), HostStart: hostStart}
	runDir, err := rundir.Create("", owner)
	if err != nil {
		return nil, fmt.Errorf("snakepit: %w", err)
	}
	started := false
	defer func() {
		if !started {
			_ = os.RemoveAll(runDir)
		}
	}()
	// Shared-memory segments: in a run directory of their own on /dev/shm
	// (swept like the run directory), else in the run directory.
	shmDir := ""
	if cfg.usesSharedMemory() {
		shmDir = runDir
		if shmBase != "" {
			if d, err := rundir.Create(shmBase, owner); err == nil {
				shmDir = d
				defer func() {
					if !started {
						_ = os.RemoveAll(d)
					}
				}()
			} else {
				cfg.Logger.Warn("shared memory: no directory on "+shmBase+"; segments go to the run directory", "error", err)
			}
		}
	}
	app := &App{runDir: runDir, shmDir: shmDir, instDir: inst.Dir, startedAt: startedAt, events: &eventHub{},
		cfg: cfg, system: system, ownSystem: own, runID: id, log: cfg.Logger.With("run_id", id),
		pools: map[string]*actor.PID{}, poolCfg: map[string]PoolConfig{}, gaveUp: make(chan struct{}),
		reqPrefix: id + "-",
	}
	if cfg.TracerProvider != nil {
		app.tracer = cfg.TracerProvider.Tracer(meterName, trace.WithInstrumentationVersion(Version))
	}

	name := "snakepit-" + id
	base := func(parts ...string) *actor.PID {
		p := name
		for _, s := range parts {
			p += "/" + s
		}
		return actor.NewPID(system.Address(), p)
	}
	app.registry = base("registry")
	workersSup := base("runtime", "workers")
	app.tools = bridge.NewTools()
	app.creds = bridge.NewCredentials()
	app.sessions = &sessions.Client{Root: system.Root, PID: base("sessions")}
	app.conns = &workerConns{root: system.Root, registry: app.registry, conns: map[string]*workerConn{}}
	// Bound before the tree starts: workers are launched with its address.
	lis, bridgeAddr, relisten, err := listenBridge(cfg.Bridge, runDir)
	if err != nil {
		return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: "snakepit: " + err.Error()}
	}
	app.bridgeAddr = bridgeAddr
	defer func() {
		if !started && lis != nil {
			_ = lis.Close()
		}
	}()
	processes := &procreg.Client{Root: system.Root, PID: base("processes")}
	cleanupCfg := cleanup.ActorConfig{
		Options: cleanup.Options{
			Identity: cleanup.Identity{RunID: id, InstanceName: inst.Name, InstanceToken: inst.Token},
			Rules:    cleanup.Rules{Scripts: cfg.RogueCleanup.Scripts, RunMarkers: cfg.RogueCleanup.RunMarkers},
			Rogue:    *cfg.RogueCleanup.Enabled, Registry: processes, Grace: cfg.CleanupGrace, Logger: app.log,
		},
		AtStart: true,
		OnReport: func(atStop bool, r cleanup.Report, _ error) {
			app.mu.Lock()
			if atStop {
				app.stopReport = r
			} else {
				app.startReport = r
			}
			app.mu.Unlock()
			app.events.publish(&CleanupRun{At: time.Now(), AtStart: !atStop, Report: cleanupReportFrom(r)})
		},
	}

	workers, err := supervisors.New(supervisors.Spec{
		Strategy: supervisors.OneForOne, MaxRestarts: cfg.WorkerMaxRestarts, Window: cfg.WorkerRestartWindow,
		// Workers are alike and stop in parallel: a stop of hung workers
		// takes about one StopGrace, not one per worker.
		StopConcurrency: workerStopConcurrency, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	var runtimeChildren []supervisors.ChildSpec
	if lis != nil {
		runtimeChildren = append(runtimeChildren, supervisors.ChildSpec{Name: "bridge", Restart: supervisors.Permanent,
			Shutdown: 5 * time.Second, Props: bridge.Props(bridge.ActorConfig{
				Server: &bridge.Server{Tools: app.tools, Sessions: sessionStore{app.sessions}, Workers: app.conns, Logger: app.log,
					Tracer: app.tracer},
				Credentials: app.creds, AllowUnauthenticated: cfg.Bridge.AllowUnauthenticated, TLS: cfg.Bridge.TLS,
				Listener: lis, Listen: relisten, Logger: app.log,
			})})
	}
	runtimeChildren = append(runtimeChildren, supervisors.ChildSpec{Name: "workers", Props: workers, Restart: supervisors.Permanent, Shutdown: workersShutdown(cfg)})
	var poolChildren []supervisors.ChildSpec
	var watched []manager.Pool
	for _, p := range cfg.Pools {
		pc := cfg.poolConfig(p, id)
		pc.WorkerSupervisor = workersSup
		pc.Worker.Registry = app.registry
		pc.Worker.Processes = processes
		pc.Worker.HostAddress = bridgeAddr
		pc.Worker.Credentials = app.creds
		pc.Worker.TempDir = runDir
		if p.SharedMemoryThreshold >= 0 && app.shmDir != "" {
			pc.Worker.SharedMemory = shm.New(app.shmDir, p.SharedMemoryThreshold)
			if app.shmDirs == nil {
				app.shmDirs = map[string]*shm.Dir{}
			}
			app.shmDirs[p.Name] = pc.Worker.SharedMemory
		}
		if p.ForkServer {
			pc.Worker.ForkServer = worker.NewForkServer(pc.Worker)
			if app.forkServers == nil {
				app.forkServers = map[string]*worker.ForkServer{}
			}
			app.forkServers[p.Name] = pc.Worker.ForkServer
		}
		pc.Events = eventBridge{next: system.EventStream, hub: app.events}
		if pc.Worker.Telemetry.Enabled {
			pc.Worker.Telemetry.OnEvent = func(e worker.TelemetryEvent) {
				app.events.publish(&PythonEvent{At: e.At, Pool: e.Pool, WorkerID: e.WorkerID, Generation: e.Generation,
					Name: e.Name, Measurements: e.Measurements, Metadata: e.Metadata, CorrelationID: e.CorrelationID})
			}
		}
		pc.CallEvents = app.events.wantCalls
		if hook := workerhook.Get(); hook != nil {
			pc.WorkerProps = hook
		}
		if err := pc.Validate(); err != nil {
			return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: err.Error()}
		}
		child := "pool-" + p.Name
		poolChildren = append(poolChildren, supervisors.ChildSpec{Name: child, Props: pool.Props(pc), Restart: supervisors.Permanent})
		app.pools[p.Name] = base("runtime", child)
		app.poolCfg[p.Name] = p
		watched = append(watched, manager.Pool{Name: p.Name, PID: app.pools[p.Name], Limits: limits(p)})
	}
	if len(app.forkServers) > 0 {
		// The fork servers come right before the workers: they stop after
		// every worker has (no fork is asked then), and before the stop's
		// cleanup pass would find their zygotes still running.
		at := slices.IndexFunc(runtimeChildren, func(c supervisors.ChildSpec) bool { return c.Name == "workers" })
		runtimeChildren = slices.Insert(runtimeChildren, at, supervisors.ChildSpec{Name: "forkservers",
			Restart: supervisors.Permanent, Shutdown: 2 * workersShutdown(cfg), Props: forkServersProps(app.forkServers)})
	}
	// The lifecycle manager comes before the pools (DESIGN.md §3).
	runtimeChildren = append(runtimeChildren, supervisors.ChildSpec{Name: "lifecycle", Restart: supervisors.Permanent,
		Props: manager.Props(manager.Config{Pools: watched, Interval: cfg.LifecycleInterval, Logger: app.log})})
	runtimeChildren = append(runtimeChildren, poolChildren...)
	runtimeProps, err := supervisors.New(supervisors.Spec{
		Strategy: supervisors.RestForOne, MaxRestarts: 3, Window: 5 * time.Second,
		Children: runtimeChildren, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	rootProps, err := supervisors.New(supervisors.Spec{
		Strategy: supervisors.OneForOne, MaxRestarts: 3, Window: 5 * time.Second, Logger: cfg.Logger,
		Children: []supervisors.ChildSpec{
			{Name: "registry", Props: registry.Props(registry.WithLogger(cfg.Logger)), Restart: supervisors.Permanent},
			{Name: "processes", Props: procreg.Props(procreg.Config{
				Store: store, RunID: id, HostPID: os.Getpid(), HostStart: hostStart, Logger: cfg.Logger,
			}), Restart: supervisors.Permanent},
			// Before the runtime, so it stops after the workers (reverse
			// order) and only mops up; at start it clears earlier runs'
			// leftovers before any worker of this run spawns.
			{Name: "cleanup", Props: cleanup.Props(cleanupCfg), Restart: supervisors.Permanent,
				Shutdown: cleanupCfg.ActorShutdown(), StartTimeout: cleanupCfg.ActorShutdown()},
			{Name: "sessions", Props: sessions.Props(sessions.Config{
				DefaultTTL: cfg.Sessions.TTL, SweepInterval: cfg.Sessions.SweepInterval, MaxSessions: cfg.Sessions.MaxSessions,
				Logger: app.log, OnRemoved: func(id, _ string) {
					for _, pid := range app.pools {
						system.Root.Send(pid, &pool.EndSession{SessionID: id})
					}
					if c := app.cluster; c != nil {
						c.forgetSession(id)
					}
				},
			}), Restart: supervisors.Permanent},
			{Name: "runtime", Props: runtimeProps, Restart: supervisors.Permanent, Shutdown: workersShutdown(cfg) + runtimeStopMargin},
		},
		OnGiveUp: func(reason any) {
			app.reason.Store(fmt.Sprint(reason))
			app.giveUp.Do(func() { close(app.gaveUp) })
		},
	})
	if err != nil {
		return nil, err
	}
	started = true // the bridge actor owns the listener from here
	// Config.OnEvent hears the tree's first events.
	if cfg.OnEvent != nil {
		var opts []SubscribeOption
		if cfg.CallEvents {
			opts = append(opts, WithCallEvents())
		}
		app.Subscribe(cfg.OnEvent, opts...)
	}
	app.root, err = system.Root.SpawnNamed(rootProps, name)
	if err != nil {
		app.events.closeAll()
		return nil, fmt.Errorf("snakepit: spawn the app supervisor: %w", err)
	}
	// The supervisor's Started ends once every child (and grandchild) has
	// started in order; a request queued behind it is answered after that.
	if _, err := system.Root.RequestFuture(app.root, &supervisors.WhichChildren{}, 60*time.Second).Result(); err != nil {
		app.stopTree(context.Background()) // the caller owns the system's shutdown
		app.events.closeAll()
		return nil, fmt.Errorf("snakepit: the supervision tree did not start: %w", err)
	}
	app.lost = system.EventStream.Subscribe(func(evt any) { pool.AnswerLost(system.Root, evt) })
	app.heartbeats = system.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*heartbeat.Event); ok {
			if out := heartbeatMissed(e); out != nil {
				app.events.publish(out)
			}
		}
	})
	if err := app.registerAliases(); err != nil {
		app.abort()
		return nil, err
	}
	if cfg.MeterProvider != nil {
		if app.metrics, err = newMetrics(app, cfg.MeterProvider); err != nil {
			app.abort()
			return nil, fmt.Errorf("snakepit: metrics: %w", err)
		}
	}
	if cfg.Cluster.Name != "" {
		secret := cfg.Remote.Secret
		if secret == "" {
			secret = os.Getenv(EnvRemoteSecret)
		}
		if app.cluster, err = startCluster(app, cfg.Cluster, secret); err != nil {
			app.abort()
			return nil, err
		}
	}
	app.log.Info("snakepit started", "pools", len(cfg.Pools), "python", cfg.Python, "script", cfg.Script)
	return app, nil
}

// abort undoes a start that failed after the tree started (the caller
// owns the system's shutdown).
func (a *App) abort() {
	a.removeAliases()
	a.system.EventStream.Unsubscribe(a.lost)
	a.system.EventStream.Unsubscribe(a.heartbeats)
	a.events.closeAll()
	a.stopTree(context.Background())
	a.conns.close()
	_ = os.RemoveAll(a.runDir)
}

// Address is the actor system's address: "nonhost" without remote, else
// the host:port other nodes reach it at.
func (a *App) Address() string { return a.system.Address() }

// RunID is this start's run id (on every worker's command line).
func (a *App) RunID() string { return a.runID }

// Instance is the instance name (on every worker's command line).
func (a *App) Instance() string { return a.cfg.InstanceName }

// InstanceDir is the instance's directory (<DataDir>/<InstanceName>, mode
// 0700): its process registry, its token, and what tools of the same user
// need to find a running host (the admin endpoint's file).
func (a *App) InstanceDir() string { return a.instDir }

// StartedAt is when Start began.
func (a *App) StartedAt() time.Time { return a.startedAt }

// System is the actor system the App runs in.
func (a *App) System() *actor.ActorSystem { return a.system }

// Pool returns the PID of the named pool ("" = DefaultPool, or the only
// pool), or nil. Send it poolpb messages.
func (a *App) Pool(name string) *actor.PID {
	pid, _ := a.poolPID(name)
	return pid
}

// Pools lists the configured pool names in configuration order.
func (a *App) Pools() []string {
	names := make([]string, 0, len(a.cfg.Pools))
	for _, p := range a.cfg.Pools {
		names = append(names, p.Name)
	}
	return names
}

// Registry returns the PID of the worker registry actor.
func (a *App) Registry() *actor.PID { return a.registry }

// poolName resolves "" to the only pool, or else to DefaultPool.
func (a *App) poolName(name string) string {
	switch {
	case name != "":
		return name
	case len(a.cfg.Pools) == 1:
		return a.cfg.Pools[0].Name
	default:
		return DefaultPool
	}
}

func (a *App) poolPID(name string) (*actor.PID, error) {
	name = a.poolName(name)
	pid, ok := a.pools[name]
	if !ok {
		e := sperr.New(sperr.CodePoolNotFound, "no pool named %q", name)
		e.Pool = name
		return nil, e
	}
	return pid, nil
}

// sweepRunDirs removes the run directories under base ("" is the temp dir)
// that dead hosts of the instance left.
func sweepRunDirs(ctx context.Context, base, instance, runID string, log *slog.Logger) {
	if gone, err := rundir.Sweep(base, instance, runID, rundir.HostAlive(ctx)); err != nil {
		log.Warn("removing earlier runs' directories", "base", base, "error", err)
	} else if len(gone) > 0 {
		log.Info("removed directories of earlier runs whose host is gone", "dirs", gone)
	}
}

// Stop stops the App: pools answer queued calls with shutdown, workers
// answer running calls, every Python process is terminated (SIGTERM, then
// SIGKILL after the grace), and, for Start, the actor system shuts down. It
// waits until done or ctx ends; calling it again returns the first result.
func (a *App) Stop(ctx context.Context) (err error) {
	defer func() { err = public(err) }()
	a.stopOnce.Do(func() {
		a.stopped.Store(true)
		if a.metrics != nil {
			_ = a.metrics.reg.Unregister()
		}
		// Leave the cluster first: the other nodes stop routing here at
		// once, and calls to other nodes end.
		if a.cluster != nil {
			a.cluster.stop()
		}
		// Open streams end now: their readers get shutdown, and a worker
		// goroutine blocked on a stream nobody reads is released.
		a.streams.Range(func(k, _ any) bool {
			k.(*inbox).closeWith(sperr.New(sperr.CodeShutdown, "snakepit is stopping"))
			a.streams.Delete(k)
			return true
		})
		// A worker start waiting on a fork ends at once: nothing is
		// started while the App stops.
		for _, fs := range a.forkServers {
			fs.Abort()
		}
		a.stopErr = a.stopTree(ctx)
		for _, fs := range a.forkServers {
			fs.Close() // closed by the tree already, unless its stop timed out
		}
		a.removeAliases()
		a.system.EventStream.Unsubscribe(a.lost)
		a.system.EventStream.Unsubscribe(a.heartbeats)
		a.events.closeAll() // after the tree: the stop's events are delivered
		a.conns.close()
		if err := os.RemoveAll(a.runDir); err != nil {
			a.log.Warn("removing the run directory", "dir", a.runDir, "error", err)
		}
		if a.shmDir != "" && a.shmDir != a.runDir {
			if err := os.RemoveAll(a.shmDir); err != nil {
				a.log.Warn("removing the shared-memory directory", "dir", a.shmDir, "error", err)
			}
		}
		if a.remote != nil {
			a.barrier.shutdown(a.remote, true)
		}
		if a.ownSystem {
			a.system.Shutdown()
		}
		a.log.Info("snakepit stopped")
	})
	return a.stopErr
}

// stopTree poisons the app supervisor and waits until it has terminated:
// the tree stops children in reverse order, each within its shutdown
// timeout. When ctx ends first, the tree is stopped at once.
func (a *App) stopTree(ctx context.Context) error {
	w := watchTermination(a.system, a.root)
	a.system.Root.Poison(a.root)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		a.system.Root.Stop(a.root)
		<-w.done
		return fmt.Errorf("snakepit: stop: %w", ctx.Err())
	}
}

// Failed is closed when the supervision tree gave up (restart intensity
// exceeded at the top); Err then says why.
func (a *App) Failed() <-chan struct{} { return a.gaveUp }

// Err returns why the supervision tree gave up, or nil.
func (a *App) Err() (err error) {
	defer func() { err = public(err) }()
	if r, ok := a.reason.Load().(string); ok {
		return errors.New("snakepit: supervision tree gave up: " + r)
	}
	return nil
}

// AwaitReady waits until every pool has at least one ready worker. A pool
// whose initialisation failed makes it return pool_not_initialized at once.
func (a *App) AwaitReady(ctx context.Context) error { return public(a.await(ctx, false)) }

// AwaitInitComplete waits until every worker of every pool has started (or
// failed its start); it fails if a pool failed entirely.
func (a *App) AwaitInitComplete(ctx context.Context) error { return public(a.await(ctx, true)) }

func (a *App) await(ctx context.Context, all bool) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(15 * time.Second) // upstream's await_ready default
	}
	for _, name := range a.Pools() {
		r, err := call[*poolpb.ReadyReply](ctx, a, a.pools[name], &poolpb.AwaitReady{All: all, DeadlineUnixNano: deadline.UnixNano()},
			time.Until(deadline)+time.Second)
		if err != nil {
			return err
		}
		if r.GetError() != nil {
			return sperr.FromProto(r.GetError())
		}
	}
	return nil
}

// ListWorkers returns the named pool's worker ids.
func (a *App) ListWorkers(ctx context.Context, poolName string) (_ []string, err error) {
	defer func() { err = public(err) }()
	wl, err := askPool[*poolpb.WorkerList](ctx, a, poolName, &poolpb.ListWorkers{})
	return wl.GetWorkerIds(), err
}

// nextRequestID returns a request id unique within this App.
func (a *App) nextRequestID() string {
	return a.reqPrefix + strconv.FormatUint(a.reqSeq.Add(1), 36)
}
