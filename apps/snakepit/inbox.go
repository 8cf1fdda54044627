package snakepit

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/internal/sperr"
)

// inbox is a reply address for one call: a process in the actor system's
// registry (so it has a PID any actor, local or remote, can send to) backed
// by a Go channel. A full channel blocks the sender — the worker's stream
// goroutine — which is the stream's back-pressure. Once closed it drops
// everything, so a caller that gave up never blocks a worker.
type inbox struct {
	system *actor.ActorSystem
	pid    *actor.PID
	ch     chan any
	done   chan struct{}
	once   sync.Once
	// reason says why the inbox was closed from outside (App.Stop); a
	// reader blocked on it returns this error.
	reason error
}

func newInbox(system *actor.ActorSystem, buffer int) *inbox {
	in := &inbox{system: system, ch: make(chan any, buffer), done: make(chan struct{})}
	pid, _ := system.ProcessRegistry.Add(in, "inbox"+system.ProcessRegistry.NextId())
	in.pid = pid
	return in
}

// SendUserMessage queues a reply, waiting while the channel is full unless
// the inbox is closed.
func (in *inbox) SendUserMessage(_ *actor.PID, message any) {
	_, msg, _ := actor.UnwrapEnvelope(message)
	select {
	case <-in.done:
		return
	default:
	}
	select {
	case in.ch <- msg:
	case <-in.done:
	}
}

// closedErr is what a reader of a closed inbox gets.
func (in *inbox) closedErr() error {
	if in.reason != nil {
		return in.reason
	}
	return sperr.New(sperr.CodeCancelled, "closed")
}

// SendSystemMessage ignores system messages (an inbox watches nothing).
func (in *inbox) SendSystemMessage(*actor.PID, any) {}

// Stop closes the inbox.
func (in *inbox) Stop(*actor.PID) { in.close() }

// close removes the inbox from the registry and releases blocked senders.
func (in *inbox) close() { in.closeWith(nil) }

// closeWith closes the inbox; a reader waiting on it gets reason.
func (in *inbox) closeWith(reason error) {
	in.once.Do(func() {
		in.reason = reason
		close(in.done)
		in.system.ProcessRegistry.Remove(in.pid)
	})
}

// terminationWatcher is a process that watches one actor and closes done
// when the actor has terminated. App.Stop uses it instead of PoisonFuture,
// whose timeout is fixed at 10 s.
type terminationWatcher struct {
	system *actor.ActorSystem
	pid    *actor.PID
	done   chan struct{}
	once   sync.Once
}

func watchTermination(system *actor.ActorSystem, target *actor.PID) *terminationWatcher {
	w := &terminationWatcher{system: system, done: make(chan struct{})}
	w.pid, _ = system.ProcessRegistry.Add(w, "watch"+system.ProcessRegistry.NextId())
	proc, _ := system.ProcessRegistry.Get(target) // dead letters answer a Watch with Terminated
	proc.SendSystemMessage(target, &actor.Watch{Watcher: w.pid})
	return w
}

// SendUserMessage ignores user messages.
func (w *terminationWatcher) SendUserMessage(*actor.PID, any) {}

// SendSystemMessage closes done on Terminated.
func (w *terminationWatcher) SendSystemMessage(_ *actor.PID, message any) {
	if _, ok := message.(*actor.Terminated); ok {
		w.close()
	}
}

// Stop closes the watcher.
func (w *terminationWatcher) Stop(*actor.PID) { w.close() }

func (w *terminationWatcher) close() {
	w.once.Do(func() {
		close(w.done)
		w.system.ProcessRegistry.Remove(w.pid)
	})
}

// next receives the next message of a stream, bounded by ctx and limit. A
// dead letter (the pool is gone) ends the stream with shutdown when the
// App stopped, else no_workers.
func (in *inbox) next(ctx context.Context, limit time.Duration, stopped bool) (any, error) {
	select {
	case <-in.done: // closed from outside (App.Stop): that wins over buffered chunks
		return nil, in.closedErr()
	default:
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case m := <-in.ch:
		if _, dead := m.(*actor.DeadLetterResponse); dead {
			if stopped {
				return nil, sperr.New(sperr.CodeShutdown, "snakepit is stopped")
			}
			return nil, sperr.New(sperr.CodeNoWorkers, "the pool is not running (restarting?)")
		}
		return m, nil
	case <-ctx.Done():
		return nil, sperr.FromContext(ctx.Err())
	case <-in.done:
		return nil, in.closedErr()
	case <-t.C:
		return nil, sperr.New(sperr.CodeDeadlineExceeded, "no reply within %s", limit)
	}
}
