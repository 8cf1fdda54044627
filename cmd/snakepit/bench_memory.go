// The memory scenario of snakepit bench.

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/registry"
)

// memoryResult is the memory scenario's figures (bytes).
type memoryResult struct {
	Workers int `json:"workers"`
	// EarlierApps is how many Apps this process started (and stopped)
	// before this scenario: the first Start may initialise process-wide
	// state, which then counts as "before".
	EarlierApps          int      `json:"earlier_apps_in_process"`
	HostRSSBefore        uint64   `json:"host_rss_before_bytes"`
	HostRSSAfter         uint64   `json:"host_rss_after_bytes"`
	HostGrowthPerWorker  int64    `json:"host_growth_per_worker_bytes"`
	HeapBefore           uint64   `json:"go_heap_before_bytes"` // live Go heap after a GC
	HeapAfter            uint64   `json:"go_heap_after_bytes"`
	HeapGrowthPerWorker  int64    `json:"go_heap_growth_per_worker_bytes"`
	PythonRSS            []uint64 `json:"python_rss_bytes"`
	PythonRSSMean        uint64   `json:"python_rss_mean_bytes"`
	PythonRSSMax         uint64   `json:"python_rss_max_bytes"`
	PythonMeasuredWorker []string `json:"python_workers"`
	// The margin: the live Go heap of an App with MarginalLow workers and
	// of one with MarginalHigh, each ready; per worker = the difference /
	// (high − low), so the App's fixed cost does not count.
	MarginalLow           int    `json:"marginal_low_workers"`
	MarginalHigh          int    `json:"marginal_high_workers"`
	HeapLow               uint64 `json:"go_heap_low_bytes"`
	HeapHigh              uint64 `json:"go_heap_high_bytes"`
	HeapMarginalPerWorker int64  `json:"go_heap_marginal_per_worker_bytes"`
}

// marginal workers: the two pool sizes the per-worker heap is measured between.
const marginalLow, marginalHigh = 4, 64

