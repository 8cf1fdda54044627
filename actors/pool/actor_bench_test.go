package pool

import (
	"log/slog"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// BenchmarkExecuteThroughPool measures one unary call through the pool
// actor: caller → pool (scheduler) → executor goroutine → fake client (answers
// at once) → reply to the caller, CallDone to the pool. Two workers of
// capacity 1; parallel callers queue behind them. Compare with
// BenchmarkRawRequestFuture, the cost of one protoactor request/response.
func BenchmarkExecuteThroughPool(b *testing.B) {
	// run makes one call; b.Error, not b.Fatal: RunParallel calls it from
	// its own goroutines.
	run := func(b *testing.B, h *harness) {
		res, err := h.sys.Root.RequestFuture(h.pool, &poolpb.Execute{Tool: "ok"}, wait).Result()
		if err != nil {
			b.Error(err)
			return
		}
		if r, ok := res.(*poolpb.Result); !ok || r.GetError() != nil {
			b.Errorf("reply %v", res)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		h := startPool(b, newFakeEnv(), Config{Size: 2})
		h.ready()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			run(b, h)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		h := startPool(b, newFakeEnv(), Config{Size: 2})
		h.ready()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				run(b, h)
			}
		})
	})
}

// BenchmarkRawRequestFuture is the floor: a RequestFuture round trip to an
// actor that echoes the message back.
func BenchmarkRawRequestFuture(b *testing.B) {
	start := func(b *testing.B) (*actor.ActorSystem, *actor.PID) {
		sys := actor.NewActorSystem(
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return testutil.QuietLogger(b) }),
			actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
		)
		echo := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			if m, ok := ctx.Message().(*poolpb.Execute); ok {
				ctx.Respond(m)
			}
		}))
		b.Cleanup(func() {
			_ = sys.Root.StopFuture(echo).Wait()
			sys.Shutdown()
		})
		return sys, echo
	}
	run := func(b *testing.B, sys *actor.ActorSystem, echo *actor.PID) {
		if _, err := sys.Root.RequestFuture(echo, &poolpb.Execute{Tool: "ok"}, wait).Result(); err != nil {
			b.Error(err)
		}
	}
	b.Run("sequential", func(b *testing.B) {
		sys, echo := start(b)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			run(b, sys, echo)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		sys, echo := start(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				run(b, sys, echo)
			}
		})
	})
}

// BenchmarkRawRequestFutureSticky is the same floor with the pool's own
// dispatcher on the echo actor, to show how much of the pool's gain is the
// dispatcher rather than the pool.
func BenchmarkRawRequestFutureSticky(b *testing.B) {
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return testutil.QuietLogger(b) }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	echo := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*poolpb.Execute); ok {
			ctx.Respond(m)
		}
	}, actor.WithDispatcher(newStickyDispatcher(300, 20*time.Millisecond))))
	b.Cleanup(func() {
		_ = sys.Root.StopFuture(echo).Wait()
		sys.Shutdown()
	})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sys.Root.RequestFuture(echo, &poolpb.Execute{Tool: "ok"}, wait).Result(); err != nil {
			b.Error(err)
		}
	}
}
