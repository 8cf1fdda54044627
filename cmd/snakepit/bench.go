package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/shirou/gopsutil/v4/process"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/registry"
	"github.com/snakepit-go/snakepit/actors/worker"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/internal/pyenv"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// benchScenarios are the scenarios of `snakepit bench`, in the order they run.
var benchScenarios = []string{"unary", "stream", "binary", "startup", "memory"}

// Targets: a pool must keep at least this share of the direct path's
// throughput, and start at most this far above the cold-start floor.
const (
	unaryTarget   = 0.90
	streamTarget  = 0.80
	binaryTarget  = 0.80
	startupTarget = 1.2
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

const benchHelp = `usage: snakepit bench [flags] [scenario ...]

Measures the host against a baseline taken in the same run on the same
machine, and prints every speed figure as a ratio to it. Scenarios (default:
all, in this order):

  unary    ping through the pool (App.Execute) vs the same Python servers
           dialled directly (BridgeService.ExecuteTool); target ratio >= 0.90
  stream   stream_bytes (256 chunks of 64 KiB) through the pool vs direct
           ExecuteStreamingTool; concurrency min(C, N); target >= 0.80
  binary   echo_binary with 1 MiB and 16 MiB payloads through the pool vs
           direct; concurrency min(C, N); target >= 0.80 per size
  startup  Start + AwaitInitComplete of a pool of K workers vs the floor
           cold-start x K / CPUs (at least one cold start), where cold-start
           is the median of 3 Python worker servers spawned directly;
           target ratio <= 1.2
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

// runBench is `snakepit bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), benchHelp)
		fs.PrintDefaults()
	}
	workers := fs.Int("workers", 4, "pool size for unary, stream, binary and memory")
	concurrency := fs.Int("concurrency", 16, "concurrent callers (stream and binary use min(C, workers))")
	duration := fs.Duration("duration", 3*time.Second, "length of each measured phase")
	startup := fs.String("startup", "1,4,16,64", "worker counts for the startup scenario")
	out := fs.String("out", filepath.Join("bench", "results"), "directory for <scenario>.json")
	printJSON := fs.Bool("json", false, "also print each result's JSON to stdout")
	// Flags may come before, between or after the scenario names.
	var scenarios []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		scenarios = append(scenarios, fs.Arg(0))
		rest = fs.Args()[1:]
	}
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
	if *workers < 1 || *concurrency < 1 || *duration <= 0 {
		return errors.New("bench: -workers and -concurrency must be at least 1 and -duration positive")
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
			Startup: counts, Out: *out, Rounds: benchRounds, Scenarios: scenarios,
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
		"unary": b.unary, "stream": b.stream, "binary": b.binary, "startup": b.startup, "memory": b.memory,
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
	dir, err := os.MkdirTemp("", "snakepit-bench-")
	if err != nil {
		return nil, nil, err
	}
	b.apps++
	tok := make([]byte, 12)
	_, _ = rand.Read(tok)
	app, err := snakepit.Start(ctx, snakepit.Config{
		Python: b.interp.Path, PrivDir: b.privDir, DataDir: dir, Logger: b.logger,
		InstanceName: "bench", InstanceToken: "bench-" + hex.EncodeToString(tok),
		Pools: []snakepit.PoolConfig{{Name: benchPool, Size: size}},
	})
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
func (b *bench) readyPool(ctx context.Context, n int) (*snakepit.App, *servers, func(), error) {
	app, stop, err := b.startApp(ctx, n)
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
	if int(s.GetReady()) != size {
		return fmt.Errorf("only %d of %d workers are ready", s.GetReady(), size)
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
		if info == nil || info.Target == "" || info.State != "ready" {
			s.close()
			return nil, fmt.Errorf("worker %s is not ready", id)
		}
		conn, err := grpc.NewClient(info.Target, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20), grpc.MaxCallSendMsgSize(256<<20)))
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

const alternationNote = "pool (A) and direct (B) phases alternate A B A B; the best phase of each path is " +
	"reported (and every round is kept), because this machine is shared and noisy"

// unary: ping through the pool vs the same servers dialled directly.
func (b *bench) unary(ctx context.Context) (*benchReport, error) {
	n, conc := b.cfg.Workers, b.cfg.Concurrency
	b.say("== unary: ping, pool of %d workers, concurrency %d, %s per phase, best of %d alternating rounds (A B A B; the machine is shared and noisy)",
		n, conc, b.cfg.Duration, b.cfg.Rounds)
	app, srv, done, err := b.readyPool(ctx, n)
	if err != nil {
		return nil, err
	}
	defer done()

	pool := func(ctx context.Context, _, _ int) (int64, int64, error) {
		res, err := app.Execute(ctx, "ping", nil)
		if err == nil && string(res.JSON) != `"pong"` {
			err = fmt.Errorf("ping answered %s", res.JSON)
		}
		return 0, 0, err
	}
	var rr atomic.Uint64
	direct := func(ctx context.Context, _, _ int) (int64, int64, error) {
		c := srv.clients[int(rr.Add(1)%uint64(len(srv.clients)))]
		resp, err := c.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "ping"})
		if err != nil {
			return 0, 0, err
		}
		if !resp.GetSuccess() {
			return 0, 0, fmt.Errorf("ping failed: %s", resp.GetErrorMessage())
		}
		raw, err := jsonany.Unpack(resp.GetResult())
		if err == nil && string(raw) != `"pong"` {
			err = fmt.Errorf("ping answered %s", raw)
		}
		return 0, 0, err
	}
	c, err := b.compare(ctx, conc, unaryWarmup, "calls_per_s", pool, direct)
	if err != nil {
		return nil, err
	}
	// The pool's process profile runs one call per worker at a time (its
	// capacity); the direct path above lets every server take C/N at once,
	// which a Python server turns into more throughput. Measure the direct
	// path at the pool's own per-server concurrency too: that ratio is the
	// pool's cost, the other what capacity 1 forgoes.
	matched := func(ctx context.Context, g, _ int) (int64, int64, error) {
		resp, err := srv.clients[g%len(srv.clients)].ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "ping"})
		if err == nil && !resp.GetSuccess() {
			err = fmt.Errorf("ping failed: %s", resp.GetErrorMessage())
		}
		return 0, 0, err
	}
	var m phase
	for r := range b.cfg.Rounds {
		p, err := measure(ctx, "direct, 1/server", len(srv.clients), b.cfg.Duration, matched)
		if err != nil {
			return nil, err
		}
		if r == 0 || p.CallsPerS > m.CallsPerS {
			m = p
		}
	}
	rows := phaseRows(c, false)
	f0 := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	f3 := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	rows = append(rows, []string{m.Path, f0(m.CallsPerS), "-", f3(m.P50Ms), f3(m.P99Ms), f3(m.MeanMs), strconv.FormatInt(m.Ops, 10), "best of " + strconv.Itoa(b.cfg.Rounds)})
	b.table(rows)
	matchedRatio := c.Pool.CallsPerS / m.CallsPerS
	b.say("   the pool runs one call per worker at a time (process profile) and queues the rest; \"direct\" has up to %d calls in flight per Python server, \"direct, 1/server\" one, like the pool",
		(conc+n-1)/n)
	b.say("   pool / direct at C/N per server: %.3f (what capacity 1 forgoes); pool / direct at 1 per server: %.3f (the pool's own cost)", c.Ratio, matchedRatio)
	rep := b.report("unary", alternationNote+"; direct calls go round-robin over the pool's own Python servers while the pool is idle; "+
		"the headline ratio compares with the direct path at the pool's own per-server concurrency (one call per process worker)",
		unaryResult{comparison: c, DirectMatched: m, RatioMatched: matchedRatio, RatioUnmatched: c.Ratio})
	b.withRatio(rep, matchedRatio, true, unaryTarget, fmt.Sprintf("; vs %d/server direct %.2f", (conc+n-1)/n, c.Ratio))
	return rep, nil
}

