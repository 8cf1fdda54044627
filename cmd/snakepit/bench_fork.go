// The fork scenario of snakepit bench: workers spawned vs forked from the
// pool's fork server.

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/procs"
)

// forkManyTarget bounds the ready time of -fork-many forked workers.
const forkManyTarget = time.Second

// numpyAdapter is the showcase adapter with numpy imported, as an ML
// adapter would: what each spawned worker pays again at start.
const numpyAdapter = `"""The showcase adapter, with numpy imported (snakepit bench fork)."""

import numpy  # noqa: F401 - the import is what this adapter measures

from snakepit_bridge.adapters.showcase import ShowcaseAdapter


class NumpyAdapter(ShowcaseAdapter):
    """ShowcaseAdapter, after import numpy."""
`

// forkRun is one adapter's spawn/fork comparison.
type forkRun struct {
	Adapter string  `json:"adapter"`
	Workers int     `json:"workers"`
	SpawnS  float64 `json:"spawn_ready_s"`
	ForkS   float64 `json:"fork_ready_s"`
	Ratio   float64 `json:"ratio"` // spawn / fork
	// PSS per worker: spawned, and forked with the zygote's PSS shared out
	// over the workers.
	SpawnPSSKiB  float64 `json:"spawn_pss_per_worker_kib"`
	ForkPSSKiB   float64 `json:"fork_pss_per_worker_kib"`
	ZygotePSSKiB float64 `json:"zygote_pss_kib"`
	PSSRatio     float64 `json:"pss_ratio"` // fork / spawn
}

func (b *bench) fork(ctx context.Context) (*benchReport, error) {
	forkWorkers, forkMany := b.cfg.ForkWorkers, b.cfg.ForkMany
	b.say("== fork: %d workers ready (Start + AwaitInitComplete), spawned vs forked from the pool's fork server", forkWorkers)
	adapters := []struct{ name, class, pythonPath string }{{"showcase", snakepit.DefaultAdapter, ""}}
	if err := exec.CommandContext(ctx, b.interp.Path, "-c", "import numpy").Run(); err == nil {
		dir, err := os.MkdirTemp("", "snakepit-bench-numpy-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if err := os.WriteFile(filepath.Join(dir, "bench_numpy_adapter.py"), []byte(numpyAdapter), 0o600); err != nil {
			return nil, err
		}
		adapters = append(adapters, struct{ name, class, pythonPath string }{"numpy", "bench_numpy_adapter.NumpyAdapter", dir})
	} else {
		b.say("   numpy is not importable by %s: the numpy adapter is left out", b.interp.Path)
	}
	var runs []forkRun
	worst := 0.0
	var detail []string
	for _, a := range adapters {
		r := forkRun{Adapter: a.name, Workers: forkWorkers}
		for _, forked := range []bool{false, true} {
			took, pss, zygote, err := b.timeStart(ctx, forkWorkers, a.class, a.pythonPath, forked)
			if err != nil {
				return nil, fmt.Errorf("%s, forked=%v: %w", a.name, forked, err)
			}
			if forked {
				r.ForkS, r.ForkPSSKiB, r.ZygotePSSKiB = took.Seconds(), pss, zygote
			} else {
				r.SpawnS, r.SpawnPSSKiB = took.Seconds(), pss
			}
		}
		r.Ratio, r.PSSRatio = r.SpawnS/r.ForkS, r.ForkPSSKiB/r.SpawnPSSKiB
		runs = append(runs, r)
		if worst == 0 || r.Ratio < worst {
			worst = r.Ratio
		}
		detail = append(detail, fmt.Sprintf("%s %.2f", a.name, r.Ratio))
	}
	many, _, _, err := b.timeStart(ctx, forkMany, snakepit.DefaultAdapter, "", true)
	if err != nil {
		return nil, fmt.Errorf("%d forked workers: %w", forkMany, err)
	}
	rows := [][]string{{"adapter", "spawn s", "fork s", "spawn/fork", "PSS spawned KiB", "PSS forked KiB", "forked/spawned"}}
	worstPSS := 0.0
	for _, r := range runs {
		rows = append(rows, []string{r.Adapter, fmt.Sprintf("%.3f", r.SpawnS), fmt.Sprintf("%.3f", r.ForkS), fmt.Sprintf("%.2f", r.Ratio),
			fmt.Sprintf("%.0f", r.SpawnPSSKiB), fmt.Sprintf("%.0f", r.ForkPSSKiB), fmt.Sprintf("%.2f", r.PSSRatio)})
		worstPSS = max(worstPSS, r.PSSRatio)
	}
	b.table(rows)
	b.say("   %d forked showcase workers ready in %.3f s (target < %s); PSS forked/spawned at most %.2f (target <= 0.50)",
		forkMany, many.Seconds(), forkManyTarget, worstPSS)
	rep := b.report("fork", fmt.Sprintf("ratio = spawn time / fork time for %d workers (Start + AwaitInitComplete, the fork "+
		"server's own start included; the first worker is spawned while the zygote starts), the smaller over the adapters; "+
		"PSS from /proc/PID/smaps_rollup of every spawned worker, and of every forked one with the zygote's shared out over "+
		"them, once all were ready", forkWorkers),
		map[string]any{"runs": runs, "many_workers": forkMany, "many_ready_s": many.Seconds(),
			"many_target_met": many < forkManyTarget, "pss_ratio_worst": worstPSS, "pss_target_met": worstPSS <= 0.5})
	b.withRatio(rep, worst, true, forkTarget, "; "+strings.Join(detail, ", ")+
		fmt.Sprintf("; %d ready in %.2fs; PSS %.2f", forkMany, many.Seconds(), worstPSS))
	return rep, nil
}

