package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/snakepit-go/snakepit/actors/registry"
	"github.com/snakepit-go/snakepit/actors/worker"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/pyenv"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// benchScenarios are the scenarios of `snakepit bench`, in the order they run.
var benchScenarios = []string{"dispatch", "unary", "async", "metrics", "stream", "binary", "shm", "startup", "fork", "memory"}

// Targets: a pool must keep at least this share of the direct path's
// throughput, and start at most this far above the cold-start floor.
const (
	unaryTarget   = 0.90
	metricsTarget = 0.98
	streamTarget  = 0.80
	binaryTarget  = 0.80
	startupTarget = 1.2
	forkTarget    = 3.0
	asyncTarget   = 0.95
)

// Fixed workload parameters.
const (
	benchPool       = "bench"
	benchRounds     = 2   // A B A B: the best of each path is reported
	unaryWarmup     = 200 // calls per path before measuring
	streamChunks    = 256
	streamChunkSize = 64 << 10
	coldStarts      = 3 // the startup floor is their median
	mb              = 1e6
)

// binarySizes are the echo_binary payload sizes.
var binarySizes = []int{1 << 20, 16 << 20}

const benchHelp = `bench measures the host against a baseline taken in the same run on the same
machine, and prints every speed figure as a ratio to it. Scenarios (default:
all, in this order):

  dispatch one call at a time on in-process fake workers: the pool actor
           (poolpb.Execute) and App.Execute end to end vs a raw protoactor
           request/response; ratio = the worse of the two; target <= 1.50
  unary    ping through the pool (App.Execute) vs the same Python servers
           dialled directly (BridgeService.ExecuteTool); target ratio >= 0.90
  async    aping (a coroutine) through a pool of AsyncShowcaseAdapter
           workers (max_concurrency 16: many calls per process) vs the
           same servers dialled directly, both with C/N calls in flight per
           server; target ratio >= 0.95
  metrics  ping through a pool with OpenTelemetry metrics on (Prometheus
           exporter, scraped every second) vs a pool of the same size
           with metrics off; target ratio >= 0.98
  stream   stream_bytes (256 chunks of 64 KiB) through the pool vs direct
           ExecuteStreamingTool; concurrency min(C, N); target >= 0.80
  binary   echo_binary with 1 MiB and 16 MiB payloads through the pool vs
           direct, both by gRPC (shared memory off); concurrency min(C, N);
           target >= 0.80 per size
  shm      echo_binary of 16 MiB through a pool with shared memory
           (WithZeroCopy) vs direct gRPC, and vs the pool with it off;
           ratio = the smaller; target >= 3
  startup  Start + AwaitInitComplete of a pool of K workers vs the floor
           cold-start x K / CPUs (at least one cold start), where cold-start
           is the median of 3 Python worker servers spawned directly;
           target ratio <= 1.2
  fork     Start + AwaitInitComplete of -fork-workers (64) spawned vs forked from
           the pool's fork server, with the showcase adapter and with one
           importing numpy (when Python has it); ratio = the smaller
           spawn/fork time; target >= 3. Also: -fork-many (100) forked workers
           ready (target < 1 s) and each worker's PSS, spawned vs forked
           (the zygote's PSS shared out; target forked <= half)
  memory   host RSS growth per worker and each worker's Python RSS (no ratio)

Pool and direct phases alternate (A B A B) and the best of each is kept:
the machines this runs on are shared and noisy. Every scenario writes
DIR/<scenario>.json. The default -startup list stops at 64: measured on a
2-CPU machine, the whole default run stays well under 5 minutes with it.

flags:`

// benchConfig is the command line of one bench run (recorded in every
// result file).
type benchConfig struct {
	Workers     int           `json:"workers"`
	Concurrency int           `json:"concurrency"`
	Duration    time.Duration `json:"-"`
	DurationStr string        `json:"duration"`
	Startup     []int         `json:"startup"`
	ForkWorkers int           `json:"fork_workers"`
	ForkMany    int           `json:"fork_many"`
	Out         string        `json:"out"`
	Rounds      int           `json:"rounds"`
	Scenarios   []string      `json:"scenarios"`
}

// machineInfo describes where a result was measured.
type machineInfo struct {
	NumCPU        int    `json:"num_cpu"`
	GOOS          string `json:"goos"`
	GOARCH        string `json:"goarch"`
	GoVersion     string `json:"go_version"`
	Python        string `json:"python"`
	PythonVersion string `json:"python_version"`
}

