// The shm scenario of snakepit bench: large binary payloads through shared
// memory.

package main

import (
	"context"
	"fmt"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// shmSize is the shm scenario's payload.
const shmSize = 16 << 20

// shmTarget: shared memory must move at least this many times direct
// gRPC's MB/s (and the gRPC pool's).
const shmTarget = 3.0

// shmResult is the shm scenario's figures.
type shmResult struct {
	*comparison
	// PoolGRPC is the same echo through a pool with shared memory off
	// (what the pool did before), measured in the same run.
	PoolGRPC     phase   `json:"pool_grpc"`
	RatioVsGRPC  float64 `json:"ratio_vs_pool_grpc"`
	PayloadBytes int     `json:"payload_bytes"`
}

// shm: echo_binary of 16 MiB through the pool with shared memory (the
// result taken as a zero-copy view and released) vs the same servers over
// direct gRPC, and vs a pool with shared memory off.
func (b *bench) shm(ctx context.Context) (*benchReport, error) {
	n := b.cfg.Workers
	conc := min(b.cfg.Concurrency, n)
	b.say("== shm: echo_binary of 16 MiB, pool of %d workers with shared memory (WithZeroCopy) vs direct gRPC to the same servers, concurrency %d, %s per phase, best of %d alternating rounds; MB/s counts payload bytes sent + received",
		n, conc, b.cfg.Duration, b.cfg.Rounds)
	echo := newEcho(shmSize, 7, "16 MiB")
	app, srv, done, err := b.readyPool(ctx, n)
	if err != nil {
		return nil, err
	}
	defer done()
	c, err := b.compare(ctx, conc, conc, "mb_per_s", echo.viaPool(app, snakepit.WithZeroCopy()), echo.direct(srv))
	if err != nil {
		return nil, err
	}

	grpcApp, _, grpcDone, err := b.readyPool(ctx, n, func(c *snakepit.Config) { c.Pools[0].SharedMemoryThreshold = -1 })
	if err != nil {
		return nil, err
	}
	defer grpcDone()
	viaGRPC := echo.viaPool(grpcApp)
	if err := warm(ctx, conc, conc, viaGRPC); err != nil {
		return nil, err
	}
	g, err := b.bestOf(ctx, "pool, shm off", conc, viaGRPC, func(p phase) float64 { return p.MBPerS })
	if err != nil {
		return nil, err
	}
	b.table(append(phaseRows(c, false), b.bestRow(g, true)))
	vsGRPC := c.Pool.MBPerS / g.MBPerS
	b.say("   pool with shared memory / direct gRPC: %.2f; / the pool with shared memory off: %.2f", c.Ratio, vsGRPC)
	rep := b.report("shm", alternationNote+"; the pool's workers get the payload as a mapped memoryview and write the echo to a segment "+
		"the host maps (WithZeroCopy, released after the check); direct goroutine g calls worker g mod N's server over gRPC",
		shmResult{comparison: c, PoolGRPC: g, RatioVsGRPC: vsGRPC, PayloadBytes: shmSize})
	ratio := min(c.Ratio, vsGRPC)
	b.withRatio(rep, ratio, true, shmTarget, fmt.Sprintf("; vs direct gRPC %.2f, vs pool without shm %.2f", c.Ratio, vsGRPC))
	return rep, nil
}
