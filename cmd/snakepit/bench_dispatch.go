// The dispatch scenario of snakepit bench: the host's own overhead per call.

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/fakeworker"
	"github.com/snakepit-go/snakepit/internal/workerhook"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

const (
	dispatchTarget = 1.5
	dispatchRounds = 5     // raw, pool, app in turn; the median of each is kept
	dispatchCalls  = 20000 // sequential calls per path per round
	dispatchWarmup = 2000
)

// dispatchResult is the dispatch scenario's figures (nanoseconds per call).
type dispatchResult struct {
	Calls     int       `json:"calls_per_round"`
	Rounds    int       `json:"rounds"`
	RawNs     []float64 `json:"raw_ns_per_call"`
	PoolNs    []float64 `json:"pool_ns_per_call"`
	AppNs     []float64 `json:"app_ns_per_call"`
	RawMedian float64   `json:"raw_median_ns"`
	PoolRatio float64   `json:"pool_ratio"`
	AppRatio  float64   `json:"app_ratio"`
}

// dispatch compares, one call at a time, a raw protoactor request/response
// (RequestFuture to an actor that answers at once) with a call through the
// pool actor (RequestFuture of a poolpb.Execute) and with App.Execute end
// to end, both on in-process fake workers (a real executor whose client
// answers at once): no Python, no gRPC, only the host's own work.
func (b *bench) dispatch(ctx context.Context) (*benchReport, error) {
	b.say("== dispatch: %d sequential calls x %d rounds per path; raw protoactor request vs pool vs App.Execute (fake workers)",
		dispatchCalls, dispatchRounds)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer sys.Shutdown()
	echo := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*poolpb.Execute); ok {
			c.Respond(&poolpb.Result{})
		}
	}))

	dir, err := os.MkdirTemp("", "snakepit-bench-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	workerhook.Set(fakeworker.Props)
	app, err := snakepit.Start(ctx, snakepit.Config{
		Python: b.interp.Path, PrivDir: b.privDir, DataDir: dir, Logger: quiet,
		InstanceName: fmt.Sprintf("bench-dispatch-%d", os.Getpid()),
		Pools:        []snakepit.PoolConfig{{Name: benchPool, Size: 2}},
	})
	workerhook.Set(nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = app.Stop(context.Background()) }()
	if err := app.AwaitInitComplete(ctx); err != nil {
		return nil, err
	}
	pool := app.Pool(benchPool)
	args := map[string]any{"n": 1}
	paths := []func() error{
		func() error { // raw
			_, err := sys.Root.RequestFuture(echo, &poolpb.Execute{Tool: "ok"}, 5*time.Second).Result()
			return err
		},
		func() error { // pool
			res, err := app.System().Root.RequestFuture(pool, &poolpb.Execute{Tool: "ok"}, 5*time.Second).Result()
			if err == nil {
				if r, ok := res.(*poolpb.Result); !ok || r.GetError() != nil {
					err = fmt.Errorf("pool reply %v", res)
				}
			}
			return err
		},
		func() error { // app
			_, err := app.Execute(ctx, "ok", args, snakepit.WithPool(benchPool))
			return err
		},
	}
	timeOf := func(call func() error, n int) (float64, error) {
		start := time.Now()
		for range n {
			if err := call(); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Nanoseconds()) / float64(n), nil
	}
	for _, p := range paths {
		if _, err := timeOf(p, dispatchWarmup); err != nil {
			return nil, err
		}
	}
	res := dispatchResult{Calls: dispatchCalls, Rounds: dispatchRounds}
	for range dispatchRounds {
		for i, p := range paths {
			ns, err := timeOf(p, dispatchCalls)
			if err != nil {
				return nil, err
			}
			switch i {
			case 0:
				res.RawNs = append(res.RawNs, ns)
			case 1:
				res.PoolNs = append(res.PoolNs, ns)
			default:
				res.AppNs = append(res.AppNs, ns)
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	res.RawMedian = median(res.RawNs)
	res.PoolRatio = median(res.PoolNs) / res.RawMedian
	res.AppRatio = median(res.AppNs) / res.RawMedian
	b.table([][]string{
		{"path", "median ns/call", "ratio"},
		{"raw protoactor request", fmt.Sprintf("%.0f", res.RawMedian), "1.00"},
		{"pool dispatch", fmt.Sprintf("%.0f", median(res.PoolNs)), fmt.Sprintf("%.2f", res.PoolRatio)},
		{"App.Execute", fmt.Sprintf("%.0f", median(res.AppNs)), fmt.Sprintf("%.2f", res.AppRatio)},
	})
	rep := b.report("dispatch", "ns per sequential call, median of the rounds; ratio = path / raw request, the headline the worse of pool and App.Execute", res)
	b.withRatio(rep, max(res.PoolRatio, res.AppRatio), false, dispatchTarget,
		fmt.Sprintf("; pool %.2f, App.Execute %.2f", res.PoolRatio, res.AppRatio))
	return rep, nil
}

// median of xs (not empty).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
