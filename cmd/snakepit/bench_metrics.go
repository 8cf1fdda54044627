package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
)

// metrics is the metrics scenario: the cost of the App's OpenTelemetry
// instruments on the unary path. Two pools of the same size, one App with
// a Prometheus MeterProvider (scraped every second, more often than a
// Prometheus server would) and one without, are driven in alternating
// rounds; ratio = calls/s with metrics / without.
func (b *bench) metrics(ctx context.Context) (*benchReport, error) {
	n, conc := b.cfg.Workers, b.cfg.Concurrency
	b.say("== metrics: ping through a pool of %d workers with metrics on vs off, concurrency %d, %s per phase, best of %d alternating rounds",
		n, conc, b.cfg.Duration, 2*b.cfg.Rounds)
	mp, handler, err := admin.NewMeterProvider()
	if err != nil {
		return nil, err
	}
	defer mp.Shutdown(context.Background())
	on, stopOn, err := b.startAppWith(ctx, n, mp)
	if err != nil {
		return nil, err
	}
	defer stopOn()
	off, stopOff, err := b.startApp(ctx, n)
	if err != nil {
		return nil, err
	}
	defer stopOff()
	for _, app := range []*snakepit.App{on, off} {
		if err := awaitAll(ctx, app, n); err != nil {
			return nil, err
		}
	}
	scrapes := 0
	sctx, stopScrape := context.WithCancel(ctx)
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				rec := httptest.NewRecorder()
				handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				_, _ = io.Copy(io.Discard, rec.Body)
				scrapes++
			}
		}
	}()
	ping := func(app *snakepit.App) op {
		return func(ctx context.Context, _, _ int) (int64, int64, error) {
			res, err := app.Execute(ctx, "ping", nil)
			if err == nil && string(res.JSON) != `"pong"` {
				err = fmt.Errorf("ping answered %s", res.JSON)
			}
			return 0, 0, err
		}
	}
	// The difference sought is small against the machine's noise: twice
	// the usual rounds.
	rounds := b.cfg.Rounds
	b.cfg.Rounds = 2 * rounds
	c, err := b.compare(ctx, conc, unaryWarmup, "calls_per_s", ping(on), ping(off))
	b.cfg.Rounds = rounds
	stopScrape()
	<-scraped
	if err != nil {
		return nil, err
	}
	c.Pool.Path, c.Direct.Path = "metrics on", "metrics off"
	for i := range c.Rounds {
		c.Rounds[i][0].Path, c.Rounds[i][1].Path = "metrics on", "metrics off"
	}
	b.table(phaseRows(c, false))
	// The headline is the median of each round's on/off ratio: the two
	// phases of a round run back to back, so they share the machine's
	// moment, which the best of each path over the whole run does not.
	var pairs []float64
	for _, r := range c.Rounds {
		if r[1].CallsPerS > 0 {
			pairs = append(pairs, r[0].CallsPerS/r[1].CallsPerS)
		}
	}
	ratio := 0.0
	if len(pairs) > 0 {
		ratio = median(pairs)
	}
	b.say("   %d scrapes of /metrics during the run; per-round on/off ratios %.3f; best-of ratio %.3f", scrapes, pairs, c.Ratio)
	rep := b.report("metrics", alternationNote+"; both pools are this process's, the one not measured idle; "+
		"the metrics pool's /metrics is scraped every second throughout; the headline ratio is the median of the "+
		"rounds' on/off ratios", metricsResult{comparison: c, RoundRatios: pairs, MedianRatio: ratio})
	b.withRatio(rep, ratio, true, metricsTarget, "")
	return rep, nil
}

// metricsResult is the metrics scenario's figures.
type metricsResult struct {
	*comparison
	RoundRatios []float64 `json:"round_ratios"`
	MedianRatio float64   `json:"median_ratio"`
}
