package pool

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// Deadlines: one timer, armed at the earliest queue or AwaitReady deadline.

func (p *poolActor) onTick(ctx actor.Context) {
	p.timerAt = time.Time{}
	now := time.Now()
	for _, r := range p.sched.Expire(now) {
		p.stats.QueueTimeouts++
		p.fail(ctx, r.ID, p.poolErr(sperr.CodeQueueTimeout, "no worker was free within the queue timeout"))
	}
	p.answerAwaiters(ctx, now)
	p.untaint(ctx, now)
	p.reconcile(ctx, now)
	p.checkDrain(ctx)
	p.rearm(ctx)
}

// lifecycleDeadline is the earliest taint expiry, slot retry or drain
// deadline (ok false if none).
func (p *poolActor) lifecycleDeadline() (next time.Time, ok bool) {
	consider := func(t time.Time) {
		if !t.IsZero() && (!ok || t.Before(next)) {
			next, ok = t, true
		}
	}
	for _, w := range p.workers {
		if w.exec != nil && !w.draining {
			consider(w.taintedUntil)
		}
		if w.dead && !w.starting {
			consider(w.retryAt)
		}
	}
	if p.recycling != nil && !p.recycling.stopping {
		consider(p.recycling.deadline)
	}
	return next, ok
}

// rearm points the single timer at the earliest deadline of all: queue,
// lifecycle (taints, retries, drains) and AwaitReady. Every handler that
// changes a lifecycle or AwaitReady deadline calls it; onTick recomputes
// everything when the timer fires.
func (p *poolActor) rearm(ctx actor.Context) {
	next, ok := p.sched.NextDeadline()
	if t, lok := p.lifecycleDeadline(); lok && (!ok || t.Before(next)) {
		next, ok = t, true
	}
	for _, a := range p.awaiters {
		if !a.deadline.IsZero() && (!ok || a.deadline.Before(next)) {
			next, ok = a.deadline, true
		}
	}
	p.armAt(ctx, next, ok)
}

// rearmQueue is rearm for the call path, where only queue deadlines can
// have changed: it costs nothing per worker. The timer only ever moves
// earlier, so the other deadlines it already covers stay covered.
func (p *poolActor) rearmQueue(ctx actor.Context) {
	next, ok := p.sched.NextDeadline()
	p.armAt(ctx, next, ok)
}

// armAt moves the timer to next when that is earlier than where it points.
func (p *poolActor) armAt(ctx actor.Context, next time.Time, ok bool) {
	if !ok || (!p.timerAt.IsZero() && !next.Before(p.timerAt)) {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	p.timerAt = next
	self, root := ctx.Self(), ctx.ActorSystem().Root
	p.timer = time.AfterFunc(time.Until(next), func() { root.Send(self, &tick{at: next}) })
}

func (p *poolActor) onAwaitReady(ctx actor.Context, m *poolpb.AwaitReady) {
	a := awaiter{replyTo: ctx.Sender(), all: m.GetAll()}
	if a.replyTo == nil {
		return
	}
	if dl := m.GetDeadlineUnixNano(); dl > 0 {
		a.deadline = time.Unix(0, dl)
	}
	p.awaiters = append(p.awaiters, a)
	p.answerAwaiters(ctx, time.Now())
	p.rearm(ctx)
}

// answerAwaiters answers every AwaitReady whose condition holds, whose
// deadline passed, or that can never be met.
func (p *poolActor) answerAwaiters(ctx actor.Context, now time.Time) {
	ready, settled := 0, 0
	for _, w := range p.workers {
		if w.exec != nil {
			ready++
		}
		if w.startedOK || w.failed {
			settled++
		}
	}
	keep := p.awaiters[:0]
	for _, a := range p.awaiters {
		reply := &poolpb.ReadyReply{Pool: p.cfg.Name, Ready: uint64(ready), Workers: uint64(len(p.workers))}
		switch {
		case p.state == StateInitFailed:
			reply.Error = sperr.ToProto(p.initFailedErr())
		case p.state == StateStopping:
			reply.Error = sperr.ToProto(p.poolErr(sperr.CodeShutdown, "pool %s is stopping", p.cfg.Name))
		case !a.all && ready > 0, a.all && settled == len(p.workers):
		case !a.deadline.IsZero() && !now.Before(a.deadline):
			reply.Error = sperr.ToProto(p.poolErr(sperr.CodeDeadlineExceeded,
				"pool %s: %d of %d workers ready at the deadline", p.cfg.Name, ready, len(p.workers)))
		default:
			keep = append(keep, a)
			continue
		}
		ctx.Send(a.replyTo, reply)
	}
	p.awaiters = keep
}
