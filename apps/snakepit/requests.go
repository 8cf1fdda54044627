package snakepit

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/internal/ask"
	"github.com/snakepit-go/snakepit/internal/sperr"
)

// askPool sends msg to the named pool and expects a reply of type R.
func askPool[R any](ctx context.Context, a *App, poolName string, msg any) (R, error) {
	pid, err := a.poolPID(poolName)
	if err != nil {
		var zero R
		return zero, err
	}
	return call[R](ctx, a, pid, msg, 10*time.Second)
}

// call is the App's one request/response with an actor (internal/ask),
// bounded by ctx and limit, its failures turned into structured errors.
func call[R any](ctx context.Context, a *App, pid *actor.PID, msg any, limit time.Duration) (R, error) {
	res, err := ask.Ask[R](ctx, a.system.Root, pid, msg, limit, pid.GetId())
	if err == nil {
		return res, nil
	}
	var zero R
	switch {
	case ctx.Err() != nil:
		return zero, sperr.FromContext(ctx.Err())
	case errors.Is(err, actor.ErrDeadLetter) && a.stopped.Load():
		return zero, sperr.New(sperr.CodeShutdown, "snakepit is stopped")
	case errors.Is(err, actor.ErrDeadLetter):
		return zero, sperr.New(sperr.CodeNoWorkers, "%s is not running (restarting?)", pid.GetId())
	case errors.Is(err, actor.ErrTimeout):
		return zero, sperr.Wrap(sperr.CodeDeadlineExceeded, err, "no reply within %s", limit.Round(time.Millisecond))
	}
	return zero, sperr.Wrap(sperr.CodeInternal, err, "%v", err)
}