// unaryResult is the unary scenario's figures: the comparison at C
// concurrent callers, and the direct path at one call per server.
type unaryResult struct {
	*comparison
	DirectMatched  phase   `json:"direct_one_per_server"`
	RatioMatched   float64 `json:"ratio_vs_one_per_server"`
	RatioUnmatched float64 `json:"ratio_vs_c_over_n_per_server"`
}

// stream: stream_bytes through the pool vs direct ExecuteStreamingTool.
func (b *bench) stream(ctx context.Context) (*benchReport, error) {
	n := b.cfg.Workers
	conc := min(b.cfg.Concurrency, n)
	b.say("== stream: stream_bytes n=%d size=%d KiB (%.1f MB a stream), pool of %d workers, %d concurrent sequential streams, %s per phase, best of %d alternating rounds",
		streamChunks, streamChunkSize>>10, float64(streamChunks*streamChunkSize)/mb, n, conc, b.cfg.Duration, b.cfg.Rounds)
	app, srv, done, err := b.readyPool(ctx, n)
	if err != nil {
		return nil, err
	}
	defer done()

	args := map[string]any{"n": streamChunks, "size": streamChunkSize}
	argsJSON, _ := json.Marshal(args)
	check := func(chunks, nbytes int64) error {
		if chunks != streamChunks || nbytes != streamChunks*streamChunkSize {
			return fmt.Errorf("stream delivered %d chunks, %d bytes; want %d, %d", chunks, nbytes, streamChunks, streamChunks*streamChunkSize)
		}
		return nil
	}
	pool := func(ctx context.Context, _, _ int) (int64, int64, error) {
		st, err := app.ExecuteStream(ctx, "stream_bytes", args)
		if err != nil {
			return 0, 0, err
		}
		var chunks, nbytes int64
		for c, err := range st.Chunks() {
			if err != nil {
				return 0, 0, err
			}
			chunks++
			nbytes += int64(len(c.Data))
		}
		return chunks, nbytes, check(chunks, nbytes)
	}
	direct := func(ctx context.Context, g, _ int) (int64, int64, error) {
		params, err := jsonany.PackArgs(argsJSON)
		if err != nil {
			return 0, 0, err
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := srv.clients[g%len(srv.clients)].ExecuteStreamingTool(sctx,
			&bridgepb.ExecuteToolRequest{ToolName: "stream_bytes", Parameters: params, Stream: true})
		if err != nil {
			return 0, 0, err
		}
		var chunks, nbytes int64
		for {
			ch, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, 0, err
			}
			if !ch.GetIsFinal() || len(ch.GetData()) > 0 {
				chunks++
				nbytes += int64(len(ch.GetData()))
			}
			if ch.GetIsFinal() {
				break
			}
		}
		return chunks, nbytes, check(chunks, nbytes)
	}
	c, err := b.compare(ctx, conc, conc, "chunks_per_s", pool, direct)
	if err != nil {
		return nil, err
	}
	b.table(phaseRows(c, true))
	rep := b.report("stream", alternationNote+fmt.Sprintf("; %d goroutines each run streams back to back; direct goroutine g streams from worker g mod %d's server", conc, n), c)
	b.withRatio(rep, c.Ratio, true, streamTarget, "")
	return rep, nil
}

