package snakepit

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// A local call whose request, or whose handed-back retry, became a dead
// letter is answered no_workers (or with the worker's error); other dead
// letters are left alone.
func TestLostLocalCallsAreAnswered(t *testing.T) {
	gone := actor.NewPID("nonhost", "snakepit-x/runtime/pool-p")
	reply := make(worker.Local, worker.LocalBuffer)
	answerLost(&actor.DeadLetterEvent{PID: gone, Message: &pool.ExecuteLocal{Req: &poolpb.Execute{RequestId: "r1"}, Reply: reply}})
	res := (<-reply).(*poolpb.Result)
	require.Equal(t, "r1", res.GetRequestId())
	require.Equal(t, sperr.CodeNoWorkers, res.GetError().GetCode())

	died := sperr.New(sperr.CodeWorkerExit, "python process ended")
	answerLost(&actor.DeadLetterEvent{PID: gone, Message: &worker.CallDone{Unanswered: true, Local: reply, RequestID: "r2", Err: died}})
	res = (<-reply).(*poolpb.Result)
	require.Equal(t, "r2", res.GetRequestId())
	require.Equal(t, sperr.CodeWorkerExit, res.GetError().GetCode())

	answerLost(&actor.DeadLetterEvent{PID: gone, Message: &worker.CallDone{Local: reply, RequestID: "r3"}}) // answered already
	answerLost(&actor.DeadLetterEvent{PID: gone, Message: &poolpb.Execute{RequestId: "r4"}})
	answerLost("not a dead letter")
	require.Empty(t, reply)
}
