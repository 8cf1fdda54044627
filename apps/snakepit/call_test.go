package snakepit

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type question struct{ hold chan struct{} }
type answer struct{}

// The App's one request/response helper turns every way a request can end
// into a structured error.
func TestCallMapsEveryEnding(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}), actor.WithDeadLetterThrottleInterval(10*time.Millisecond))
	defer sys.Shutdown()
	responder := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if q, ok := c.Message().(*question); ok {
			if q.hold != nil {
				<-q.hold
			}
			c.Respond(&answer{})
		}
	}))
	defer func() { _ = sys.Root.StopFuture(responder).Wait() }()
	gone := sys.Root.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	require.NoError(t, sys.Root.StopFuture(gone).Wait())
	a := &App{system: sys}

	got, err := call[*answer](t.Context(), a, responder, &question{}, time.Second)
	require.NoError(t, err)
	assert.NotNil(t, got)

	_, err = call[*answer](t.Context(), a, gone, &question{}, time.Second)
	assert.ErrorIs(t, public(err), ErrNoWorkers)
	a.stopped.Store(true)
	_, err = call[*answer](t.Context(), a, gone, &question{}, time.Second)
	assert.ErrorIs(t, public(err), ErrShutdown)
	a.stopped.Store(false)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = call[*answer](ctx, a, responder, &question{}, time.Second)
	assert.ErrorIs(t, public(err), ErrCancelled)

	_, err = call[*question](t.Context(), a, responder, &question{}, time.Second)
	var e *Error
	require.ErrorAs(t, public(err), &e)
	assert.Equal(t, CodeInternal, e.Code, "an unexpected reply type")

	// Last: the responder stays blocked until the test ends.
	hold := make(chan struct{})
	defer close(hold)
	_, err = call[*answer](t.Context(), a, responder, &question{hold: hold}, 20*time.Millisecond)
	assert.ErrorIs(t, public(err), ErrDeadlineExceeded)

}