// timeStart times Start + AwaitInitComplete of a pool of n workers of
// adapter (forked or spawned), and reads the workers' mean PSS (KiB) and
// the zygote's, before it stops the App.
func (b *bench) timeStart(ctx context.Context, n int, adapter, pythonPath string, forked bool) (time.Duration, float64, float64, error) {
	t0 := time.Now()
	app, stop, err := b.startAppWith(ctx, n, nil, func(c *snakepit.Config) {
		c.Pools[0].Adapter, c.Pools[0].ForkServer = adapter, forked
		if pythonPath != "" {
			c.PythonPath = append(c.PythonPath, pythonPath)
		}
	})
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()
	if err := awaitAll(ctx, app, n); err != nil {
		return 0, 0, 0, err
	}
	took := time.Since(t0)
	ws, err := app.Workers(ctx, benchPool)
	if err != nil {
		return 0, 0, 0, err
	}
	// Forked pools: the forked workers only (the first worker is spawned
	// while the zygote starts), with the zygote's PSS shared out over them.
	zpid := 0
	var zygote float64
	if fs, ok := app.ForkServer(benchPool); ok && fs.PID > 0 {
		zpid, zygote = fs.PID, pssKiB(fs.PID)
	}
	var sum float64
	measured := 0
	for _, w := range ws {
		if zpid == 0 || parentOf(ctx, w.OSPid) == zpid {
			sum += pssKiB(w.OSPid)
			measured++
		}
	}
	if measured == 0 { // a pool of one: its worker was spawned while the zygote started
		for _, w := range ws {
			sum += pssKiB(w.OSPid)
			measured++
		}
	}
	if measured == 0 {
		return 0, 0, 0, fmt.Errorf("no worker to measure")
	}
	return took, (sum + zygote) / float64(measured), zygote, nil
}

// parentOf is a process's parent pid (0 when unknown).
func parentOf(ctx context.Context, pid int) int {
	p, err := procs.System.Process(ctx, pid)
	if err != nil {
		return 0
	}
	return p.PPID
}

// pssKiB is a process's proportional set size (Pss in smaps_rollup), 0
// when it cannot be read.
func pssKiB(pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return v
		}
	}
	return 0
}
