package pool

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// afterStopMailbox is the pool's mailbox: protoactor's unbounded one, with
// one difference. protoactor silently drops the user messages still in a
// mailbox when its actor has stopped (a PoisonPill ends a childless actor
// at once, and whatever was queued behind it is never processed). For a
// pool that would leave callers without a reply, so once a stop has gone
// through the mailbox, the requests behind it are answered here: an
// Execute or ExecuteLocal with shutdown, an AwaitReady with shutdown, and an idempotent
// call handed back by its dying worker (CallDone{Unanswered}) with that
// worker's error. Everything else is dropped, as before.
func afterStopMailbox(pool string) actor.MailboxProducer {
	inner := actor.Unbounded()
	return func() actor.Mailbox {
		return &guardedMailbox{Mailbox: inner(), pool: pool}
	}
}

type guardedMailbox struct {
	actor.Mailbox
	pool string
}

func (m *guardedMailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.Mailbox.RegisterHandlers(&stopGuard{inner: invoker, pool: m.pool}, dispatcher)
}

// stopGuard sits between the mailbox and the pool's context.
type stopGuard struct {
	inner   actor.MessageInvoker
	pool    string
	stopped atomic.Bool
}

func (g *stopGuard) InvokeSystemMessage(msg any) {
	g.inner.InvokeSystemMessage(msg)
	if _, ok := msg.(*actor.Stop); ok {
		g.stopped.Store(true)
	}
}

func (g *stopGuard) InvokeUserMessage(msg any) {
	if !g.stopped.Load() {
		g.inner.InvokeUserMessage(msg)
		if _, ok := msg.(*actor.PoisonPill); ok {
			g.stopped.Store(true)
		}
		return
	}
	g.answer(msg)
}

func (g *stopGuard) EscalateFailure(reason any, message any) {
	g.inner.EscalateFailure(reason, message)
}

// answer replies to a request that reached the pool after it stopped.
func (g *stopGuard) answer(msg any) {
	ctx, ok := g.inner.(actor.Context)
	if !ok {
		return
	}
	_, m, sender := actor.UnwrapEnvelope(msg)
	stopped := func() *sperr.Error {
		e := sperr.New(sperr.CodeShutdown, "pool %s has stopped", g.pool)
		e.Pool = g.pool
		return e
	}
	if answerOrphan(ctx, m, stopped()) {
		return
	}
	switch m := m.(type) {
	case *poolpb.Execute:
		if sender != nil {
			ctx.Send(sender, terminal(m, stopped()))
		}
	case *poolpb.AwaitReady:
		if sender != nil {
			ctx.Send(sender, &poolpb.ReadyReply{Pool: g.pool, Error: sperr.ToProto(stopped())})
		}
	}
}

// answerOrphan answers, with e, a call no pool will take: a local call's
// request, or a call its dying worker handed back; it reports whether msg
// was one. A request from a PID is the protoactor dead-letter process's to
// answer (DeadLetterResponse) once the pool is gone, so it is not here.
func answerOrphan(ctx actor.SenderContext, msg any, e *sperr.Error) bool {
	switch m := msg.(type) {
	case *ExecuteLocal:
		m.Reply <- terminal(m.Req, e)
	case *wk.CallDone:
		if to := m.Caller(); m.Unanswered && to != nil {
			if m.Err != nil {
				e = m.Err
			}
			deliver(ctx, to, terminal(&poolpb.Execute{RequestId: m.RequestID}, e))
		}
	default:
		return false
	}
	return true
}

// AnswerLost answers what answerOrphan answers when its message became a
// dead letter (sent to a pool that has stopped and left the registry):
// nobody else will. Subscribe it to the actor system's event stream, with
// root the system's root context.
func AnswerLost(root actor.SenderContext, evt any) {
	if dl, ok := evt.(*actor.DeadLetterEvent); ok {
		answerOrphan(root, dl.Message, sperr.New(sperr.CodeNoWorkers, "%s is not running (restarting?)", dl.PID.GetId()))
	}
}
