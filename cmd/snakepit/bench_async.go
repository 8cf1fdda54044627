// The async scenario of snakepit bench: many calls per worker process.

package main

import (
	"context"
	"fmt"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// asyncAdapter declares max_concurrency 16.
const asyncAdapter = "snakepit_bridge.adapters.concurrent.AsyncShowcaseAdapter"

// async: aping through a pool whose adapter runs many calls per process,
// vs the same servers dialled directly, with the same calls in flight per
// server (caller g always calls server g mod N).
func (b *bench) async(ctx context.Context) (*benchReport, error) {
	n, conc := b.cfg.Workers, b.cfg.Concurrency
	perServer := (conc + n - 1) / n
	b.say("== async: aping (a coroutine), pool of %d %s workers (max_concurrency 16), %d callers = %d in flight per server, %s per phase, best of %d alternating rounds",
		n, "AsyncShowcaseAdapter", conc, perServer, b.cfg.Duration, b.cfg.Rounds)
	// Capped at the direct path's calls in flight per server, so both paths
	// keep the same number on each server.
	app, srv, done, err := b.readyPool(ctx, n, func(c *snakepit.Config) {
		c.Pools[0].Adapter, c.Pools[0].MaxCallsPerWorker = asyncAdapter, perServer
	})
	if err != nil {
		return nil, err
	}
	defer done()
	pool := func(ctx context.Context, _, _ int) (int64, int64, error) {
		res, err := app.Execute(ctx, "aping", nil)
		if err == nil && string(res.JSON) != `"pong"` {
			err = fmt.Errorf("aping answered %s", res.JSON)
		}
		return 0, 0, err
	}
	direct := func(ctx context.Context, g, _ int) (int64, int64, error) {
		resp, err := srv.clients[g%len(srv.clients)].ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "aping"})
		if err != nil {
			return 0, 0, err
		}
		if !resp.GetSuccess() {
			return 0, 0, fmt.Errorf("aping failed: %s", resp.GetErrorMessage())
		}
		raw, err := jsonany.Unpack(resp.GetResult())
		if err == nil && string(raw) != `"pong"` {
			err = fmt.Errorf("aping answered %s", raw)
		}
		return 0, 0, err
	}
	c, err := b.compare(ctx, conc, unaryWarmup, "calls_per_s", pool, direct)
	if err != nil {
		return nil, err
	}
	b.table(phaseRows(c, false))
	b.say("   both paths keep %d calls in flight per Python server; the pool gives each worker the slots its adapter declares", perServer)
	rep := b.report("async", alternationNote+"; direct caller g always calls server g mod N, so both paths have C/N calls in flight "+
		"per server; the pool's workers run AsyncShowcaseAdapter (max_concurrency 16)", c)
	b.withRatio(rep, c.Ratio, true, asyncTarget, fmt.Sprintf("; %d in flight per server", perServer))
	return rep, nil
}
