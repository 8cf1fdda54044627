package registry

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	actorask "github.com/snakepit-go/snakepit/internal/ask"
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

// ask sends msg with the shared helper (ctx, then the client's timeout).
func ask[T any](ctx context.Context, c *Client, msg any) (T, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return actorask.Ask[T](ctx, c.Root, c.PID, msg, timeout, "worker registry")
}
