package pool

import (
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
	"github.com/snakepit-go/snakepit/supervisors"
)

// Props returns the props of a pool actor. The pool starts its workers
// under c.WorkerSupervisor when it starts, and answers every request it
// takes exactly once: itself for queued and rejected requests, through the
// worker for dispatched ones.
func Props(c Config) *actor.Props {
	c = c.WithDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &poolActor{core: newCore(c), log: c.Logger.With("pool", c.Name)}
	}, actor.WithDispatcher(newStickyDispatcher(300, 20*time.Millisecond)), actor.WithMailbox(afterStopMailbox(c.Name)))
}

// poolActor is the shell around the pool's core: it turns messages into
// core calls and carries out the effects the core returns. Every decision
// is the core's (core.go, slots.go, recycle.go, core_calls.go).
type poolActor struct {
	core *core
	log  *slog.Logger
	// startReplies are the workers whose StartChild answer is outstanding,
	// oldest first (the worker supervisor answers in order).
	startReplies []WorkerID
	timer        *time.Timer
}

// Receive handles the pool's messages.
func (p *poolActor) Receive(ctx actor.Context) {
	c, now := p.core, time.Now()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		c.Start()
	case *poolpb.Execute:
		c.Execute(m, senderOf(ctx), now)
	case *ExecuteLocal:
		if m.Req.GetStream() {
			m.Reply <- terminal(m.Req, sperr.New(sperr.CodeInvalidArgument, "a stream cannot be executed locally"))
			return
		}
		c.Execute(m.Req, m.Reply, now)
	case *poolpb.Cancel:
		c.Cancel(m.GetRequestId(), now)
	case *poolpb.StreamCredit:
		c.Credit(m.GetRequestId(), m.GetChunks())
	case *wk.CallDone:
		c.OnCallDone(m, now)
	case *wk.Responsive:
		c.OnResponsive(WorkerID(m.WorkerID), m.Generation, m.OK, m.Reason, now)
	case *wk.Ready:
		c.OnReady(WorkerID(m.WorkerID), m.Generation, m.Capacity, m.OSPid, m.Exec, now)
	case *wk.Down:
		c.OnDown(WorkerID(m.WorkerID), m.Generation, m.Planned, m.Exit, now)
	case *wk.StartFailed:
		c.OnStartFailed(WorkerID(m.WorkerID), m.Generation, m.Err, m.Exited, now)
	case *supervisors.StartChildResult:
		p.onStartChildResult(m, now)
	case *tick:
		c.Tick(now)
	case *poolpb.AwaitReady:
		if to := senderOf(ctx); to != nil {
			var dl time.Time
			if m.GetDeadlineUnixNano() > 0 {
				dl = time.Unix(0, m.GetDeadlineUnixNano())
			}
			c.AwaitReady(to, m.GetAll(), dl, now)
		}
	case *EndSession:
		c.EndSession(m.SessionID)
	case *Recycle:
		err := c.Recycle(WorkerID(m.WorkerID), m.Reason, m.RSSBytes, now)
		if ctx.Sender() != nil {
			ctx.Respond(&RecycleResult{Err: err})
		}
	case *Resize:
		err := c.Resize(m.Size, now)
		if ctx.Sender() != nil {
			ctx.Respond(&ResizeResult{Err: err})
		}
	case *poolpb.GetStats:
		ctx.Respond(c.Snapshot(now))
	case *GetWorkerStates:
		ctx.Respond(c.WorkerStates(now, m.All))
	case *poolpb.ListWorkers:
		ctx.Respond(&poolpb.WorkerList{WorkerIds: c.Workers()})
	case *actor.Stopping:
		c.Stopping(now)
		if p.timer != nil {
			p.timer.Stop()
		}
	default:
		return
	}
	p.carryOut(ctx)
}

// senderOf is the sender as the core keeps it: nil stays an untyped nil.
func senderOf(ctx actor.Context) any {
	if s := ctx.Sender(); s != nil {
		return s
	}
	return nil
}

func (p *poolActor) onStartChildResult(m *supervisors.StartChildResult, now time.Time) {
	if len(p.startReplies) == 0 {
		return
	}
	id := p.startReplies[0]
	p.startReplies = p.startReplies[1:]
	if m.Err != nil {
		p.log.Error("cannot start worker", "worker", id, "error", m.Err)
		p.core.OnStartFailed(id, 0, m.Err, true, now)
	}
}

