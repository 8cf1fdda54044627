// The startup scenario of snakepit bench, and the cold-start floors.

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/snakepit-go/snakepit/actors/worker"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// startupRun is the startup result for one worker count.
type startupRun struct {
	Workers  int     `json:"workers"`
	ReadyS   float64 `json:"ready_s"` // Start + AwaitInitComplete
	FloorS   float64 `json:"floor_s"`
	Ratio    float64 `json:"ratio"`
	StoppedS float64 `json:"stopped_s"` // App.Stop, for information
	// ParallelS is K bare servers started directly, startupWindow at a
	// time, until all were ready: the machine's own parallel floor.
	ParallelS     float64 `json:"bare_parallel_s"`
	ParallelRatio float64 `json:"ratio_vs_bare_parallel"`
	// ForkReadyS is the same pool with PoolConfig.ForkServer (the fork
	// server's own start included); ForkRatio is it over the floor.
	ForkReadyS float64 `json:"fork_ready_s"`
	ForkRatio  float64 `json:"fork_ratio"`
}

// startup: pool start-up time vs a floor built from direct cold starts.
func (b *bench) startup(ctx context.Context) (*benchReport, error) {
	b.say("== startup: Start + AwaitInitComplete for pools of %s workers vs floor = cold start × K / %d CPUs (at least one cold start)",
		joinInts(b.cfg.Startup), b.machine.NumCPU)
	var colds []float64
	for range coldStarts {
		d, err := b.coldStart(ctx)
		if err != nil {
			return nil, fmt.Errorf("cold start: %w", err)
		}
		colds = append(colds, d.Seconds())
	}
	sorted := slices.Clone(colds)
	slices.Sort(sorted)
	cold := sorted[len(sorted)/2]
	b.say("   python cold start (grpc_server.py spawned directly, until its ready file holds the port): median %.0f ms of %s",
		cold*1000, fmtMs(colds))

	var runs []startupRun
	worst, forkWorst := 0.0, 0.0
	var detail []string
	for _, k := range b.cfg.Startup {
		t0 := time.Now()
		app, stop, err := b.startApp(ctx, k)
		if err != nil {
			return nil, err
		}
		err = awaitAll(ctx, app, k)
		ready := time.Since(t0).Seconds()
		t1 := time.Now()
		stop()
		stopped := time.Since(t1).Seconds()
		if err != nil {
			return nil, fmt.Errorf("pool of %d: %w", k, err)
		}
		floor := cold * max(1, float64(k)/float64(b.machine.NumCPU))
		par, err := b.parallelColdStarts(ctx, k, startupWindow)
		if err != nil {
			return nil, fmt.Errorf("%d bare cold starts: %w", k, err)
		}
		forked, _, _, err := b.timeStart(ctx, k, snakepit.DefaultAdapter, "", true)
		if err != nil {
			return nil, fmt.Errorf("pool of %d forked: %w", k, err)
		}
		r := startupRun{Workers: k, ReadyS: ready, FloorS: floor, Ratio: ready / floor, StoppedS: stopped,
			ParallelS: par.Seconds(), ParallelRatio: ready / par.Seconds(),
			ForkReadyS: forked.Seconds(), ForkRatio: forked.Seconds() / floor}
		runs = append(runs, r)
		worst = max(worst, r.Ratio)
		forkWorst = max(forkWorst, r.ForkRatio)
		detail = append(detail, fmt.Sprintf("K=%d %.2f", k, r.Ratio))
	}
	rows := [][]string{{"workers", "ready s", "floor s", "ratio", "bare parallel s", "ratio", "stop s", "forked s", "ratio"}}
	for _, r := range runs {
		rows = append(rows, []string{strconv.Itoa(r.Workers), fmt.Sprintf("%.3f", r.ReadyS), fmt.Sprintf("%.3f", r.FloorS),
			fmt.Sprintf("%.2f", r.Ratio), fmt.Sprintf("%.3f", r.ParallelS), fmt.Sprintf("%.2f", r.ParallelRatio),
			fmt.Sprintf("%.3f", r.StoppedS), fmt.Sprintf("%.3f", r.ForkReadyS), fmt.Sprintf("%.2f", r.ForkRatio)})
	}
	b.table(rows)
	b.say("   bare parallel: K servers spawned directly, %d at a time like the pool, until all are ready — what this machine can do without a host", startupWindow)
	b.say("   forked: the same pool with ForkServer (workers forked from a pre-imported zygote); worst ratio to the floor %.2f", forkWorst)
	rep := b.report("startup", "cold start: the same interpreter running grpc_server.py --adapter <showcase> --port 0 directly "+
		"(no host to register with), timed until its ready file holds the port, median of 3; floor(K) = cold × max(1, K / NumCPU); "+
		"the headline ratio is the worst K's",
		map[string]any{"cold_start_s": cold, "cold_starts_s": colds, "runs": runs, "fork_ratio_worst": forkWorst})
	b.withRatio(rep, worst, false, startupTarget, "; worst of "+strings.Join(detail, ", ")+fmt.Sprintf("; forked %.2f", forkWorst))
	return rep, nil
}

// startupWindow is how many bare servers start at once in the parallel
// floor: the pool's default StartupConcurrency.
const startupWindow = 8

// parallelColdStarts times k direct cold starts run window at a time,
// until every one was ready.
func (b *bench) parallelColdStarts(ctx context.Context, k, window int) (time.Duration, error) {
	sem := make(chan struct{}, window)
	errc := make(chan error, k)
	t0 := time.Now()
	for range k {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := b.coldStart(ctx)
			errc <- err
		}()
	}
	var first error
	for range k {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(t0), first
}

// coldStart spawns the worker server directly and times it until its ready
// file holds the port; then it kills it by PID and waits for it.
func (b *bench) coldStart(ctx context.Context) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "snakepit-bench-cold-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ready := filepath.Join(dir, "ready")
	script := filepath.Join(b.privDir, "grpc_server.py")
	cmd := exec.Command(b.interp.Path, "-u", script, "--adapter", snakepit.DefaultAdapter, "--port", "0")
	cmd.Dir = b.privDir
	// The environment a worker gets (without a host: no run or instance).
	cmd.Env = worker.LaunchEnv(worker.Config{Script: script}, ready)
	// stdin is a pipe kept open until the end: the server exits on its EOF.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	defer stdin.Close()
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	exited := make(chan error, 1)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { exited <- cmd.Wait() }()
	end := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := t0.Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(ready); err == nil && len(bytes.TrimSpace(data)) > 0 {
			took := time.Since(t0)
			if _, err := worker.ParseReady(data); err != nil {
				end()
				return 0, err
			}
			end()
			return took, nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the server exited before it was ready (%v): %s", err, lastLines(output.String(), 5))
		case <-ctx.Done():
			end()
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			end()
			return 0, fmt.Errorf("not ready within 30s: %s", lastLines(output.String(), 5))
		}
	}
}
