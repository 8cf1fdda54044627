// Package fakeworker is an in-process worker for benchmarks of the host's
// own overhead: it speaks the worker's protocol to its pool (Ready, Down)
// and answers every call at once, with the JSON string "ok", through a
// real executor. No Python, no gRPC.
package fakeworker

import (
	"context"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

var generations atomic.Uint64

// Props returns the props of a fake worker for wc (a pool's WorkerProps).
func Props(wc wk.Config) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &fake{wc: wc, gen: generations.Add(1)} })
}

type fake struct {
	wc   wk.Config
	gen  uint64
	exec *wk.Executor
}

func (f *fake) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		f.exec = wk.NewExecutor(wk.ExecutorConfig{WorkerID: f.wc.WorkerID, Pool: f.wc.PoolName, Generation: f.gen,
			Client: client{}, Sender: ctx.ActorSystem().Root, PoolPID: f.wc.Pool})
		ctx.Send(f.wc.Pool, &wk.Ready{WorkerID: f.wc.WorkerID, PID: ctx.Self(), Generation: f.gen,
			Capacity: f.wc.Capacity(), Exec: f.exec})
	case *actor.Stopping:
		if f.exec != nil {
			f.exec.Close(sperr.New(sperr.CodeShutdown, "worker %s is stopping", f.wc.WorkerID))
			f.exec.Wait(wk.CallsWait)
			ctx.Send(f.wc.Pool, &wk.Down{WorkerID: f.wc.WorkerID, Generation: f.gen, Planned: true})
		}
	}
}

// client answers ExecuteTool at once; other methods are not used by the
// executor's unary path.
type client struct{ bridgepb.BridgeServiceClient }

var ok = &bridgepb.ExecuteToolResponse{Success: true,
	Result: &anypb.Any{TypeUrl: "type.googleapis.com/snakepit.string", Value: []byte(`"ok"`)}}

func (client) ExecuteTool(context.Context, *bridgepb.ExecuteToolRequest, ...grpc.CallOption) (*bridgepb.ExecuteToolResponse, error) {
	return ok, nil
}
