package sessions

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	actorask "github.com/snakepit-go/snakepit/internal/ask"
)

// DefaultTimeout bounds a Client request when Client.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// Client sends the session store's requests with RequestFuture and waits for the typed answers. Use it
// from outside actors (the gRPC bridge's handlers, the public API, tests) or from a goroutine; an actor
// should not block its mailbox on it, and sends ctx.Request instead.
//
// Every method that waits honours ctx: it waits at most until ctx is done or Timeout (DefaultTimeout when
// zero) passes, whichever comes first. When ctx is done first it returns an error matching ctx.Err()
// (context.Canceled or context.DeadlineExceeded); when Timeout passes first, one matching actor.ErrTimeout.
// Root and PID must be set.
type Client struct {
	Root    *actor.RootContext // sends the requests, e.g. system.Root
	PID     *actor.PID         // the session store
	Timeout time.Duration      // per request; DefaultTimeout when zero
}

// Create creates session id (see Create for the rules) and returns it and whether it is new. ttl zero
// means the store's default. The error wraps ErrInvalidID or ErrQuotaExceeded when the store refuses.
func (c *Client) Create(ctx context.Context, id string, metadata map[string]string, ttl time.Duration) (Session, bool, error) {
	res, err := ask[*CreateResult](ctx, c, &Create{ID: id, Metadata: metadata, TTL: ttl})
	if err != nil {
		return Session{}, false, err
	}
	return res.Session, res.Created, res.Err
}

// Get returns session id and touches it. The error wraps ErrNotFound or ErrInvalidID when there is no
// such live session.
func (c *Client) Get(ctx context.Context, id string) (Session, error) {
	res, err := ask[*GetResult](ctx, c, &Get{ID: id})
	if err != nil {
		return Session{}, err
	}
	return res.Session, res.Err
}

// Touch marks session id as used now, without waiting.
func (c *Client) Touch(id string) { c.Root.Send(c.PID, &Touch{ID: id}) }

// Valid touches session id and reports whether it exists and has not expired. An invalid id returns an
// error wrapping ErrInvalidID without asking the store.
func (c *Client) Valid(ctx context.Context, id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	res, err := ask[*TouchResult](ctx, c, &Touch{ID: id})
	if err != nil {
		return false, err
	}
	return res.Valid, nil
}

// Update applies u to session id (u.ID is ignored; see Update for the rules) and returns the updated
// session. The error wraps ErrNotFound or ErrInvalidID when there is no such live session.
func (c *Client) Update(ctx context.Context, id string, u Update) (Session, error) {
	u.ID = id
	res, err := ask[*UpdateResult](ctx, c, &u)
	if err != nil {
		return Session{}, err
	}
	return res.Session, res.Err
}

// Delete removes session id and reports whether a live session was deleted. An invalid id returns an
// error wrapping ErrInvalidID without asking the store.
func (c *Client) Delete(ctx context.Context, id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	res, err := ask[*DeleteResult](ctx, c, &Delete{ID: id})
	if err != nil {
		return false, err
	}
	return res.Found, nil
}

// List returns the live sessions, sorted by ID.
func (c *Client) List(ctx context.Context) ([]Session, error) {
	res, err := ask[*ListResult](ctx, c, &List{})
	if err != nil {
		return nil, err
	}
	return res.Sessions, nil
}

// Stats returns the store's counters.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	res, err := ask[*Stats](ctx, c, &GetStats{})
	if err != nil {
		return Stats{}, err
	}
	return *res, nil
}

// Sweep removes every expired session at once and returns how many it removed.
func (c *Client) Sweep(ctx context.Context) (int, error) {
	res, err := ask[*SweepResult](ctx, c, &Sweep{})
	if err != nil {
		return 0, err
	}
	return res.Expired, nil
}

// ask sends msg with the shared helper (ctx, then the client's timeout).
func ask[T any](ctx context.Context, c *Client, msg any) (T, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return actorask.Ask[T](ctx, c.Root, c.PID, msg, timeout, "session store")
}
