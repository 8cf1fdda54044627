package ask

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type ping struct{ hold chan struct{} }
type pong struct{ n int }

// echo answers ping with pong, after hold is closed when it is set.
type echo struct{ n int }

func (e *echo) Receive(ctx actor.Context) {
	if p, ok := ctx.Message().(*ping); ok {
		if p.hold != nil {
			<-p.hold
		}
		e.n++
		ctx.Respond(&pong{n: e.n})
	}
}

func newSystem(t *testing.T) (*actor.ActorSystem, *actor.PID) {
	t.Helper()
	sys := testutil.NewSystem(t)
	return sys, testutil.Spawn(t, sys, actor.PropsFromProducer(func() actor.Actor { return &echo{} }))
}

func TestAsk(t *testing.T) {
	sys, pid := newSystem(t)
	root := sys.Root

	t.Run("typed answer", func(t *testing.T) {
		got, err := Ask[*pong](t.Context(), root, pid, &ping{}, time.Second, "echo")
		require.NoError(t, err)
		assert.Positive(t, got.n)
	})
	t.Run("wrong answer type", func(t *testing.T) {
		_, err := Ask[*ping](t.Context(), root, pid, &ping{}, time.Second, "echo")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "echo *ask.ping: unexpected reply *ask.pong")
	})
	t.Run("cancelled context ends the wait at once", func(t *testing.T) {
		hold := make(chan struct{})
		defer close(hold)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := Ask[*pong](ctx, root, pid, &ping{hold: hold}, time.Minute, "echo")
			errc <- err
		}()
		cancel()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Fatal("Ask did not return when its context was cancelled")
		}
	})
	t.Run("already done context sends nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Ask[*pong](ctx, root, pid, &ping{}, time.Second, "echo")
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("a shorter context deadline bounds the wait", func(t *testing.T) {
		hold := make(chan struct{})
		defer close(hold)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		defer cancel()
		_, err := Ask[*pong](ctx, root, pid, &ping{hold: hold}, time.Minute, "echo")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("the timeout bounds the wait", func(t *testing.T) {
		hold := make(chan struct{})
		defer close(hold)
		_, err := Ask[*pong](t.Context(), root, pid, &ping{hold: hold}, 20*time.Millisecond, "echo")
		assert.ErrorIs(t, err, actor.ErrTimeout)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("an actor that does not exist is a dead letter", func(t *testing.T) {
		gone := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &echo{} }))
		require.NoError(t, sys.Root.StopFuture(gone).Wait())
		_, err := Ask[*pong](t.Context(), root, gone, &ping{}, time.Second, "echo")
		assert.True(t, errors.Is(err, actor.ErrDeadLetter), "%v", err)
	})
	t.Run("from inside an actor", func(t *testing.T) {
		res := make(chan error, 1)
		asker := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(string); ok {
				_, err := Ask[*pong](context.Background(), c, pid, &ping{}, time.Second, "echo")
				res <- err
			}
		}))
		defer func() { _ = sys.Root.StopFuture(asker).Wait() }()
		sys.Root.Send(asker, "go")
		assert.NoError(t, <-res)
	})
}
