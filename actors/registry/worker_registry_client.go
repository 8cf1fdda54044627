package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// DefaultTimeout bounds a Client request when Client.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Client sends the worker registry's requests with RequestFuture and waits for the typed answers. Use it
// from outside actors (tests, the app, the CLI) or from a goroutine; an actor should not block its mailbox
// on it, and sends ctx.Request instead (see Props).
//
// Every method honours ctx: it waits at most until ctx is done or Timeout (DefaultTimeout when zero)
// passes, whichever comes first. When ctx is done first it returns an error matching ctx.Err()
// (context.Canceled or context.DeadlineExceeded) at once; when Timeout passes first, one matching
// actor.ErrTimeout. Root and PID must be set.
//
// A request cancelled at the very moment its reply arrives can trip the race detector inside protoactor's
// Future (the reply is stored without a lock); the same holds for every Future that times out.
type Client struct {
	Root    *actor.RootContext // sends the requests, e.g. system.Root
	PID     *actor.PID         // the worker registry
	Timeout time.Duration      // per request; DefaultTimeout when zero
}

// Register registers m; see Register for the rules. The error wraps ErrInvalidMeta or ErrAlreadyRegistered
// when the registry refuses m.
func (c *Client) Register(ctx context.Context, m WorkerMeta) error {
	res, err := ask[*RegisterResult](ctx, c, &Register{Meta: m})
	if err != nil {
		return err
	}
	return res.Err
}

// Unregister removes the worker id and reports whether it was registered.
func (c *Client) Unregister(ctx context.Context, id string) (bool, error) {
	res, err := ask[*UnregisterResult](ctx, c, &Unregister{WorkerID: id})
	if err != nil {
		return false, err
	}
	return res.Found, nil
}

// Lookup returns the metadata of worker id and whether it is registered.
func (c *Client) Lookup(ctx context.Context, id string) (WorkerMeta, bool, error) {
	return c.lookup(ctx, &Lookup{WorkerID: id})
}

// LookupPID returns the metadata of the worker whose actor is pid and whether there is one.
func (c *Client) LookupPID(ctx context.Context, pid *actor.PID) (WorkerMeta, bool, error) {
	return c.lookup(ctx, &LookupPID{PID: pid})
}

// LookupOSPid returns the metadata of the worker whose Python process is osPid and whether there is one.
func (c *Client) LookupOSPid(ctx context.Context, osPid int) (WorkerMeta, bool, error) {
	return c.lookup(ctx, &LookupOSPid{OSPid: osPid})
}

// ListPool returns the workers of pool, sorted by WorkerID.
func (c *Client) ListPool(ctx context.Context, pool string) ([]WorkerMeta, error) {
	res, err := ask[*ListResult](ctx, c, &ListPool{PoolName: pool})
	if err != nil {
		return nil, err
	}
	return res.Workers, nil
}

// ListAll returns every registered worker, sorted by WorkerID.
func (c *Client) ListAll(ctx context.Context) ([]WorkerMeta, error) {
	res, err := ask[*ListResult](ctx, c, &ListAll{})
	if err != nil {
		return nil, err
	}
	return res.Workers, nil
}

func (c *Client) lookup(ctx context.Context, msg any) (WorkerMeta, bool, error) {
	res, err := ask[*LookupResult](ctx, c, msg)
	if err != nil {
		return WorkerMeta{}, false, err
	}
	return res.Meta, res.Found, nil
}

// ask sends msg to the registry with RequestFuture and waits for an answer of type T, for ctx to be done
// or for the client's timeout, whichever comes first.
func ask[T any](ctx context.Context, c *Client, msg any) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
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

	sys := c.Root.ActorSystem()
	f := c.Root.RequestFuture(c.PID, msg, timeout)
	// On cancellation, complete the future early. Stop is a no-op on a future already completed; looking
	// the future up first avoids a dead letter when it has completed and left the process registry.
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(cancelled)
		if p, ok := sys.ProcessRegistry.Get(f.PID()); ok {
			p.Stop(f.PID())
		}
	})
	res, err := f.Result()
	if !stop() {
		<-cancelled // the AfterFunc has run or is running: join it
		if res == nil && (err == nil || errors.Is(err, actor.ErrTimeout)) {
			return zero, ctx.Err()
		}
	}
	if err != nil {
		if byDeadline && errors.Is(err, actor.ErrTimeout) {
			return zero, fmt.Errorf("worker registry %T: %w (%w)", msg, context.DeadlineExceeded, err)
		}
		return zero, fmt.Errorf("worker registry %T: %w", msg, err)
	}
	out, ok := res.(T)
	if !ok {
		return zero, fmt.Errorf("worker registry %T: unexpected reply %T", msg, res)
	}
	return out, nil
}
