package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/registry"
	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/auth"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
	"github.com/snakepit-go/snakepit/proto/controlpb"
)

// Module names this worker implementation in registry metadata.
const Module = "worker.GRPCWorker"

// generations numbers worker starts. It is process-wide, so a generation
// never repeats for a worker id, even across pool restarts (a late notice
// from a replaced worker can then never match its replacement).
var generations atomic.Uint64

// Props returns the props of a worker actor for c. Every actor made from
// them (the first start and every restart) starts a new Python process with
// the same Config and a new, higher generation number.
func Props(c Config) *actor.Props {
	c = c.withDefaults()
	starts := new(atomic.Uint64)
	return actor.PropsFromProducer(func() actor.Actor {
		return &workerActor{cfg: c, gen: generations.Add(1), first: starts.Add(1) == 1,
			log: c.Logger.With("worker", c.WorkerID, "pool", c.PoolName)}
	})
}

// workerActor owns one Python process (per generation) and its gRPC client.
type workerActor struct {
	cfg   Config
	gen   uint64
	first bool // the first start made from these props
	log   *slog.Logger

	proc      *process
	startedAt time.Time
	state     State
	// quiet: the worker is stopping; its heartbeat pings are not sent (a
	// process on its way out would be reported as missing them).
	quiet atomic.Bool
	// stopTelemetry ends the generation's telemetry stream (nil when off);
	// telemetry is the stream boot opened, for onBooted to read (under mu).
	stopTelemetry context.CancelFunc
	telemetry     *openStream

	bootCancel context.CancelFunc
	bootWG     sync.WaitGroup
	watchWG    sync.WaitGroup

	mu     sync.Mutex // guards conn, target and concurrency, which the boot goroutine sets
	conn   *grpc.ClientConn
	target string
	// concurrency is what the worker's handshake declared (its adapter's
	// max_concurrency), 1 when it said nothing.
	concurrency int

	exec *Executor
	// execClosed: exec was closed when the process exited (the stop that
	// follows does not close it again).
	execClosed bool
	// infoWaiters asked GetInfo{WaitReady} while starting; answered when
	// the start ends, either way.
	infoWaiters []*actor.PID
	stopping    bool
	killedFor   string // why the host killed this generation's process (under mu: call goroutines read it)
}

func (w *workerActor) killedForSafe() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.killedFor
}

// Receive handles the worker's messages.
func (w *workerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		w.start(ctx)
	case *booted:
		if m.generation == w.gen && w.state == StateStarting {
			w.onBooted(ctx)
		}
	case *bootFailed:
		if m.generation == w.gen && w.state == StateStarting {
			w.onBootFailed(ctx, m.err)
		}
	case *processExited:
		switch {
		case m.generation != w.gen || w.stopping:
		case w.state == StateStarting: // died before it was ready: a failed start, whichever notice came first
			w.onBootFailed(ctx, fmt.Errorf("python process exited before it was ready (%s)", w.proc.exitInfo()))
		default:
			w.onProcessExited(ctx)
		}
	case *GetInfo:
		if m.WaitReady && w.state == StateStarting && ctx.Sender() != nil {
			w.infoWaiters = append(w.infoWaiters, ctx.Sender())
			return
		}
		ctx.Respond(w.info())
	case *registry.RegisterResult:
		if m.Err != nil {
			w.log.Error("worker registration refused", "error", m.Err)
		}
	case *heartbeat.Lost:
		// A dependent monitor gave up on the process: replace it.
		ctx.Send(ctx.Self(), &KillProcess{Reason: fmt.Sprintf("heartbeat lost: %d pings missed (%v)", m.Missed, m.Err)})
	case *KillProcess:
		if w.proc != nil && !w.proc.exited() {
			w.mu.Lock()
			if w.killedFor == "" {
				w.killedFor = m.Reason
				if w.killedFor == "" {
					w.killedFor = "killed on request"
				}
			}
			reason := w.killedFor
			w.mu.Unlock()
			w.log.Warn("killing the python process", "reason", reason, "os_pid", w.proc.pid)
			w.proc.kill()
		}
	case *actor.Stopping:
		w.shutdown(ctx)
	}
}