// benchReport is one scenario's result file.
type benchReport struct {
	Scenario  string      `json:"scenario"`
	Timestamp time.Time   `json:"timestamp"`
	Config    benchConfig `json:"config"`
	Machine   machineInfo `json:"machine"`
	Note      string      `json:"note,omitempty"`
	// Ratio is the scenario's headline ratio (the worst one where there are
	// several); absent for memory.
	Ratio   *float64 `json:"ratio,omitempty"`
	Target  string   `json:"target,omitempty"`
	Met     *bool    `json:"met,omitempty"`
	Results any      `json:"results"`
}

// phase is what one measured phase (one path, one round) did.
type phase struct {
	Path       string  `json:"path"`
	Ops        int64   `json:"calls"` // calls, or whole streams
	Chunks     int64   `json:"chunks,omitempty"`
	Bytes      int64   `json:"bytes,omitempty"` // payload bytes sent + received
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	CallsPerS  float64 `json:"calls_per_s"`
	ChunksPerS float64 `json:"chunks_per_s,omitempty"`
	MBPerS     float64 `json:"mb_per_s,omitempty"` // MB = 10^6 bytes
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MeanMs     float64 `json:"mean_ms"`
}

// comparison is a pool-vs-direct result: the best phase of each path, every
// round, and the ratio of the bests.
type comparison struct {
	Metric      string     `json:"metric"`
	Concurrency int        `json:"concurrency"`
	Pool        phase      `json:"pool"`
	Direct      phase      `json:"direct"`
	Ratio       float64    `json:"ratio"`
	Rounds      [][2]phase `json:"rounds"`
}

// bench is one run of the bench command.
type bench struct {
	cfg     benchConfig
	out     io.Writer
	logger  *slog.Logger
	interp  pyenv.Interpreter
	privDir string
	machine machineInfo
	printJ  bool
	summary []string
	apps    int // Apps started so far in this process
}

// benchCommand defines bench's flags on fs and returns `snakepit bench`.
func benchCommand(fs *pflag.FlagSet) func(ctx context.Context, scenarios []string, stdout, stderr io.Writer) error {
	workers := fs.Int("workers", 4, "pool size for unary, stream, binary and memory")
	concurrency := fs.Int("concurrency", 16, "concurrent callers (stream and binary use min(C, workers))")
	duration := fs.Duration("duration", 3*time.Second, "length of each measured phase")
	startup := fs.String("startup", "1,4,16,64", "worker counts for the startup scenario")
	forkWorkers := fs.Int("fork-workers", 64, "pool size of the fork scenario's spawn/fork comparison")
	forkMany := fs.Int("fork-many", 100, "forked workers the fork scenario starts against its 1 s target")
	out := fs.String("out", filepath.Join("bench", "results"), "directory for <scenario>.json")
	printJSON := fs.Bool("json", false, "also print each result's JSON to stdout")
	return func(ctx context.Context, scenarios []string, stdout, stderr io.Writer) error {
		return runBench(ctx, benchFlags{*workers, *concurrency, *duration, *startup, *out, *printJSON, *forkWorkers, *forkMany}, scenarios, stdout, stderr)
	}
}

// benchFlags are bench's flags.
type benchFlags struct {
	workers, concurrency int
	duration             time.Duration
	startup, out         string
	printJSON            bool
	forkWorkers          int
	forkMany             int
}