// carryOut does what the core asked for, until it asks for nothing more:
// some effects report back (a refused submit), which may ask for more.
func (p *poolActor) carryOut(ctx actor.Context) {
	for effs := p.core.effects(); len(effs) > 0; effs = p.core.effects() {
		for i := range effs {
			p.do(ctx, &effs[i])
		}
	}
}

func (p *poolActor) do(ctx actor.Context, e *Effect) {
	switch e.Kind {
	case EffSubmit:
		call := wk.Call{Key: e.Key, Req: e.Req, Deadline: e.At, Retryable: e.Retryable}
		call.ReplyTo, _ = e.ReplyTo.(*actor.PID)
		call.Local, _ = e.ReplyTo.(wk.Local)
		err := error(wk.ErrClosed)
		switch {
		case e.Exec == nil:
		case call.Local != nil:
			// A local caller runs the call itself.
			var g *wk.Grant
			if g, err = e.Exec.Reserve(call); err == nil {
				call.Local <- g
			}
		default:
			err = e.Exec.Submit(call)
		}
		if err != nil {
			p.core.OnSubmitFailed(e.Key, e.Worker, e.Generation, err, time.Now())
		}
	case EffReply:
		deliver(ctx, e.ReplyTo, terminal(e.Req, e.Err))
	case EffReadyReply:
		deliver(ctx, e.ReplyTo, e.ReadyReply)
	case EffCancel:
		if e.Exec != nil {
			e.Exec.Cancel(e.Key)
		}
	case EffCredit:
		if e.Exec != nil {
			e.Exec.Credit(e.Key, e.Credits)
		}
	case EffStopRetries:
		if e.Exec != nil {
			e.Exec.StopRetries()
		}
	case EffStart:
		p.start(ctx, e.Worker)
	case EffStop:
		p.stop(ctx, e.Worker, e.Timeout, e.Report)
	case EffPublish:
		if ev := p.core.cfg.Events; ev != nil {
			ev.Publish(e.Event)
		}
	case EffArm:
		p.arm(ctx, e.At)
	}
}

// deliver sends msg to a caller: a PID, or a local caller's channel.
func deliver(ctx actor.SenderContext, to any, msg any) {
	switch to := to.(type) {
	case *actor.PID:
		ctx.Send(to, msg)
	case wk.Local:
		to <- msg // never waits: see worker.LocalBuffer
	}
}

// start starts a worker under the worker supervisor, from the pool's
// worker template.
func (p *poolActor) start(ctx actor.Context, id WorkerID) {
	cfg := p.core.cfg
	wc := cfg.Worker
	wc.WorkerID, wc.PoolName, wc.Pool = string(id), cfg.Name, ctx.Self()
	if wc.Logger == nil {
		wc.Logger = cfg.Logger
	}
	p.startReplies = append(p.startReplies, id)
	ctx.Request(cfg.WorkerSupervisor, &supervisors.StartChild{Spec: supervisors.ChildSpec{
		Name:     string(id),
		Props:    cfg.WorkerProps(wc),
		Restart:  supervisors.Transient,
		Shutdown: wc.ShutdownTimeout(),
	}})
}

// stop stops a worker under the worker supervisor; with report the core
// hears when it is done.
func (p *poolActor) stop(ctx actor.Context, id WorkerID, timeout time.Duration, report bool) {
	msg := &supervisors.TerminateChild{Name: string(id)}
	if !report {
		ctx.Request(p.core.cfg.WorkerSupervisor, msg)
		return
	}
	fut := ctx.RequestFuture(p.core.cfg.WorkerSupervisor, msg, timeout)
	ctx.ReenterAfter(fut, func(_ any, err error) {
		if err != nil {
			p.log.Error("stopping a worker failed", "worker", id, "error", err)
		}
		p.core.OnStopped(id, time.Now())
		p.carryOut(ctx)
	})
}

// arm points the one timer at at.
func (p *poolActor) arm(ctx actor.Context, at time.Time) {
	if p.timer != nil {
		p.timer.Stop()
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	p.timer = time.AfterFunc(time.Until(at), func() { root.Send(self, &tick{at: at}) })
}

// terminal is the one terminal reply for req carrying e.
func terminal(req *poolpb.Execute, e *sperr.Error) any {
	if req.GetStream() {
		return &poolpb.Chunk{RequestId: req.GetRequestId(), IsFinal: true, Error: sperr.ToProto(e)}
	}
	return &poolpb.Result{RequestId: req.GetRequestId(), Error: sperr.ToProto(e)}
}