func (w *workerActor) info() *Info {
	w.mu.Lock()
	target := w.target
	w.mu.Unlock()
	inf := &Info{WorkerID: w.cfg.WorkerID, Generation: w.gen, State: w.state, StartedAt: w.startedAt, Target: target,
		ServerSecret: w.cfg.secrets.server}
	if w.proc != nil {
		inf.OSPid = w.proc.pid
	}
	if w.exec != nil {
		inf.InFlight = w.exec.InFlight()
	}
	return inf
}

// start spawns the process (fast) in the mailbox, then waits for readiness
// in a goroutine so the mailbox stays free.
func (w *workerActor) start(ctx actor.Context) {
	w.state = StateStarting
	w.startedAt = time.Now()
	lineLog := pyLineLogger(w.log)
	// Reserved before the spawn, so a host that dies right after it still
	// left a trace; removed once the process is reaped.
	rec, key := w.cfg.Processes, procreg.EntryKey(w.cfg.RunID, w.cfg.WorkerID, w.gen)
	if rec != nil {
		rec.Reserve(procreg.Entry{Key: key, RunID: w.cfg.RunID, WorkerID: w.cfg.WorkerID, Pool: w.cfg.PoolName,
			Generation: w.gen, Script: w.cfg.script()})
	}
	// This generation's secrets: in its environment only, never on its
	// command line; the bridge knows the worker secret until it has exited.
	w.cfg.secrets = secrets{server: auth.NewSecret(), worker: auth.NewSecret()}
	creds, workerSecret := w.cfg.Credentials, w.cfg.secrets.worker
	if creds != nil {
		creds.Grant(w.cfg.WorkerID, workerSecret)
	}
	proc, err := startProcess(w.cfg, lineLog)
	if err != nil {
		if rec != nil {
			rec.Remove(key)
		}
		if creds != nil {
			creds.Revoke(w.cfg.WorkerID, workerSecret)
		}
		w.onBootFailed(ctx, err)
		return
	}
	if rec != nil {
		rec.Activate(key, proc.pid, proc.pgid)
	}
	w.proc = proc
	if w.cfg.Registry != nil {
		// Registered once per process, from the moment it exists (a
		// lookup during its boot finds it, and can wait for it to be
		// ready with GetInfo{WaitReady}); the reply is only logged.
		ctx.Request(w.cfg.Registry, &registry.Register{Meta: registry.WorkerMeta{
			WorkerID: w.cfg.WorkerID, PID: ctx.Self(), PoolName: w.cfg.PoolName,
			PoolIdentifier: w.cfg.PoolIdentifier, WorkerModule: Module, Adapter: w.cfg.Adapter,
			OSPid: proc.pid, PGID: proc.pgid, StartedAt: w.startedAt, Generation: w.gen,
		}})
	}
	self, gen, root := ctx.Self(), w.gen, ctx.ActorSystem().Root

	w.watchWG.Add(1)
	go func() {
		defer w.watchWG.Done()
		<-proc.done
		if rec != nil {
			rec.Remove(key)
		}
		if d := w.cfg.SharedMemory; d != nil {
			d.RemoveWorker(w.cfg.WorkerID, proc.pid) // the results it was writing
		}
		if creds != nil {
			creds.Revoke(w.cfg.WorkerID, workerSecret)
		}
		root.Send(self, &processExited{generation: gen})
	}()

	bootCtx, cancel := context.WithTimeout(context.Background(), w.cfg.ReadyTimeout)
	w.bootCancel = cancel
	w.bootWG.Add(1)
	go func() {
		defer w.bootWG.Done()
		defer cancel()
		if err := w.boot(bootCtx, proc); err != nil {
			root.Send(self, &bootFailed{generation: gen, err: err})
			return
		}
		root.Send(self, &booted{generation: gen})
	}()
}

