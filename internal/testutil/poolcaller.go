package testutil

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// PoolCaller is an ordinary actor (of an embedding program, or on another
// node) that uses a pool directly with the protobuf messages: send it a
// poolpb.Execute and it forwards it to Pool as a request; every Result and
// Chunk it gets back lands in Replies.
type PoolCaller struct {
	Pool    *actor.PID
	Replies chan any
}

// NewPoolCaller returns a caller of pool with room for 64 replies.
func NewPoolCaller(pool *actor.PID) *PoolCaller {
	return &PoolCaller{Pool: pool, Replies: make(chan any, 64)}
}

// Receive forwards Execute requests and collects replies.
func (c *PoolCaller) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *poolpb.Execute:
		ctx.Request(c.Pool, m)
	case *poolpb.Result, *poolpb.Chunk:
		c.Replies <- m
	}
}

// Next returns the next reply, failing the test after 30 s.
func (c *PoolCaller) Next(t testing.TB) any {
	t.Helper()
	select {
	case m := <-c.Replies:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no reply from the pool within 30s")
		return nil
	}
}
