// The shm scenario of snakepit bench: large binary payloads through shared
// memory.

package main

import (
	"context"
	"fmt"
	"hash/crc32"
	mrand "math/rand/v2"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
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
	payload := make([]byte, shmSize)
	_, _ = mrand.NewChaCha8([32]byte{7}).Read(payload)
	sum := crc32.ChecksumIEEE(payload)
	verify := func(got []byte, i int) error {
		if len(got) != shmSize {
			return fmt.Errorf("echo_binary: got %d bytes back", len(got))
		}
		if i == 0 && crc32.ChecksumIEEE(got) != sum {
			return fmt.Errorf("echo_binary: the echoed bytes differ (CRC-32)")
		}
		return nil
	}
	through := func(app *snakepit.App, opts ...snakepit.ExecuteOption) op {
		opts = append(opts, snakepit.WithBinary(map[string][]byte{"data": payload}))
		return func(ctx context.Context, _, i int) (int64, int64, error) {
			res, err := app.Execute(ctx, "echo_binary", nil, opts...)
			if err != nil {
				return 0, 0, err
			}
			defer res.Release()
			return 0, int64(shmSize + len(res.Binary)), verify(res.Binary, i)
		}
	}

	app, srv, done, err := b.readyPool(ctx, n)
	if err != nil {
		return nil, err
	}
	defer done()
	direct := func(ctx context.Context, g, i int) (int64, int64, error) {
		resp, err := srv.clients[g%len(srv.clients)].ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{
			ToolName: "echo_binary", BinaryParameters: map[string][]byte{"data": payload}})
		if err != nil {
			return 0, 0, err
		}
		if !resp.GetSuccess() {
			return 0, 0, fmt.Errorf("echo_binary failed: %s", resp.GetErrorMessage())
		}
		return 0, int64(shmSize + len(resp.GetBinaryResult())), verify(resp.GetBinaryResult(), i)
	}
	c, err := b.compare(ctx, conc, conc, "mb_per_s", through(app, snakepit.WithZeroCopy()), direct)
	if err != nil {
		return nil, err
	}

	grpcApp, _, grpcDone, err := b.readyPool(ctx, n, func(c *snakepit.Config) { c.Pools[0].SharedMemoryThreshold = -1 })
	if err != nil {
		return nil, err
	}
	defer grpcDone()
	viaGRPC := through(grpcApp)
	if err := warm(ctx, conc, conc, viaGRPC); err != nil {
		return nil, err
	}
	var g phase
	for r := range b.cfg.Rounds {
		p, err := measure(ctx, "pool, shm off", conc, b.cfg.Duration, viaGRPC)
		if err != nil {
			return nil, err
		}
		if r == 0 || p.MBPerS > g.MBPerS {
			g = p
		}
	}
	rows := phaseRows(c, false)
	rows = append(rows, []string{g.Path, fmt.Sprintf("%.0f", g.CallsPerS), fmt.Sprintf("%.0f", g.MBPerS), fmt.Sprintf("%.3f", g.P50Ms),
		fmt.Sprintf("%.3f", g.P99Ms), fmt.Sprintf("%.3f", g.MeanMs), fmt.Sprint(g.Ops), fmt.Sprintf("best of %d", b.cfg.Rounds)})
	b.table(rows)
	vsGRPC := c.Pool.MBPerS / g.MBPerS
	b.say("   pool with shared memory / direct gRPC: %.2f; / the pool with shared memory off: %.2f", c.Ratio, vsGRPC)
	rep := b.report("shm", alternationNote+"; the pool's workers get the payload as a mapped memoryview and write the echo to a segment "+
		"the host maps (WithZeroCopy, released after the check); direct goroutine g calls worker g mod N's server over gRPC",
		shmResult{comparison: c, PoolGRPC: g, RatioVsGRPC: vsGRPC, PayloadBytes: shmSize})
	ratio := min(c.Ratio, vsGRPC)
	b.withRatio(rep, ratio, true, shmTarget, fmt.Sprintf("; vs direct gRPC %.2f, vs pool without shm %.2f", c.Ratio, vsGRPC))
	return rep, nil
}