// boot waits for the ready file, dials and pings. It runs in a goroutine
// and only touches w.conn and w.target, under w.mu.
func (w *workerActor) boot(ctx context.Context, proc *process) error {
	hs, err := proc.waitReady(ctx)
	if err != nil {
		return err
	}
	target := hs.Target
	w.mu.Lock()
	w.concurrency = hs.Concurrency
	w.mu.Unlock()
	conn, err := Dial(target, w.cfg.secrets.server)
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	w.mu.Lock()
	w.conn = conn
	w.mu.Unlock()
	client := bridgepb.NewBridgeServiceClient(conn)
	delay := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = client.Ping(pctx, &bridgepb.PingRequest{Message: "snakepit host"})
		cancel()
		if err == nil {
			w.mu.Lock()
			w.target = target
			w.mu.Unlock()
			if err := w.openTelemetry(client); err != nil {
				return err
			}
			w.syncRecord(ctx)
			return nil
		}
		if attempt == 5 || ctx.Err() != nil {
			return fmt.Errorf("ping %s: %w", target, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ping %s: %w", target, ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// window is the HTTP/2 flow-control window of a worker connection. A fixed
// window turns off gRPC's bandwidth-delay estimator, whose PING per burst
// of data adds frames (and syscalls on both sides) to every small call.
const window = 4 << 20

// Dial returns a client connection to a worker's gRPC server at target
// that sends secret (the worker's server secret) on every call, and the
// call's correlation id (CorrelationHeader) when its context has one.
func Dial(target, secret string) (*grpc.ClientConn, error) {
	return grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(callCredentials(secret)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window),
	)
}

// syncRecord makes the process's registry entry durable before the worker
// reports ready. A registry that cannot write is logged, not fatal: the
// lifeline and the parent-death signal are the first line of defence.
func (w *workerActor) syncRecord(ctx context.Context) {
	if w.cfg.Processes == nil {
		return
	}
	if err := w.cfg.Processes.Sync(ctx); err != nil {
		w.log.Warn("process registry entry not confirmed on disk", "error", err)
	}
}

func (w *workerActor) onBooted(ctx actor.Context) {
	w.mu.Lock()
	conn, target := w.conn, w.target
	w.mu.Unlock()
	w.state = StateReady
	proc := w.proc
	self := ctx.Self()
	w.exec = NewExecutor(ExecutorConfig{
		WorkerID: w.cfg.WorkerID, Pool: w.cfg.PoolName, Generation: w.gen,
		Client: bridgepb.NewBridgeServiceClient(conn), Sender: ctx.ActorSystem().Root, PoolPID: w.cfg.Pool,
		Exit:         w.exitOf,
		ExitWait:     w.cfg.ExitWait,
		ExecutionTTL: w.cfg.ExecutionTTL,
		Control:      controlpb.NewWorkerControlClient(conn),
		CancelGrace:  w.cfg.CancelGrace,
		Device:       w.cfg.device(),
		Shm:          w.cfg.SharedMemory,
		Kill: func(reason string) {
			ctx.ActorSystem().Root.Send(self, &KillProcess{Reason: reason})
		},
	})
	w.mu.Lock()
	telemetry := w.telemetry
	w.telemetry = nil
	w.mu.Unlock()
	if telemetry != nil {
		go readTelemetry(telemetry.ctx, telemetry.stream, w.cfg.Telemetry, w.cfg.PoolName, w.cfg.WorkerID, w.gen, w.log)
	}
	if hb := w.cfg.Heartbeat; hb.Enabled() {
		client := bridgepb.NewBridgeServiceClient(conn)
		events := ctx.ActorSystem().EventStream
		root, gen := ctx.ActorSystem().Root, w.gen
		_, err := ctx.SpawnNamed(heartbeat.Props(heartbeat.Options{
			Config: hb, WorkerID: w.cfg.WorkerID, Notify: self, Logger: w.log,
			Ping: func(ctx context.Context) error {
				if w.quiet.Load() {
					return nil // stopping: not a miss
				}
				_, err := client.Ping(ctx, &bridgepb.PingRequest{Message: "heartbeat"})
				if err != nil && w.quiet.Load() {
					return nil // the worker began to stop meanwhile
				}
				return err
			},
			OnEvent: func(e heartbeat.Event) {
				events.Publish(&e)
				// A missed ping takes the worker out of rotation until it
				// answers again (or a dependent monitor has it replaced).
				if pool := w.cfg.Pool; pool != nil && (e.Kind == heartbeat.EventMissed || e.Kind == heartbeat.EventRecovered) {
					root.Send(pool, &Responsive{WorkerID: w.cfg.WorkerID, Generation: gen, OK: e.Kind == heartbeat.EventRecovered,
						Reason: fmt.Sprintf("heartbeat: %d pings missed", e.Missed)})
				}
			},
		}), "heartbeat")
		if err != nil {
			w.log.Error("cannot start the heartbeat monitor", "error", err)
		}
	}
	w.log.Debug("worker ready", "os_pid", proc.pid, "generation", w.gen, "target", target, "took", time.Since(w.startedAt))
	w.answerInfoWaiters(ctx)
	if w.cfg.Pool != nil {
		ctx.Send(w.cfg.Pool, &Ready{
			WorkerID: w.cfg.WorkerID, PID: ctx.Self(), Generation: w.gen, Capacity: w.capacity(),
			OSPid: proc.pid, Exec: w.exec,
		})
	}
}

// capacity is how many calls the pool may give this generation at once:
// the thread profile's threads, else what the adapter declared, capped by
// Config.MaxCallsPerWorker.
func (w *workerActor) capacity() int {
	if w.cfg.Profile == ProfileThread {
		return w.cfg.Capacity()
	}
	w.mu.Lock()
	n := max(1, w.concurrency)
	w.mu.Unlock()
	if w.cfg.MaxCallsPerWorker > 0 {
		n = min(n, w.cfg.MaxCallsPerWorker)
	}
	return n
}

// answerInfoWaiters answers the GetInfo{WaitReady} requests held during
// the start.
func (w *workerActor) answerInfoWaiters(ctx actor.Context) {
	for _, to := range w.infoWaiters {
		ctx.Send(to, w.info())
	}
	w.infoWaiters = nil
}

func (w *workerActor) onBootFailed(ctx actor.Context, err error) {
	w.state = StateFailed
	w.answerInfoWaiters(ctx)
	if w.proc != nil {
		info := w.proc.stop(w.cfg.StopGrace)
		if info.Output != "" {
			err = fmt.Errorf("%w; last output:\n%s", err, info.Output)
		}
	}
	e := sperr.Wrap(sperr.CodeWorkerStartFailed, err, "worker %s did not start: %v", w.cfg.WorkerID, err)
	e.WorkerID, e.Pool = w.cfg.WorkerID, w.cfg.PoolName
	w.log.Warn("worker start failed", "generation", w.gen, "error", err)
	// With a pool, a worker that cannot start exits normally and the pool
	// starts it again with backoff (its reconcile loop): a start-failure
	// storm then backs off instead of exhausting the supervisor's restart
	// intensity. Without a pool, a replacement that cannot start is a crash.
	exits := w.first || w.cfg.Pool != nil
	if w.cfg.Pool != nil {
		ctx.Send(w.cfg.Pool, &StartFailed{WorkerID: w.cfg.WorkerID, Generation: w.gen, Err: e, Exited: exits})
	}
	if exits {
		ctx.Stop(ctx.Self())
		return
	}
	panic(e)
}

// onProcessExited fails in-flight calls with worker_exit, tells the pool,
// and crashes so the supervisor restarts the worker with a new process.
// exitOf is the process's exit (with why the host killed it, if it did),
// once known within wait.
func (w *workerActor) exitOf(wait time.Duration) (ExitInfo, bool) {
	info, ok := w.proc.waitExit(wait)
	if ok {
		info.KilledFor = w.killedForSafe()
	}
	return info, ok
}

func (w *workerActor) onProcessExited(ctx actor.Context) {
	info := w.proc.exitInfo()
	info.KilledFor = w.killedForSafe()
	werr := info.Error(w.cfg.PoolName, w.cfg.WorkerID)
	w.log.Warn("python process exited", "os_pid", info.OSPid, "exit", info.String(), "generation", w.gen)
	if w.exec != nil {
		w.exec.Close(werr)
		w.execClosed = true
	}
	if w.cfg.Pool != nil {
		ctx.Send(w.cfg.Pool, &Down{WorkerID: w.cfg.WorkerID, Generation: w.gen, Exit: info})
	}
	panic(werr)
}

// shutdown runs on Stopping (a stop, or the stop half of a restart): no new
// calls, running ones are answered, the process group is terminated.
func (w *workerActor) shutdown(ctx actor.Context) {
	w.quiet.Store(true)
	w.stopping = true
	w.state = StateStopping
	w.answerInfoWaiters(ctx)
	if w.bootCancel != nil {
		w.bootCancel()
	}
	w.bootWG.Wait()
	var info ExitInfo
	planned := w.proc != nil && !w.proc.exited()
	// The telemetry stream ends first: the worker's graceful stop would
	// otherwise wait for it.
	w.mu.Lock()
	if w.stopTelemetry != nil {
		w.stopTelemetry()
		w.stopTelemetry, w.telemetry = nil, nil
	}
	w.mu.Unlock()
	if w.exec != nil && !w.execClosed {
		cause := sperr.New(sperr.CodeShutdown, "worker %s is stopping", w.cfg.WorkerID)
		if !planned {
			cause = w.proc.exitInfo().Error(w.cfg.PoolName, w.cfg.WorkerID)
		}
		cause.WorkerID, cause.Pool = w.cfg.WorkerID, w.cfg.PoolName
		w.exec.Close(cause)
	}
	if w.proc != nil {
		info = w.proc.stop(w.cfg.StopGrace)
	}
	if w.exec != nil && !w.exec.Wait(CallsWait) {
		w.log.Warn("calls still running after stop", "in_flight", w.exec.InFlight())
	}
	w.mu.Lock()
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
	w.mu.Unlock()
	w.watchWG.Wait()
	if w.cfg.Registry != nil {
		ctx.Send(w.cfg.Registry, &registry.Unregister{WorkerID: w.cfg.WorkerID})
	}
	if w.cfg.Pool != nil && planned {
		ctx.Send(w.cfg.Pool, &Down{WorkerID: w.cfg.WorkerID, Generation: w.gen, Planned: true, Exit: info})
	}
}

// openStream is a telemetry stream boot opened.
type openStream struct {
	ctx    context.Context
	stream bridgepb.BridgeService_StreamTelemetryClient
}

// openTelemetry opens the generation's telemetry stream when the pool
// wants it, before the worker reports ready (so no call's events are
// missed). A worker that cannot open it does not start.
func (w *workerActor) openTelemetry(client bridgepb.BridgeServiceClient) error {
	if !w.cfg.Telemetry.Enabled {
		return nil
	}
	tctx, cancel := context.WithCancel(context.Background())
	octx, ocancel := context.WithTimeout(tctx, 10*time.Second)
	defer ocancel()
	stream, err := openTelemetryHeaders(octx, tctx, client)
	if err != nil {
		cancel()
		return fmt.Errorf("telemetry stream: %w", err)
	}
	w.mu.Lock()
	w.telemetry, w.stopTelemetry = &openStream{ctx: tctx, stream: stream}, cancel
	w.mu.Unlock()
	return nil
}
