package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/snakepit-go/snakepit/actors/registry"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/procs"
)

func newDemoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "A tour of a supervised pool of showcase workers: execute, stream, errors, a killed worker, stats",
		Args:  usageArgs(cobra.NoArgs),
	}
	workers := cmd.Flags().Int("workers", 4, "workers in the demo pool")
	duration := cmd.Flags().Duration("duration", 2*time.Second, "length of the concurrent section")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemo(cmd.Context(), g, *workers, *duration, cmd.OutOrStdout())
	}
	return cmd
}

func runDemo(ctx context.Context, g *globals, workersN int, durationV time.Duration, out io.Writer) error {
	workers, duration := &workersN, &durationV
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }

	say("== snakepit demo: pool %q of %d showcase workers (%d CPUs)", "demo", *workers, runtime.NumCPU())
	t0 := time.Now()
	app, err := snakepit.Start(ctx, g.apply(snakepit.Config{
		Pools: []snakepit.PoolConfig{{Name: "demo", Size: *workers}},
	}))
	if err != nil {
		return err
	}
	defer func() {
		reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
		workers, _ := reg.ListAll(context.Background())
		t := time.Now()
		err := app.Stop(context.Background())
		alive := 0
		for _, w := range workers {
			if procs.Alive(w.OSPid) {
				alive++
			}
		}
		say("== stopped in %s; %d of %d Python processes still alive%s",
			time.Since(t).Round(time.Millisecond), alive, len(workers), errSuffix(err))
	}()
	if err := progress(ctx, app, "demo", *workers, out); err != nil {
		return err
	}
	say("   all %d workers ready in %s (run id %s)", *workers, time.Since(t0).Round(time.Millisecond), app.RunID())
	atStart, _ := app.CleanupReports()
	say("   instance %s; cleanup of earlier runs at start: %s", app.Instance(), atStart)

	section := func(name string) { say("\n-- %s", name) }
	section("execute")
	for _, c := range []struct {
		tool string
		args map[string]any
	}{
		{"ping", nil},
		{"add", map[string]any{"a": 2, "b": 40}},
		{"echo", map[string]any{"text": "hello", "list": []int{1, 2, 3}}},
	} {
		res, err := app.Execute(ctx, c.tool, c.args)
		if err != nil {
			return err
		}
		say("   %-5s %v → %s  (worker %s)", c.tool, c.args, res.JSON, res.WorkerID)
	}

	section("streaming: stream_count n=5")
	st, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 5, "delay_ms": 20})
	if err != nil {
		return err
	}
	for c, err := range st.Chunks() {
		if err != nil {
			return err
		}
		say("   chunk %-16s %s", c.ID, c.Data)
	}

	section("a Python exception becomes a structured error")
	_, err = app.Execute(ctx, "raise_error", map[string]any{"kind": "value", "message": "bad input"})
	var serr *snakepit.Error
	if errors.As(err, &serr) {
		say("   category=%s code=%s python_type=%s message=%q", serr.Category, serr.Code, serr.PythonType, serr.Message)
	} else {
		return fmt.Errorf("expected a structured error, got %v", err)
	}
	_, err = app.Execute(ctx, "no_such_tool", nil)
	say("   unknown tool: errors.Is(err, ErrToolNotFound) = %v", errors.Is(err, snakepit.ErrToolNotFound))

	section(fmt.Sprintf("concurrent: ping for %s at concurrency %d", *duration, 2**workers))
	calls, errs := concurrent(ctx, app, 2**workers, *duration)
	say("   %d calls, %d errors, %.0f calls/s", calls, errs, float64(calls)/duration.Seconds())

	section("a killed worker is replaced")
	if err := killOne(ctx, app, out); err != nil {
		return err
	}

	section("stats")
	s, err := app.Stats(ctx, "demo")
	if err != nil {
		return err
	}
	say("   requests=%d completed=%d errors=%d queued=%d workers=%d ready=%d available=%d busy=%d restarts=%d",
		s.Requests, s.Completed, s.Errors, s.Queued, s.Workers, s.Ready,
		s.Available, s.Busy, s.WorkerRestarts)
	return nil
}

func errSuffix(err error) string {
	if err != nil {
		return ": " + err.Error()
	}
	return ""
}

// progress prints the number of ready workers until all are up.
func progress(ctx context.Context, app *snakepit.App, pool string, want int, out io.Writer) error {
	done := make(chan error, 1)
	go func() { done <- app.AwaitInitComplete(ctx) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := -1
	for {
		select {
		case err := <-done:
			fmt.Fprintf(out, "\r   workers ready %d/%d\n", want, want)
			return err
		case <-tick.C:
			if s, err := app.Stats(ctx, pool); err == nil && s.Ready != last {
				last = s.Ready
				fmt.Fprintf(out, "\r   workers ready %d/%d", last, want)
			}
		}
	}
}

// concurrent runs ping from n goroutines for d.
func concurrent(ctx context.Context, app *snakepit.App, n int, d time.Duration) (calls, errs int64) {
	var ok, bad atomic.Int64
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cctx.Err() == nil {
				_, err := app.Execute(ctx, "ping", nil)
				if err != nil {
					bad.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load(), bad.Load()
}

// killOne SIGKILLs a busy worker's Python process and shows the caller's
// worker_exit error and the replacement.
func killOne(ctx context.Context, app *snakepit.App, out io.Writer) error {
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	before, err := reg.ListPool(ctx, "demo")
	if err != nil || len(before) == 0 {
		return fmt.Errorf("registry: %d workers, %v", len(before), err)
	}
	sort.Slice(before, func(i, j int) bool { return before[i].WorkerID < before[j].WorkerID })
	// Hold every worker busy so the victim is surely mid-call.
	errc := make(chan error, len(before))
	for range before {
		go func() {
			_, err := app.Execute(ctx, "sleep", map[string]any{"ms": 1500})
			errc <- err
		}()
	}
	victim := before[0]
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s, err := app.Stats(ctx, "demo"); err == nil && s.Busy == len(before) {
			break
		}
	}
	fmt.Fprintf(out, "   SIGKILL python pid %d (worker %s) while it runs a call\n", victim.OSPid, victim.WorkerID)
	if _, err := procs.Terminate(ctx, procs.Target{PID: victim.OSPid}, 0); err != nil {
		return err
	}
	for range before {
		if err := <-errc; err != nil {
			var serr *snakepit.Error
			if errors.As(err, &serr) {
				fmt.Fprintf(out, "   caller got: %s/%s (%s)\n", serr.Category, serr.Code, serr.Details["signal"])
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m, found, err := reg.Lookup(ctx, victim.WorkerID)
		if err == nil && found && m.OSPid != victim.OSPid {
			fmt.Fprintf(out, "   worker %s restarted: new python pid %d (generation %d)\n", m.WorkerID, m.OSPid, m.Generation)
			if _, err := app.Execute(ctx, "ping", nil); err != nil {
				return err
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the killed worker was not replaced within 30s")
}