// binarySize is the result for one echo_binary payload size.
type binarySize struct {
	SizeBytes int         `json:"size_bytes"`
	Label     string      `json:"label"`
	Result    *comparison `json:"result"`
}

// binary: echo_binary with large payloads through the pool vs direct.
func (b *bench) binary(ctx context.Context) (*benchReport, error) {
	n := b.cfg.Workers
	conc := min(b.cfg.Concurrency, n)
	b.say("== binary: echo_binary, pool of %d workers, concurrency %d, %s per phase and size, best of %d alternating rounds; MB/s counts payload bytes sent + received (MB = 10^6 bytes)",
		n, conc, b.cfg.Duration, b.cfg.Rounds)
	app, srv, done, err := b.readyPool(ctx, n)
	if err != nil {
		return nil, err
	}
	defer done()

	var results []binarySize
	worst, detail := math.Inf(1), []string{}
	for _, size := range binarySizes {
		label := fmt.Sprintf("%d MiB", size>>20)
		payload := make([]byte, size)
		rng := mrand.NewChaCha8([32]byte{byte(size)})
		_, _ = rng.Read(payload)
		sum := crc32.ChecksumIEEE(payload)
		// Every call checks the length; the first call of each goroutine
		// in each phase also checks the bytes (CRC-32).
		verify := func(got []byte, i int) error {
			if len(got) != size {
				return fmt.Errorf("echo_binary %s: got %d bytes back", label, len(got))
			}
			if i == 0 && crc32.ChecksumIEEE(got) != sum {
				return fmt.Errorf("echo_binary %s: the echoed bytes differ (CRC-32)", label)
			}
			return nil
		}
		pool := func(ctx context.Context, _, i int) (int64, int64, error) {
			res, err := app.Execute(ctx, "echo_binary", nil, snakepit.WithBinary(map[string][]byte{"data": payload}))
			if err != nil {
				return 0, 0, err
			}
			if !res.IsBinary {
				return 0, 0, fmt.Errorf("echo_binary answered JSON %.40s", res.JSON)
			}
			return 0, int64(size + len(res.Binary)), verify(res.Binary, i)
		}
		direct := func(ctx context.Context, g, i int) (int64, int64, error) {
			resp, err := srv.clients[g%len(srv.clients)].ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{
				ToolName: "echo_binary", BinaryParameters: map[string][]byte{"data": payload}})
			if err != nil {
				return 0, 0, err
			}
			if !resp.GetSuccess() {
				return 0, 0, fmt.Errorf("echo_binary failed: %s", resp.GetErrorMessage())
			}
			return 0, int64(size + len(resp.GetBinaryResult())), verify(resp.GetBinaryResult(), i)
		}
		c, err := b.compare(ctx, conc, conc, "mb_per_s", pool, direct)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		b.say("   -- %s payload", label)
		b.table(phaseRows(c, false))
		b.say("   ratio %s: %.3f", label, c.Ratio)
		results = append(results, binarySize{SizeBytes: size, Label: label, Result: c})
		worst = min(worst, c.Ratio)
		detail = append(detail, fmt.Sprintf("%s %.2f", label, c.Ratio))
	}
	rep := b.report("binary", alternationNote+"; the headline ratio is the worst size's; direct goroutine g calls worker g mod N's server", map[string]any{"sizes": results})
	b.withRatio(rep, worst, true, binaryTarget, "; worst of "+strings.Join(detail, ", "))
	return rep, nil
}

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
	worst := 0.0
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
		r := startupRun{Workers: k, ReadyS: ready, FloorS: floor, Ratio: ready / floor, StoppedS: stopped,
			ParallelS: par.Seconds(), ParallelRatio: ready / par.Seconds()}
		runs = append(runs, r)
		worst = max(worst, r.Ratio)
		detail = append(detail, fmt.Sprintf("K=%d %.2f", k, r.Ratio))
	}
	rows := [][]string{{"workers", "ready s", "floor s", "ratio", "bare parallel s", "ratio", "stop s"}}
	for _, r := range runs {
		rows = append(rows, []string{strconv.Itoa(r.Workers), fmt.Sprintf("%.3f", r.ReadyS), fmt.Sprintf("%.3f", r.FloorS),
			fmt.Sprintf("%.2f", r.Ratio), fmt.Sprintf("%.3f", r.ParallelS), fmt.Sprintf("%.2f", r.ParallelRatio),
			fmt.Sprintf("%.3f", r.StoppedS)})
	}
	b.table(rows)
	b.say("   bare parallel: K servers spawned directly, %d at a time like the pool, until all are ready — what this machine can do without a host", startupWindow)
	rep := b.report("startup", "cold start: the same interpreter running grpc_server.py --adapter <showcase> --port 0 directly "+
		"(no host to register with), timed until its ready file holds the port, median of 3; floor(K) = cold × max(1, K / NumCPU); "+
		"the headline ratio is the worst K's",
		map[string]any{"cold_start_s": cold, "cold_starts_s": colds, "runs": runs})
	b.withRatio(rep, worst, false, startupTarget, "; worst of "+strings.Join(detail, ", "))
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
	pythonPath := b.privDir
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "PYTHONPATH":
			if v != "" {
				pythonPath += string(os.PathListSeparator) + v
			}
		case strings.HasPrefix(k, "SNAKEPIT_READY_FILE"), k == "SNAKEPIT_PROCESS_GROUP",
			k == "SNAKEPIT_GRPC_ADDRESS", k == "SNAKEPIT_ELIXIR_ADDRESS":
		default:
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PYTHONPATH="+pythonPath, "PYTHONUNBUFFERED=1", "SNAKEPIT_READY_FILE="+ready,
		"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1", "NUMEXPR_NUM_THREADS=1",
		"VECLIB_MAXIMUM_THREADS=1", "GRPC_ENABLE_FORK_SUPPORT=0")
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
			if _, err := strconv.Atoi(string(bytes.TrimSpace(data))); err != nil {
				end()
				return 0, fmt.Errorf("ready file holds %q, not a port", data)
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
}

// memory: host RSS growth per worker and each worker's Python RSS.
func (b *bench) memory(ctx context.Context) (*benchReport, error) {
	n := b.cfg.Workers
	b.say("== memory: host RSS before Start and after %d workers are ready (after a GC); Python RSS per worker (process tree)", n)
	before, heapBefore, err := hostMemory()
	if err != nil {
		return nil, err
	}
	app, stop, err := b.startApp(ctx, n)
	if err != nil {
		return nil, err
	}
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
	mib := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
	b.table([][]string{
		{"what", "MiB"},
		{"host RSS before Start", mib(float64(before))},
		{fmt.Sprintf("host RSS with %d workers ready", n), mib(float64(after))},
		{"host RSS growth per worker", mib(float64(res.HostGrowthPerWorker))},
		{"go heap growth per worker", mib(float64(res.HeapGrowthPerWorker))},
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
	b.summary = append(b.summary, fmt.Sprintf("memory\tno ratio\t(host RSS %+.1f MiB, Go heap %+.1f MiB per worker; python %.1f MiB mean, %.1f MiB max per worker)\t-",
		float64(res.HostGrowthPerWorker)/(1<<20), float64(res.HeapGrowthPerWorker)/(1<<20),
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