func newBenchCmd(*globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench [SCENARIO ...]",
		Short: "Measure the pool against its own floors in one run; results in -out",
		Long:  benchHelp,
	}
	run := benchCommand(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// runBench is `snakepit bench`.
func runBench(ctx context.Context, f benchFlags, scenarios []string, stdout, stderr io.Writer) error {
	workers, concurrency, duration, startup, out, printJSON := &f.workers, &f.concurrency, &f.duration, &f.startup, &f.out, &f.printJSON
	if len(scenarios) == 0 {
		scenarios = benchScenarios
	}
	for _, s := range scenarios {
		if !slices.Contains(benchScenarios, s) {
			return fmt.Errorf("bench: unknown scenario %q (scenarios: %s)", s, strings.Join(benchScenarios, ", "))
		}
	}
	counts, err := parseCounts(*startup)
	if err != nil {
		return err
	}
	if *workers < 1 || *concurrency < 1 || *duration <= 0 || f.forkWorkers < 1 || f.forkMany < 1 {
		return errors.New("bench: -workers, -concurrency, -fork-workers and -fork-many must be at least 1 and -duration positive")
	}

	interp, err := pyenv.Find(ctx)
	if err != nil {
		return err
	}
	privDir, err := snakepit.FindPrivDir("")
	if err != nil {
		return err
	}
	b := &bench{
		cfg: benchConfig{
			Workers: *workers, Concurrency: *concurrency, Duration: *duration, DurationStr: duration.String(),
			Startup: counts, ForkWorkers: f.forkWorkers, ForkMany: f.forkMany, Out: *out, Rounds: benchRounds, Scenarios: scenarios,
		},
		out:     stdout,
		logger:  slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		interp:  interp,
		privDir: privDir,
		machine: machineInfo{
			NumCPU: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH, GoVersion: runtime.Version(),
			Python: interp.Path, PythonVersion: interp.Version,
		},
		printJ: *printJSON,
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.say("== snakepit bench: %s; %d CPUs, %s/%s, %s, Python %s (%s)", strings.Join(scenarios, ", "),
		b.machine.NumCPU, b.machine.GOOS, b.machine.GOARCH, b.machine.GoVersion, interp.Version, interp.Path)
	b.say("   pool of %d workers, concurrency %d, %s per measured phase; results in %s", *workers, *concurrency, *duration, *out)

	run := map[string]func(context.Context) (*benchReport, error){
		"dispatch": b.dispatch, "unary": b.unary, "async": b.async, "metrics": b.metrics, "stream": b.stream, "binary": b.binary, "shm": b.shm, "startup": b.startup, "fork": b.fork, "memory": b.memory,
	}
	var failed []string
	for _, s := range scenarios {
		b.say("")
		rep, err := run[s](ctx)
		if err == nil {
			err = b.write(rep)
		}
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			b.summary = append(b.summary, fmt.Sprintf("%s\terror: %v\t\t", s, err))
			failed = append(failed, s)
			b.say("   %s failed: %v", s, err)
		}
	}
	b.say("\n== summary (ratios against baselines measured in this run)")
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	for _, line := range b.summary {
		fmt.Fprintln(tw, "   "+line)
	}
	_ = tw.Flush()
	if len(failed) > 0 {
		return fmt.Errorf("bench: %s failed", strings.Join(failed, ", "))
	}
	return nil
}

// parseCounts parses "1,4,16" into worker counts.
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bench: -startup %q: want positive worker counts such as 1,4,16", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func (b *bench) say(format string, a ...any) { fmt.Fprintf(b.out, format+"\n", a...) }

// table prints rows aligned and indented: the first column to the left,
// the figures to the right.
func (b *bench) table(rows [][]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	tw := tabwriter.NewWriter(b.out, 0, 0, 3, ' ', tabwriter.AlignRight)
	for _, r := range rows {
		r = append([]string{fmt.Sprintf("%-*s", width, r[0])}, r[1:]...)
		fmt.Fprintln(tw, "   "+strings.Join(r, "\t")+"\t")
	}
	_ = tw.Flush()
}

// write stores rep as DIR/<scenario>.json (and prints it with -json).
func (b *bench) write(rep *benchReport) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep ">= 0.90" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return err
	}
	data := buf.Bytes()
	path := filepath.Join(b.cfg.Out, rep.Scenario+".json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	b.say("   wrote %s", path)
	if b.printJ {
		_, err := b.out.Write(data)
		return err
	}
	return nil
}

// report starts a scenario's result file.
func (b *bench) report(scenario, note string, results any) *benchReport {
	return &benchReport{Scenario: scenario, Timestamp: time.Now().UTC(), Config: b.cfg, Machine: b.machine,
		Note: note, Results: results}
}

// withRatio sets the headline ratio and whether it meets target, and adds
// the summary line.
func (b *bench) withRatio(rep *benchReport, ratio float64, atLeast bool, target float64, detail string) {
	met := ratio >= target
	cmp := ">="
	if !atLeast {
		met, cmp = ratio <= target, "<="
	}
	rep.Ratio, rep.Met, rep.Target = &ratio, &met, fmt.Sprintf("%s %.2f", cmp, target)
	verdict := "met"
	if !met {
		verdict = "NOT met"
	}
	b.summary = append(b.summary, fmt.Sprintf("%s\tratio %.2f\t(target %s %.2f%s)\t%s",
		rep.Scenario, ratio, cmp, target, detail, verdict))
	b.say("   ratio %.3f (target %s %.2f): %s", ratio, cmp, target, verdict)
}

// startApp starts an App with one pool of size workers of the showcase
// adapter, in a private data directory under a throwaway instance, and
// returns it with the function that stops it and removes the directory.
func (b *bench) startApp(ctx context.Context, size int) (*snakepit.App, func(), error) {
	return b.startAppWith(ctx, size, nil)
}

