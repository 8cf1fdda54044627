// Command actor embeds snakepit in a protoactor-go actor system of its own:
// an actor sends Execute messages to a pool's PID and receives the pool's
// Result and Chunk replies in its mailbox, as any other actor message.
//
//	cd examples/actor && go run .
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// caller forwards Execute requests to the pool (as itself, so the replies
// come back here) and hands every reply to the program.
type caller struct {
	pool    *actor.PID
	replies chan<- any
}

func (c *caller) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *poolpb.Execute:
		ctx.Request(c.pool, m)
	case *poolpb.Result, *poolpb.Chunk:
		c.replies <- m
	}
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	system := actor.NewActorSystem()
	defer system.Shutdown()
	app, err := snakepit.StartIn(ctx, system, snakepit.Config{
		Pools: []snakepit.PoolConfig{{Name: "actors", Size: 1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Stop(context.Background())
	if err := app.AwaitReady(ctx); err != nil {
		log.Fatal(err)
	}

	replies := make(chan any, 16)
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &caller{pool: app.Pool("actors"), replies: replies}
	}))
	defer func() { _ = system.Root.StopFuture(pid).Wait() }()
	next := func() any {
		select {
		case m := <-replies:
			return m
		case <-ctx.Done():
			log.Fatal("no reply from the pool: ", ctx.Err())
			return nil
		}
	}

	system.Root.Send(pid, &poolpb.Execute{RequestId: "sum", Tool: "add", ArgsJson: []byte(`{"a": 1, "b": 2}`)})
	res := next().(*poolpb.Result)
	if res.GetError() != nil {
		log.Fatal(res.GetError().GetMessage())
	}
	fmt.Printf("%s -> %s\n", res.GetRequestId(), res.GetResultJson())

	system.Root.Send(pid, &poolpb.Execute{RequestId: "count", Tool: "stream_count", ArgsJson: []byte(`{"n": 3}`), Stream: true})
	for {
		ch := next().(*poolpb.Chunk)
		if ch.GetError() != nil {
			log.Fatal(ch.GetError().GetMessage())
		}
		if ch.GetIsFinal() {
			fmt.Printf("%s -> done\n", ch.GetRequestId())
			break
		}
		fmt.Printf("%s -> %s\n", ch.GetRequestId(), ch.GetData())
	}

	system.Root.Send(pid, &poolpb.Execute{RequestId: "oops", Tool: "raise_error", ArgsJson: []byte(`{"kind": "value", "message": "bad input"}`)})
	res = next().(*poolpb.Result)
	fmt.Printf("%s -> %s: %s\n", res.GetRequestId(), res.GetError().GetCode(), res.GetError().GetMessage())
}
