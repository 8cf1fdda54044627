package snakepit

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/snakepit-go/snakepit/internal/sperr"
)

// The OpenTelemetry instrumentation scope of the App's metrics.
const meterName = "github.com/snakepit-go/snakepit"

// metrics are the App's OpenTelemetry instruments (Config.MeterProvider).
//
// The pools' figures (calls by outcome, queue depth, in flight, workers by
// state, restarts, recycles, Python RSS) are observed when the reader
// collects, from App.Stats and App.Workers: nothing on a call's path. The
// per-call histograms (calls by tool and outcome, queue wait, execution
// time) are recorded by the caller's goroutine when an App call ends, with
// attribute sets cached per pool, tool and outcome.
type metrics struct {
	calls    metric.Int64Counter
	duration metric.Float64Histogram
	wait     metric.Float64Histogram
	exec     metric.Float64Histogram
	reg      metric.Registration

	mu    sync.RWMutex
	attrs map[callKey]*callAttrs
}

type callKey struct{ pool, tool, outcome string }

// callAttrs are one key's attributes as the option slices the instruments
// take, built once so recording allocates nothing for them.
type callAttrs struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// secondsBuckets are the histograms' bounds: 100 µs to 5 min.
var secondsBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60, 120, 300}

func newMetrics(a *App, mp metric.MeterProvider) (*metrics, error) {
	m := mp.Meter(meterName, metric.WithInstrumentationVersion(Version))
	mt := &metrics{attrs: map[callKey]*callAttrs{}}
	var err error
	if mt.calls, err = m.Int64Counter("snakepit.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Calls made through this App, by pool, tool and outcome (ok or the error code)")); err != nil {
		return nil, err
	}
	hist := func(name, desc string) (metric.Float64Histogram, error) {
		return m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(secondsBuckets...))
	}
	if mt.duration, err = hist("snakepit.call.duration", "A call's time from the caller's request to its answer, by pool, tool and outcome"); err != nil {
		return nil, err
	}
	if mt.wait, err = hist("snakepit.call.queue_wait", "Time a call to this node's pool waited for a worker, by pool and tool"); err != nil {
		return nil, err
	}
	if mt.exec, err = hist("snakepit.call.execution", "Time a call to this node's pool ran on its worker, by pool and tool"); err != nil {
		return nil, err
	}

	outcomes, _ := m.Int64ObservableCounter("snakepit.pool.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Calls of a pool by outcome (App.Stats): completed (a worker finished it, with a result or an error), error (answered with any error), cancelled, queue_timeout, saturated, circuit_rejected"))
	queued, _ := m.Int64ObservableGauge("snakepit.pool.queue_depth", metric.WithUnit("{call}"),
		metric.WithDescription("Calls waiting for a worker"))
	inflight, _ := m.Int64ObservableGauge("snakepit.pool.in_flight", metric.WithUnit("{call}"),
		metric.WithDescription("Calls running on a worker"))
	workers, _ := m.Int64ObservableGauge("snakepit.pool.workers", metric.WithUnit("{worker}"),
		metric.WithDescription("Worker slots by state"))
	restarts, _ := m.Int64ObservableCounter("snakepit.worker.restarts", metric.WithUnit("{restart}"),
		metric.WithDescription("Worker processes started again after an exit"))
	recycled, _ := m.Int64ObservableCounter("snakepit.worker.recycled", metric.WithUnit("{worker}"),
		metric.WithDescription("Workers replaced by the lifecycle or by hand"))
	rss, _ := m.Int64ObservableGauge("snakepit.worker.rss", metric.WithUnit("By"),
		metric.WithDescription("Resident memory of a worker's Python process tree (read at most every 10 s)"))
	mt.reg, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, name := range a.Pools() {
			s, err := a.Stats(ctx, name)
			if err != nil {
				continue // a pool that is stopping is not observed
			}
			pool := attribute.String("pool", name)
			for outcome, n := range map[string]uint64{"completed": s.Completed, "error": s.Errors, "cancelled": s.Cancelled,
				"queue_timeout": s.QueueTimeouts, "saturated": s.PoolSaturated, "circuit_rejected": s.CircuitRejected} {
				o.ObserveInt64(outcomes, int64(n), metric.WithAttributes(pool, attribute.String("outcome", outcome)))
			}
			o.ObserveInt64(queued, int64(s.Queued), metric.WithAttributes(pool))
			o.ObserveInt64(inflight, int64(s.InFlight), metric.WithAttributes(pool))
			o.ObserveInt64(restarts, int64(s.WorkerRestarts), metric.WithAttributes(pool))
			o.ObserveInt64(recycled, int64(s.Recycled), metric.WithAttributes(pool))
			ws, err := a.Workers(ctx, name)
			if err != nil {
				continue
			}
			byState := map[string]int64{}
			for _, w := range ws {
				byState[w.State]++
				if w.RSSBytes > 0 {
					o.ObserveInt64(rss, int64(w.RSSBytes), metric.WithAttributes(pool, attribute.String("worker", w.ID)))
				}
			}
			for _, st := range []string{"queued", "starting", "ready", "restarting", "draining", "stopping", "dead"} {
				o.ObserveInt64(workers, byState[st], metric.WithAttributes(pool, attribute.String("state", st)))
			}
		}
		return nil
	}, outcomes, queued, inflight, workers, restarts, recycled, rss)
	if err != nil {
		return nil, err
	}
	return mt, nil
}

