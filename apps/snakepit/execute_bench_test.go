package snakepit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/snakepit-go/snakepit/internal/fakeworker"
	"github.com/snakepit-go/snakepit/internal/workerhook"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// BenchmarkExecute measures App.Execute end to end on in-process fake
// workers (internal/fakeworker: a real executor whose client answers at
// once): argument encoding, the request, the pool, the executor, the reply
// and its decoding. BenchmarkRawRequest is the floor it is compared with:
// one protoactor request/response to an actor that answers at once.
// `snakepit bench dispatch` reports the same two as a ratio.
func BenchmarkExecute(b *testing.B) { benchExecute(b, nil) }

// BenchmarkExecuteWithMetrics is BenchmarkExecute with the App's metrics
// going to an OpenTelemetry SDK MeterProvider: the per-call cost of the
// instruments is the difference.
func BenchmarkExecuteWithMetrics(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer mp.Shutdown(context.Background())
	benchExecute(b, mp)
}

func benchExecute(b *testing.B, mp metric.MeterProvider) {
	workerhook.Set(fakeworker.Props)
	app, err := Start(context.Background(), Config{
		InstanceName: fmt.Sprintf("bench-exec-%d", os.Getpid()), DataDir: b.TempDir(),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Pools:         []PoolConfig{{Name: "default", Size: 2}},
		MeterProvider: mp,
	})
	workerhook.Set(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	if err := app.AwaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	args := map[string]any{"n": 1}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := app.Execute(ctx, "ok", args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawRequest(b *testing.B) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	defer sys.Shutdown()
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(string); ok {
			c.Respond(c.Message())
		}
	}))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sys.Root.RequestFuture(pid, "ping", 5*time.Second).Result(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolDispatch is the pool actor alone inside an App: a
// poolpb.Execute by RequestFuture to App.Pool, on the same fake workers.
func BenchmarkPoolDispatch(b *testing.B) {
	workerhook.Set(fakeworker.Props)
	app, err := Start(context.Background(), Config{
		InstanceName: fmt.Sprintf("bench-pool-%d", os.Getpid()), DataDir: b.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Pools:  []PoolConfig{{Name: "default", Size: 2}},
	})
	workerhook.Set(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = app.Stop(context.Background()) }()
	if err := app.AwaitReady(context.Background()); err != nil {
		b.Fatal(err)
	}
	pid := app.Pool("default")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := app.System().Root.RequestFuture(pid, &poolpb.Execute{Tool: "ok"}, 5*time.Second).Result(); err != nil {
			b.Fatal(err)
		}
	}
}
