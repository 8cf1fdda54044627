package registry

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// ErrAlreadyRegistered is returned when a WorkerID is already registered by another live actor.
var ErrAlreadyRegistered = errors.New("registry: worker already registered")

// Option configures the worker registry actor built by Props.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sets the registry's logger; by default it logs to the actor system's logger.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Props returns the props of a worker registry actor. Spawn one per actor system, usually by name under
// the app supervisor, and talk to it with the messages of this package or with a Client.
//
// A worker registers from its own start path, once per start of its OS process. From inside its actor it
// should not block its mailbox on the registry: it sends Register with ctx.Request and handles the
// *RegisterResult that arrives later as an ordinary message (or sends it with ctx.Send and wants no
// reply). The registry watches every registered PID: when the worker actor stops, or its node goes away,
// all entries of that PID vanish. A worker restarted in place keeps its PID and gets no Terminated, so it
// must register again after it starts its new OS process; that registration replaces the old entry.
//
// The registry keeps its entries in memory only: if the registry actor itself is restarted, it starts
// empty.
func Props(opts ...Option) *actor.Props {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &workerRegistry{logger: o.logger, table: newWorkerTable()}
	})
}

// workerRegistry is the registry actor: it moves messages in and out of its workerTable and keeps the
// watches on registered PIDs in step with the table.
type workerRegistry struct {
	logger *slog.Logger
	table  *workerTable
}

// Receive implements actor.Actor.
func (r *workerRegistry) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		if r.logger == nil {
			r.logger = ctx.Logger()
		}
	case *Register:
		r.register(ctx, msg.Meta)
	case *Unregister:
		r.unregister(ctx, msg.WorkerID)
	case *Lookup:
		meta, found := r.table.get(msg.WorkerID)
		respond(ctx, &LookupResult{Meta: meta, Found: found})
	case *LookupPID:
		var res LookupResult
		if msg.PID != nil {
			res.Meta, res.Found = r.table.getPID(keyOf(msg.PID))
		}
		respond(ctx, &res)
	case *LookupOSPid:
		meta, found := r.table.getOSPid(msg.OSPid)
		respond(ctx, &LookupResult{Meta: meta, Found: found})
	case *ListPool:
		respond(ctx, &ListResult{Workers: r.table.list(func(m WorkerMeta) bool { return m.PoolName == msg.PoolName })})
	case *ListAll:
		respond(ctx, &ListResult{Workers: r.table.list(func(WorkerMeta) bool { return true })})
	case *actor.Terminated:
		r.terminated(ctx, msg)
	case *actor.Stopping:
		for _, pid := range r.table.pids() {
			r.unwatch(ctx, pid)
		}
	case actor.AutoReceiveMessage, actor.SystemMessage: // Stopped, Restarting: nothing to do
	default:
		r.logger.Warn("worker registry: unknown message", slog.String("type", fmt.Sprintf("%T", msg)))
	}
}

func (r *workerRegistry) register(ctx actor.Context, meta WorkerMeta) {
	err := meta.Validate()
	if err == nil {
		proc, _ := instance(ctx.ActorSystem(), meta.PID)
		var orphan *actor.PID
		orphan, err = r.table.register(entry{meta: meta, instance: proc}, func(old entry) bool {
			return live(ctx.ActorSystem(), old)
		})
		if err == nil {
			// Watch is idempotent, and a PID that now names a new incarnation needs a new watch.
			ctx.Watch(meta.PID)
			if orphan != nil {
				r.unwatch(ctx, orphan)
			}
			r.logger.Debug("worker registered", slog.String("worker_id", meta.WorkerID),
				slog.String("pool", meta.PoolName), slog.Int("os_pid", meta.OSPid), slog.Uint64("generation", meta.Generation))
		}
	}
	if err != nil && ctx.Sender() == nil {
		r.logger.Warn("worker registration rejected", slog.String("worker_id", meta.WorkerID), slog.Any("error", err))
	}
	respond(ctx, &RegisterResult{Err: err})
}

func (r *workerRegistry) unregister(ctx actor.Context, id string) {
	e, found := r.table.remove(id)
	if found {
		if !r.table.hasPID(keyOf(e.meta.PID)) {
			r.unwatch(ctx, e.meta.PID)
		}
		r.logger.Debug("worker unregistered", slog.String("worker_id", id))
	}
	respond(ctx, &UnregisterResult{Found: found})
}

// terminated drops the entries of a stopped actor. Entries registered by a newer actor that now runs
// under the same PID (spawned again with the same name) are kept: Terminated does not say which
// incarnation stopped, so the registry compares the instance each entry was registered by.
func (r *workerRegistry) terminated(ctx actor.Context, msg *actor.Terminated) {
	if msg.Who == nil {
		return
	}
	dropped := r.table.dropPID(keyOf(msg.Who), func(e entry) bool { return current(ctx.ActorSystem(), e) })
	if len(dropped) > 0 {
		r.logger.Debug("workers gone", slog.Any("worker_ids", dropped), slog.String("pid", msg.Who.String()),
			slog.String("why", msg.Why.String()))
	}
}

// unwatch stops watching pid unless it names a local actor that is gone already (which would only
// produce a dead letter).
func (r *workerRegistry) unwatch(ctx actor.Context, pid *actor.PID) {
	if proc, known := instance(ctx.ActorSystem(), pid); known && proc == nil {
		return
	}
	ctx.Unwatch(pid)
}

// respond answers the current request; a message sent without a sender gets no answer.
func respond(ctx actor.Context, msg any) {
	if ctx.Sender() != nil {
		ctx.Respond(msg)
	}
}

// instance returns the local actor instance that now runs behind pid. known is false for a PID this node
// cannot see into (an actor of another node); for a known PID, proc is nil when no actor runs there.
func instance(sys *actor.ActorSystem, pid *actor.PID) (proc actor.Process, known bool) {
	p, ok := sys.ProcessRegistry.Get(pid)
	if !ok {
		return nil, true
	}
	if ap, isActor := p.(*actor.ActorProcess); isActor {
		return ap, true
	}
	return nil, false
}

// current reports whether e was registered by the actor instance that runs behind its PID now. It is
// false for remote PIDs, whose instances this node cannot tell apart.
func current(sys *actor.ActorSystem, e entry) bool {
	proc, known := instance(sys, e.meta.PID)
	return known && proc != nil && e.instance == proc
}

// live reports whether e may still belong to a running worker: a remote PID is presumed live until its
// Terminated arrives; a local one is live while the instance that registered it runs.
func live(sys *actor.ActorSystem, e entry) bool {
	if _, known := instance(sys, e.meta.PID); !known {
		return true
	}
	return current(sys, e)
}