// attrsFor returns the cached attributes of a pool, tool and outcome.
func (m *metrics) attrsFor(pool, tool, outcome string) *callAttrs {
	k := callKey{pool, tool, outcome}
	m.mu.RLock()
	a, ok := m.attrs[k]
	m.mu.RUnlock()
	if ok {
		return a
	}
	attrs := []attribute.KeyValue{attribute.String("pool", pool), attribute.String("tool", tool)}
	if outcome != "" {
		attrs = append(attrs, attribute.String("outcome", outcome))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(attrs...))
	a = &callAttrs{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}}
	m.mu.Lock()
	if len(m.attrs) < maxAttrSets {
		m.attrs[k] = a
	}
	m.mu.Unlock()
	return a
}

// maxAttrSets bounds the cache (tool names come from callers).
const maxAttrSets = 4096

// callTimer times one App call for the metrics; its zero value (no
// metrics) does nothing.
type callTimer struct {
	m       *metrics
	pool    string
	tool    string
	start   time.Time
	granted time.Time // when a worker took it (local calls)
}

func (a *App) startCall(pool, tool string) callTimer {
	if a.metrics == nil {
		return callTimer{}
	}
	return callTimer{m: a.metrics, pool: pool, tool: tool, start: time.Now()}
}

// grant notes that a worker took the call (the first time only: a retried
// call's wait counts from its first request).
func (t *callTimer) grant() {
	if t.m != nil && t.granted.IsZero() {
		t.granted = time.Now()
	}
}

// done records the call's outcome.
func (t *callTimer) done(err error) {
	if t.m == nil {
		return
	}
	now := time.Now()
	outcome := "ok"
	if err != nil {
		if outcome = sperr.CodeOf(err); outcome == "" {
			outcome = "error"
		}
	}
	ctx := context.Background()
	a := t.m.attrsFor(t.pool, t.tool, outcome)
	t.m.calls.Add(ctx, 1, a.add...)
	t.m.duration.Record(ctx, now.Sub(t.start).Seconds(), a.rec...)
	if !t.granted.IsZero() {
		a := t.m.attrsFor(t.pool, t.tool, "")
		t.m.wait.Record(ctx, t.granted.Sub(t.start).Seconds(), a.rec...)
		t.m.exec.Record(ctx, now.Sub(t.granted).Seconds(), a.rec...)
	}
}