// startAppWith is startApp with the App's metrics going to mp (nil: none)
// and its config changed by each of change.
func (b *bench) startAppWith(ctx context.Context, size int, mp metric.MeterProvider, change ...func(*snakepit.Config)) (*snakepit.App, func(), error) {
	dir, err := os.MkdirTemp("", "snakepit-bench-")
	if err != nil {
		return nil, nil, err
	}
	b.apps++
	tok := make([]byte, 12)
	_, _ = rand.Read(tok)
	cfg := snakepit.Config{
		Python: b.interp.Path, PrivDir: b.privDir, DataDir: dir, Logger: b.logger,
		InstanceName: "bench", InstanceToken: "bench-" + hex.EncodeToString(tok),
		Pools:         []snakepit.PoolConfig{{Name: benchPool, Size: size}},
		MeterProvider: mp,
	}
	for _, f := range change {
		f(&cfg)
	}
	app, err := snakepit.Start(ctx, cfg)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := app.Stop(sctx); err != nil {
			b.logger.Warn("bench: stopping the app", "error", err)
		}
		_ = os.RemoveAll(dir)
	}
	return app, stop, nil
}

// readyPool starts an App with n workers, waits for all of them and dials
// each one's server directly; done closes the connections and stops it.
func (b *bench) readyPool(ctx context.Context, n int, change ...func(*snakepit.Config)) (*snakepit.App, *servers, func(), error) {
	app, stop, err := b.startAppWith(ctx, n, nil, change...)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := awaitAll(ctx, app, n); err != nil {
		stop()
		return nil, nil, nil, err
	}
	srv, err := dialWorkers(ctx, app)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return app, srv, func() { srv.close(); stop() }, nil
}

// awaitAll waits until all size workers of the bench pool are ready.
func awaitAll(ctx context.Context, app *snakepit.App, size int) error {
	actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := app.AwaitInitComplete(actx); err != nil {
		return err
	}
	s, err := app.Stats(ctx, benchPool)
	if err != nil {
		return err
	}
	if s.Ready != size {
		return fmt.Errorf("only %d of %d workers are ready", s.Ready, size)
	}
	return nil
}

// servers are direct gRPC connections to each worker's Python server.
type servers struct {
	ids     []string
	conns   []*grpc.ClientConn
	clients []bridgepb.BridgeServiceClient
}

// dialWorkers dials every worker of the bench pool the way the host does:
// worker id → registry → worker actor → GetInfo → Target.
func dialWorkers(ctx context.Context, app *snakepit.App) (*servers, error) {
	ids, err := app.ListWorkers(ctx, benchPool)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	s := &servers{}
	for _, id := range ids {
		meta, found, err := reg.Lookup(ctx, id)
		if err != nil || !found {
			s.close()
			return nil, fmt.Errorf("worker %s: not in the registry (%v)", id, err)
		}
		res, err := app.System().Root.RequestFuture(meta.PID, &worker.GetInfo{}, 5*time.Second).Result()
		if err != nil {
			s.close()
			return nil, fmt.Errorf("worker %s: %w", id, err)
		}
		info, _ := res.(*worker.Info)
		if info == nil || info.Target == "" || info.State != worker.StateReady {
			s.close()
			return nil, fmt.Errorf("worker %s is not ready", id)
		}
		conn, err := worker.Dial(info.Target, info.ServerSecret)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("dial worker %s at %s: %w", id, info.Target, err)
		}
		s.ids = append(s.ids, id)
		s.conns = append(s.conns, conn)
		s.clients = append(s.clients, bridgepb.NewBridgeServiceClient(conn))
	}
	if len(s.clients) == 0 {
		return nil, errors.New("the pool has no workers")
	}
	return s, nil
}

func (s *servers) close() {
	for _, c := range s.conns {
		_ = c.Close()
	}
}

// op is one call of a measured phase by goroutine g, its i-th; it returns
// the chunks and payload bytes it moved.
type op func(ctx context.Context, g, i int) (chunks, nbytes int64, err error)

