package worker

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
	"github.com/snakepit-go/snakepit/proto/controlpb"
)

// probeTimeout bounds one liveness probe: a worker whose event loop is
// free answers Status in well under a millisecond.
const probeTimeout = time.Second

// callerLeft reports whether a call ended because its caller went away
// (cancelled, or its deadline passed) while the worker lives on: its tool
// may still be running. Not when the execution TTL is killing the process,
// nor when the executor closed (the process died or the worker stops).
func (x *Executor) callerLeft(err *sperr.Error, st *callState) bool {
	if err == nil || x.control == nil || st.killed.Load() {
		return false
	}
	if err.Code != sperr.CodeCancelled && err.Code != sperr.CodeDeadlineExceeded {
		return false
	}
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	return !closed
}

// settle waits until the worker says call c's tool has returned, probing
// it; when the tool still runs after the cancel grace, or the worker does
// not answer the probe (a blocked event loop), the process is killed and
// replaced. A worker that does not answer is reported unresponsive to the
// pool at once, so no new call reaches it meanwhile.
func (x *Executor) settle(c Call) {
	id := x.callID(c.Key)
	deadline := time.Now().Add(x.cancelGrace)
	unresponsive := false
	setResponsive := func(ok bool, why string) {
		if unresponsive == !ok || x.poolPID == nil {
			return
		}
		unresponsive = !ok
		x.sender.Send(x.poolPID, &Responsive{WorkerID: x.workerID, Generation: x.generation, OK: ok, Reason: why})
	}
	killed := false
	defer func() {
		if !killed {
			setResponsive(true, "")
		}
	}()
	pause := 20 * time.Millisecond
	var last string
	for {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		running, err := x.probe(min(remaining, probeTimeout), id)
		switch {
		case err == nil && !running:
			return // the tool has returned: the slot is free
		case err == errProbeClosed:
			return // the process is gone or the worker stops: nothing runs any more
		case err != nil:
			last = fmt.Sprintf("the worker does not answer its liveness probe (%v)", err)
			setResponsive(false, last)
		default:
			last = "its tool is still running"
			setResponsive(true, "")
		}
		select {
		case <-x.closing:
			return
		case <-time.After(min(pause, max(time.Until(deadline), 0))):
		}
		pause = min(2*pause, 200*time.Millisecond)
	}
	reason := fmt.Sprintf("a call to %s (correlation id %s) whose caller left was not done %s later: %s",
		sperr.Truncate(c.Req.GetTool(), sperr.EchoLimit), sperr.Truncate(c.Req.GetCorrelationId(), sperr.EchoLimit), x.cancelGrace, last)
	killed = true
	if x.kill != nil {
		x.kill(reason)
	}
	// Keep the slot until the process is gone, so the pool never hands the
	// dying worker another call.
	select {
	case <-x.closing:
	case <-time.After(x.exitWait + KillWait):
	}
}

// errProbeClosed: the executor closed while probing.
var errProbeClosed = fmt.Errorf("executor closed")

// probe asks the worker whether call id still runs. A worker without
// WorkerControl (upstream's Python bridge) is probed with Ping and is
// taken at its word that nothing runs once it answers.
func (x *Executor) probe(timeout time.Duration, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-x.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	st, err := x.control.Status(ctx, &controlpb.StatusRequest{})
	if isClosed(x.closing) {
		return false, errProbeClosed
	}
	if status.Code(err) == codes.Unimplemented {
		// Any answer, even an error status, shows the server's loop is free.
		_, err = x.client.Ping(ctx, &bridgepb.PingRequest{Message: "liveness"})
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range st.GetRunning() {
		if r.GetCallId() == id {
			return true, nil
		}
	}
	return false, nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