// memory: host RSS growth per worker and each worker's Python RSS.
func (b *bench) memory(ctx context.Context) (*benchReport, error) {
	n := b.cfg.Workers
	b.say("== memory: host RSS before Start and after %d workers are ready (after a GC); Python RSS per worker (process tree)", n)
	before, heapBefore, err := hostMemory()
	if err != nil {
		return nil, err
	}
	app, stopApp, err := b.startApp(ctx, n)
	if err != nil {
		return nil, err
	}
	stop := sync.OnceFunc(stopApp) // stopped before the margin is measured
	defer stop()
	if err := awaitAll(ctx, app, n); err != nil {
		return nil, err
	}
	after, heapAfter, err := hostMemory()
	if err != nil {
		return nil, err
	}
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	metas, err := reg.ListPool(ctx, benchPool)
	if err != nil {
		return nil, err
	}
	res := memoryResult{Workers: n, EarlierApps: b.apps - 1, HostRSSBefore: before, HostRSSAfter: after,
		HostGrowthPerWorker: (int64(after) - int64(before)) / int64(n),
		HeapBefore:          heapBefore, HeapAfter: heapAfter,
		HeapGrowthPerWorker: (int64(heapAfter) - int64(heapBefore)) / int64(n)}
	var total uint64
	for _, m := range metas {
		rss, err := lifecycle.TreeRSS(ctx, m.OSPid)
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", m.WorkerID, err)
		}
		res.PythonRSS = append(res.PythonRSS, rss)
		res.PythonMeasuredWorker = append(res.PythonMeasuredWorker, m.WorkerID)
		total += rss
		res.PythonRSSMax = max(res.PythonRSSMax, rss)
	}
	if len(metas) == 0 {
		return nil, errors.New("no workers in the registry")
	}
	res.PythonRSSMean = total / uint64(len(metas))
	stop()
	if err := b.heapMargin(ctx, &res); err != nil {
		return nil, err
	}
	mib := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
	b.table([][]string{
		{"what", "MiB"},
		{"host RSS before Start", mib(float64(before))},
		{fmt.Sprintf("host RSS with %d workers ready", n), mib(float64(after))},
		{"host RSS growth per worker", mib(float64(res.HostGrowthPerWorker))},
		{"go heap growth per worker", mib(float64(res.HeapGrowthPerWorker))},
		{fmt.Sprintf("go heap per worker at the margin (%d vs %d workers), KiB", res.MarginalHigh, res.MarginalLow),
			fmt.Sprintf("%.0f", float64(res.HeapMarginalPerWorker)/1024)},
		{"python RSS per worker, mean", mib(float64(res.PythonRSSMean))},
		{"python RSS per worker, max", mib(float64(res.PythonRSSMax))},
	})
	if res.EarlierApps > 0 {
		b.say("   %d Apps ran before in this process: memory the Go runtime kept mapped since counts in 'before' (run `bench memory` alone for a clean RSS figure)",
			res.EarlierApps)
	}
	rep := b.report("memory", "host RSS read with gopsutil after runtime.GC and debug.FreeOSMemory (growth per worker = "+
		"(after - before) / N, so it includes the App's fixed cost; when earlier_apps_in_process > 0, memory the Go runtime "+
		"kept mapped for earlier scenarios counts in 'before' and makes the RSS growth smaller: run `snakepit bench memory` "+
		"alone for a clean RSS figure; the live Go heap figures do not suffer from this); each reading waits until the heap "+
		"and goroutine count have settled (a stopped App's last goroutines hold its memory for a moment); Python RSS is "+
		"lifecycle.TreeRSS of each worker's process tree; no ratio", res)
	b.summary = append(b.summary, fmt.Sprintf("memory\tno ratio\t(Go heap %.0f KiB per worker at the margin; host RSS %+.1f MiB, Go heap %+.1f MiB per worker with the App; python %.1f MiB mean, %.1f MiB max per worker)\t-",
		float64(res.HeapMarginalPerWorker)/1024, float64(res.HostGrowthPerWorker)/(1<<20), float64(res.HeapGrowthPerWorker)/(1<<20),
		float64(res.PythonRSSMean)/(1<<20), float64(res.PythonRSSMax)/(1<<20)))
	return rep, nil
}

// hostMemory returns this process's resident set and its live Go heap,
// after a GC that also returns freed memory to the OS (earlier scenarios'
// payloads would count otherwise). A stopped App's last goroutines hold
// some of its memory for a moment, so it waits (at most 5 s) until the heap
// and the goroutine count have stopped falling for two readings 250 ms apart.
func hostMemory() (rss, heap uint64, err error) {
	read := func() (uint64, int) {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}
	heap, goroutines := read()
	for steady, deadline := 0, time.Now().Add(5*time.Second); steady < 2 && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		h, g := read()
		if h+64<<10 >= heap && g >= goroutines {
			steady++
		} else {
			steady = 0
		}
		heap, goroutines = h, g
	}
	p, err := process.NewProcess(int32(os.Getpid()))
	if err != nil {
		return 0, 0, err
	}
	m, err := p.MemoryInfo()
	if err != nil {
		return 0, 0, err
	}
	return m.RSS, heap, nil
}

// heapMargin measures the live Go heap with marginalLow and with
// marginalHigh workers ready, one App at a time.
func (b *bench) heapMargin(ctx context.Context, res *memoryResult) error {
	res.MarginalLow, res.MarginalHigh = marginalLow, marginalHigh
	for _, n := range []int{marginalLow, marginalHigh} {
		app, stop, err := b.startApp(ctx, n)
		if err != nil {
			return err
		}
		if err := awaitAll(ctx, app, n); err != nil {
			stop()
			return err
		}
		_, heap, err := hostMemory()
		stop()
		if err != nil {
			return err
		}
		if n == marginalLow {
			res.HeapLow = heap
		} else {
			res.HeapHigh = heap
		}
	}
	res.HeapMarginalPerWorker = (int64(res.HeapHigh) - int64(res.HeapLow)) / int64(marginalHigh-marginalLow)
	return nil
}
