package supervisors

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/ctxext"
)

// incarnationExtID is the context extension slot where a child finds its incarnation (for Exit).
var incarnationExtID = ctxext.NextContextExtensionID()

// incarnation is one start of one child: what the child's receiver middleware reports to the
// supervisor. A restarted child has the same PID but a new incarnation, which is how the supervisor
// tells a stale Terminated or Failure from a current one.
//
// started and done are closed by the child's goroutine; the supervisor waits on them. handled is
// touched only by the supervisor.
type incarnation struct {
	id      string // actor id, "<supervisor id>/<name>"
	log     *slog.Logger
	started chan struct{} // closed when the Started handler has returned or panicked
	done    chan struct{} // closed when the Stopped handler has run: the name is free again

	// failed is set, and failedCh closed, when a panic left the child's mailbox suspended: stop it
	// with Stop, a poison pill would never be read.
	failed     atomic.Bool
	failedCh   chan struct{}
	failedOnce sync.Once

	mu       sync.Mutex
	startErr any // panic value of the Started handler
	exit     any // reason given to Exit, or a panic of the Stopping handler
	exitSet  bool

	// handled: the supervisor has taken charge of this incarnation's end (it stopped it, or it handled
	// its exit or failure); later Terminated or Failure messages about it are stale.
	handled bool
}

func newIncarnation(id string, log *slog.Logger) *incarnation {
	return &incarnation{
		id:       id,
		log:      log,
		started:  make(chan struct{}),
		done:     make(chan struct{}),
		failedCh: make(chan struct{}),
	}
}

// ExtensionID makes the incarnation a context extension, so Exit finds it from the child's context.
func (inc *incarnation) ExtensionID() ctxext.ContextExtensionID { return incarnationExtID }

// incarnationOf returns the incarnation stored in ctx, or nil for an actor no supervisor started.
// protoactor's Context.Get indexes a slice that only Set grows, so it panics for an id never set in
// that context; the recover turns that into "none".
func incarnationOf(ctx actor.ExtensionContext) (inc *incarnation) {
	defer func() {
		if recover() != nil {
			inc = nil
		}
	}()
	inc, _ = ctx.Get(incarnationExtID).(*incarnation)
	return inc
}

func (inc *incarnation) isDone() bool {
	select {
	case <-inc.done:
		return true
	default:
		return false
	}
}

func (inc *incarnation) setExit(reason any) {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	inc.exit, inc.exitSet = reason, true
}

// exitReason is the reason the child gave for exiting by itself: Normal unless Exit said otherwise.
func (inc *incarnation) exitReason() any {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	if !inc.exitSet || inc.exit == nil {
		return Normal
	}
	return inc.exit
}

func (inc *incarnation) startFailure() any {
	inc.mu.Lock()
	defer inc.mu.Unlock()
	return inc.startErr
}

// markFailed records that the instance's mailbox is suspended.
func (inc *incarnation) markFailed() {
	inc.failedOnce.Do(func() {
		inc.failed.Store(true)
		close(inc.failedCh)
	})
}

// fail records a panic of the child and returns the value to re-panic with, so the Failure that
// reaches the supervisor names this incarnation.
func (inc *incarnation) fail(r any) *crash {
	inc.markFailed()
	if c, ok := r.(*crash); ok && c.inc == inc {
		return c
	}
	return &crash{inc: inc, reason: r}
}

// middleware is the receiver middleware added to every child's props: it acknowledges Started,
// marks panics with the incarnation, keeps a panic in Stopping or Stopped from leaving the actor half
// stopped, and reports the end of the actor.
func (inc *incarnation) middleware(next actor.ReceiverFunc) actor.ReceiverFunc {
	return func(ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
		switch env.Message.(type) {
		case *actor.Started:
			ctx.Set(inc)
			inc.receiveStarted(next, ctx, env)
		case *actor.Stopping:
			inc.receiveShielded(next, ctx, env)
		case *actor.Stopped:
			defer close(inc.done)
			inc.receiveShielded(next, ctx, env)
		default:
			inc.receive(next, ctx, env)
		}
	}
}

func (inc *incarnation) receiveStarted(next actor.ReceiverFunc, ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
	returned := false
	defer func() {
		if returned {
			close(inc.started)
			return
		}
		r := recover()
		if r == nil { // runtime.Goexit: not a panic, but Started did not finish
			r = fmt.Errorf("supervisors: %s: Started handler exited its goroutine", inc.id)
		}
		c := inc.fail(r)
		inc.mu.Lock()
		inc.startErr = c.reason
		inc.mu.Unlock()
		close(inc.started)
		panic(c)
	}()
	next(ctx, env)
	returned = true
}

func (inc *incarnation) receive(next actor.ReceiverFunc, ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
	defer func() {
		if r := recover(); r != nil {
			panic(inc.fail(r))
		}
	}()
	next(ctx, env)
}

// receiveShielded runs a Stopping or Stopped handler; a panic there is logged and kept as the exit
// reason instead of escalated, because protoactor would leave an actor whose Stopping panicked
// suspended in the stopping state forever, holding its name.
func (inc *incarnation) receiveShielded(next actor.ReceiverFunc, ctx actor.ReceiverContext, env *actor.MessageEnvelope) {
	defer func() {
		if r := recover(); r != nil {
			inc.log.Error("child panicked while stopping",
				slog.String("child", inc.id), slog.String("message", fmt.Sprintf("%T", env.Message)),
				slog.Any("reason", r))
			inc.mu.Lock()
			if !inc.exitSet {
				inc.exit, inc.exitSet = r, true
			}
			inc.mu.Unlock()
		}
	}()
	next(ctx, env)
}
