// Package ask is the one request/response helper of the host: the actors'
// typed clients, the supervisors' and the App's requests all send a message
// with RequestFuture and wait for a typed answer, bounded by the caller's
// context and a timeout. (Streams, which get many messages, use the App's
// inbox instead.)
package ask

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Ask sends msg to pid and waits for an answer of type T, for ctx to be done
// or for timeout, whichever comes first. When ctx ends first the error
// matches ctx.Err(); when timeout passes first, actor.ErrTimeout (and
// context.DeadlineExceeded when ctx's deadline was the shorter bound).
// A request to an actor that does not exist fails with actor.ErrDeadLetter.
// what names the callee in errors ("worker registry"). sender is the root
// context or an actor's.
func Ask[T any](ctx context.Context, sender actor.SenderContext, pid *actor.PID, msg any, timeout time.Duration, what string) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	byDeadline := false
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout, byDeadline = left, true
		}
	}
	if timeout <= 0 {
		return zero, context.DeadlineExceeded
	}

	sys := sender.ActorSystem()
	f := sender.RequestFuture(pid, msg, timeout)
	var res any
	var err error
	if ctx.Done() == nil {
		res, err = f.Result() // ctx can never end: nothing to watch
	} else {
		// On cancellation, complete the future early. Stop is a no-op on a future already completed;
		// looking the future up first avoids a dead letter when it has completed and left the
		// process registry.
		cancelled := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(cancelled)
			if p, ok := sys.ProcessRegistry.Get(f.PID()); ok {
				p.Stop(f.PID())
			}
		})
		res, err = f.Result()
		if !stop() {
			<-cancelled // the AfterFunc has run or is running: join it
			if res == nil && (err == nil || errors.Is(err, actor.ErrTimeout)) {
				return zero, ctx.Err()
			}
		}
	}
	if err != nil {
		if byDeadline && errors.Is(err, actor.ErrTimeout) {
			return zero, fmt.Errorf("%s %T: %w (%w)", what, msg, context.DeadlineExceeded, err)
		}
		return zero, fmt.Errorf("%s %T: %w", what, msg, err)
	}
	out, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("%s %T: unexpected reply %T", what, msg, res)
	}
	return out, nil
}