// measure runs conc goroutines calling fn back to back for d and returns
// the phase's figures. Calls in flight at the end finish and count.
func measure(ctx context.Context, path string, conc int, d time.Duration, fn op) (phase, error) {
	pctx, cancel := context.WithTimeout(ctx, d+2*time.Minute)
	defer cancel()
	lats := make([][]time.Duration, conc)
	var chunks, nbytes, errs atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end) && pctx.Err() == nil; i++ {
				t := time.Now()
				c, n, err := fn(pctx, g, i)
				if err != nil {
					errs.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				lats[g] = append(lats[g], time.Since(t))
				chunks.Add(c)
				nbytes.Add(n)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	all := slices.Concat(lats...)
	p := phase{Path: path, Ops: int64(len(all)), Chunks: chunks.Load(), Bytes: nbytes.Load(), Errors: errs.Load(), Seconds: secs}
	p.CallsPerS = float64(p.Ops) / secs
	p.ChunksPerS = float64(p.Chunks) / secs
	p.MBPerS = float64(p.Bytes) / mb / secs
	if len(all) > 0 {
		slices.Sort(all)
		var sum time.Duration
		for _, l := range all {
			sum += l
		}
		ms := func(l time.Duration) float64 { return float64(l) / float64(time.Millisecond) }
		p.P50Ms, p.P99Ms = ms(all[(len(all)-1)*50/100]), ms(all[(len(all)-1)*99/100])
		p.MeanMs = ms(sum / time.Duration(len(all)))
	}
	if firstErr != nil {
		return p, fmt.Errorf("%s: %d of %d calls failed, the first with: %w", path, p.Errors, p.Errors+p.Ops, firstErr)
	}
	if p.Ops == 0 {
		return p, fmt.Errorf("%s: no call completed", path)
	}
	return p, nil
}

// warm runs n calls of fn over conc goroutines, unmeasured.
func warm(ctx context.Context, conc, n int, fn op) error {
	var next atomic.Int64
	errc := make(chan error, conc)
	for g := range conc {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					errc <- nil
					return
				}
				if _, _, err := fn(ctx, g, i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var first error
	for range conc {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// compare warms both paths, then runs pool and direct phases alternately
// (A B A B …) and keeps the best of each by metric.
func (b *bench) compare(ctx context.Context, conc, warmN int, metric string, pool, direct op) (*comparison, error) {
	if err := warm(ctx, conc, warmN, pool); err != nil {
		return nil, fmt.Errorf("warm-up through the pool: %w", err)
	}
	if err := warm(ctx, conc, warmN, direct); err != nil {
		return nil, fmt.Errorf("warm-up direct: %w", err)
	}
	value := func(p phase) float64 {
		switch metric {
		case "chunks_per_s":
			return p.ChunksPerS
		case "mb_per_s":
			return p.MBPerS
		}
		return p.CallsPerS
	}
	c := &comparison{Metric: metric, Concurrency: conc}
	for r := range b.cfg.Rounds {
		a, err := measure(ctx, "pool", conc, b.cfg.Duration, pool)
		if err != nil {
			return nil, err
		}
		d, err := measure(ctx, "direct", conc, b.cfg.Duration, direct)
		if err != nil {
			return nil, err
		}
		c.Rounds = append(c.Rounds, [2]phase{a, d})
		if r == 0 || value(a) > value(c.Pool) {
			c.Pool = a
		}
		if r == 0 || value(d) > value(c.Direct) {
			c.Direct = d
		}
	}
	c.Ratio = value(c.Pool) / value(c.Direct)
	return c, nil
}

// phaseRows are the table rows of a comparison.
func phaseRows(c *comparison, stream bool) [][]string {
	f0 := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	f3 := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	rounds := func(path int, v func(phase) float64) string {
		var s []string
		for _, r := range c.Rounds {
			s = append(s, f0(v(r[path])))
		}
		return strings.Join(s, " / ")
	}
	calls := func(p phase) float64 { return p.CallsPerS }
	if stream {
		chunks := func(p phase) float64 { return p.ChunksPerS }
		rows := [][]string{{"path", "chunks/s", "MB/s", "streams/s", "p50 ms", "p99 ms", "mean ms", "streams", "rounds (chunks/s)"}}
		for i, p := range []phase{c.Pool, c.Direct} {
			rows = append(rows, []string{p.Path, f0(p.ChunksPerS), f1(p.MBPerS), f1(p.CallsPerS), f3(p.P50Ms), f3(p.P99Ms),
				f3(p.MeanMs), strconv.FormatInt(p.Ops, 10), rounds(i, chunks)})
		}
		return rows
	}
	rows := [][]string{{"path", "calls/s", "MB/s", "p50 ms", "p99 ms", "mean ms", "calls", "rounds (calls/s)"}}
	for i, p := range []phase{c.Pool, c.Direct} {
		mbs := "-"
		if p.Bytes > 0 {
			mbs = f1(p.MBPerS)
		}
		rows = append(rows, []string{p.Path, f0(p.CallsPerS), mbs, f3(p.P50Ms), f3(p.P99Ms), f3(p.MeanMs),
			strconv.FormatInt(p.Ops, 10), rounds(i, calls)})
	}
	return rows
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func fmtMs(secs []float64) string {
	s := make([]string, len(secs))
	for i, v := range secs {
		s[i] = fmt.Sprintf("%.0f", v*1000)
	}
	return strings.Join(s, ", ") + " ms"
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
