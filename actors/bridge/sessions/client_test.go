package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// silentClient returns a client whose "store" never answers.
func silentClient(t *testing.T, timeout time.Duration) *Client {
	t.Helper()
	sys := testutil.NewSystem(t)
	pid := testutil.Spawn(t, sys, actor.PropsFromFunc(func(actor.Context) {}))
	return &Client{Root: sys.Root, PID: pid, Timeout: timeout}
}

// clientCalls runs every waiting Client method and returns its error.
var clientCalls = []struct {
	name string
	call func(ctx context.Context, c *Client) error
}{
	{"Create", func(ctx context.Context, c *Client) error { _, _, err := c.Create(ctx, "s", nil, 0); return err }},
	{"Get", func(ctx context.Context, c *Client) error { _, err := c.Get(ctx, "s"); return err }},
	{"Valid", func(ctx context.Context, c *Client) error { _, err := c.Valid(ctx, "s"); return err }},
	{"Update", func(ctx context.Context, c *Client) error { _, err := c.Update(ctx, "s", Update{}); return err }},
	{"Delete", func(ctx context.Context, c *Client) error { _, err := c.Delete(ctx, "s"); return err }},
	{"List", func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }},
	{"Stats", func(ctx context.Context, c *Client) error { _, err := c.Stats(ctx); return err }},
	{"Sweep", func(ctx context.Context, c *Client) error { _, err := c.Sweep(ctx); return err }},
}

func TestClientCancelledContext(t *testing.T) {
	st := startStore(t, Config{})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range clientCalls {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.call(cancelled, st.Client), context.Canceled)
		})
	}
	stats, err := st.Stats(context.Background())
	require.NoError(t, err)
	require.Zero(t, stats.Created, "a cancelled Create was not sent")
}

func TestClientCancelledWhileWaiting(t *testing.T) {
	c := silentClient(t, time.Minute)
	for _, tc := range clientCalls {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(10*time.Millisecond, cancel)
			require.ErrorIs(t, tc.call(ctx, c), context.Canceled)
		})
	}
}

func TestClientDeadline(t *testing.T) {
	c := silentClient(t, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, "s")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestClientTimeout(t *testing.T) {
	c := silentClient(t, 20*time.Millisecond)
	_, err := c.List(context.Background())
	require.ErrorIs(t, err, actor.ErrTimeout)
}
