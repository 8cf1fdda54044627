package supervisors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/internal/ask"
)

// RequestStartChild asks the supervisor sup to start a child (see [StartChild]) and waits up to timeout
// for the answer. It blocks the caller: do not call it from one of sup's children while sup is busy
// with that child.
func RequestStartChild(ctx actor.SenderContext, sup *actor.PID, spec ChildSpec, timeout time.Duration) (*actor.PID, error) {
	res, err := request[*StartChildResult](ctx, sup, &StartChild{Spec: spec}, timeout)
	if err != nil {
		return nil, err
	}
	return res.PID, res.Err
}

// RequestTerminateChild asks the supervisor sup to stop and remove a child (see [TerminateChild]) and
// waits up to timeout for the answer.
func RequestTerminateChild(ctx actor.SenderContext, sup *actor.PID, name string, timeout time.Duration) error {
	res, err := request[*TerminateChildResult](ctx, sup, &TerminateChild{Name: name}, timeout)
	if err != nil {
		return err
	}
	return res.Err
}

// RequestWhichChildren asks the supervisor sup for its children in start order (see [WhichChildren])
// and waits up to timeout for the answer.
func RequestWhichChildren(ctx actor.SenderContext, sup *actor.PID, timeout time.Duration) ([]ChildInfo, error) {
	res, err := request[*Children](ctx, sup, &WhichChildren{}, timeout)
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}

func request[R any](ctx actor.SenderContext, sup *actor.PID, msg any, timeout time.Duration) (R, error) {
	return ask.Ask[R](context.Background(), ctx, sup, msg, timeout, "supervisors: supervisor "+sup.String())
}
