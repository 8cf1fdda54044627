package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/loadgen"
)

// clusterSummary is demo-cluster's result (-json prints it).
type clusterSummary struct {
	Calls         int64            `json:"calls"`
	OK            int64            `json:"ok"`
	NodeDown      int64            `json:"node_down"`
	Lost          int64            `json:"lost"`
	AnsweredTwice int64            `json:"answered_twice"`
	LateReplies   int64            `json:"late_replies"`
	Wrong         int64            `json:"wrong"`
	Errors        map[string]int64 `json:"errors,omitempty"`
	// DetectMS is the time from the SIGKILL of a node to the first
	// node_down answer on a surviving node.
	DetectMS float64 `json:"detect_ms"`
	// RemoteRatio is calls per second to a pool on another node over calls
	// per second to a pool of the same size on this node.
	RemoteRatio  float64 `json:"remote_ratio"`
	LocalPerSec  float64 `json:"local_per_sec"`
	RemotePerSec float64 `json:"remote_per_sec"`
	// LeftMS is the time from the kill until node-c's pool had left this
	// node's directory (membership declared the node gone).
	LeftMS float64 `json:"left_ms"`
	// Rejoined says the killed node, restarted, served calls from both
	// other nodes again.
	Rejoined bool `json:"rejoined"`
	// ByNode is what each node's callers saw in the run under the kill:
	// node → pool → counts.
	ByNode   map[string]map[string]loadgen.PoolCount `json:"by_node"`
	Nodes    int                                     `json:"nodes"`
	Workers  int                                     `json:"workers_per_pool"`
	CPUs     int                                     `json:"cpus"`
	Measured string                                  `json:"measured"`

	total loadgen.Report // every phase's calls
}

// totals copies the sums of every phase's calls into the summary.
func (s *clusterSummary) totals() {
	t := s.total
	s.Calls, s.OK, s.NodeDown, s.Lost, s.AnsweredTwice, s.LateReplies, s.Wrong, s.Errors =
		t.Calls, t.OK, t.NodeDown, t.Lost, t.AnsweredTwice, t.LateReplies, t.Wrong, t.Errors
}

// driven is a `snakepit serve -drive` node of the demo.
type driven struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan reply
	gossip  string
	done    chan struct{}
}

// demoClusterCommand defines demo-cluster's flags on fs and returns the
// command. It runs three nodes on this machine (this process and two
// `snakepit serve -drive` processes), each with a pool of its own; calls go
// from every node to every pool by name while one node is SIGKILLed, and
// every reply is counted. It then restarts the node and calls it again.
func demoClusterCommand(fs *pflag.FlagSet) func(ctx context.Context, out io.Writer, logger *slog.Logger) error {
	workers := fs.Int("workers", 2, "workers in each node's pool")
	conc := fs.Int("concurrency", 4, "calls in flight from each node")
	duration := fs.Duration("duration", 3*time.Second, "length of the run under the kill")
	ratioFor := fs.Duration("ratio-duration", 1500*time.Millisecond, "length of each local and remote throughput round")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	return func(ctx context.Context, out io.Writer, logger *slog.Logger) (err error) {
		say := func(format string, a ...any) {
			if !*asJSON {
				fmt.Fprintf(out, format+"\n", a...)
			}
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "snakepit-demo-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		secret, name := randomHex(32), "demo-"+randomHex(4)

		say("== snakepit demo-cluster: 3 nodes on this machine, cluster %s, %d workers per pool", name, *workers)
		app, err := snakepit.Start(ctx, snakepit.Config{
			Logger: logger, RemoteAddress: "127.0.0.1:0", Remote: snakepit.RemoteAuth{Secret: secret},
			DataDir: filepath.Join(dir, "node-a"), InstanceName: name + "-a",
			Pools: []snakepit.PoolConfig{{Name: "a", Size: *workers}},
			Cluster: snakepit.ClusterConfig{Name: name, NodeName: "node-a", Bind: "127.0.0.1:0",
				Timings: snakepit.ClusterLoopback, LoadInterval: 250 * time.Millisecond},
		})
		if err != nil {
			return err
		}
		defer app.Stop(context.Background())
		if err := app.AwaitReady(ctx); err != nil {
			return err
		}
		say("   node-a (this process): pool a, gossip %s", app.GossipAddress())

		var kids []*driven
		defer func() {
			for _, k := range kids {
				k.end()
			}
		}()
		start := func(node, pool string) (*driven, error) {
			k, err := startDriven(ctx, exe, dir, secret, name, node, pool, *workers, app.GossipAddress())
			if err != nil {
				return nil, err
			}
			kids = append(kids, k)
			say("   %s (pid %d): pool %s, gossip %s", node, k.cmd.Process.Pid, pool, k.gossip)
			return k, nil
		}
		b, err := start("node-b", "b")
		if err != nil {
			return err
		}
		c, err := start("node-c", "c")
		if err != nil {
			return err
		}
		all := []string{"a", "b", "c"}
		for _, k := range []*driven{b, c} {
			if _, err := k.ask(command{Op: "await", Pools: all}); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
		}
		if err := awaitPools(ctx, app, all, 30*time.Second); err != nil {
			return err
		}
		sum := clusterSummary{Nodes: 3, Workers: *workers, CPUs: runtime.NumCPU(), ByNode: map[string]map[string]loadgen.PoolCount{},
			Measured: time.Now().UTC().Format(time.RFC3339)}

		// Throughput: pool a on this node, then pool b (same size) on node-b,
		// each driven from here; two rounds each, alternating.
		say("\n-- throughput from node-a: local pool a vs remote pool b (%d in flight)", *conc)
		var localOK, remoteOK int64
		var localT, remoteT time.Duration
		for range 2 {
			for _, p := range []string{"a", "b"} {
				r, err := loadgen.Run(ctx, app, loadgen.Spec{Pools: []string{p}, Concurrency: *conc, DurationMS: int(ratioFor.Milliseconds())})
				if err != nil {
					return err
				}
				sum.total.Add(r)
				if p == "a" {
					localOK, localT = localOK+r.OK, localT+time.Duration(r.ElapsedMS)*time.Millisecond
				} else {
					remoteOK, remoteT = remoteOK+r.OK, remoteT+time.Duration(r.ElapsedMS)*time.Millisecond
				}
			}
		}
		sum.LocalPerSec = float64(localOK) / localT.Seconds()
		sum.RemotePerSec = float64(remoteOK) / remoteT.Seconds()
		sum.RemoteRatio = sum.RemotePerSec / sum.LocalPerSec
		say("   local %.0f calls/s, remote %.0f calls/s: remote_ratio %.2f", sum.LocalPerSec, sum.RemotePerSec, sum.RemoteRatio)

		// Every node calls every pool; node-c is SIGKILLed a third of the way in.
		say("\n-- every node calls pools a, b, c for %s; node-c is SIGKILLed after %s", *duration, *duration/3)
		spec := loadgen.Spec{Pools: all, Concurrency: *conc, DurationMS: int(duration.Milliseconds())}
		type outcome struct {
			node string
			rep  loadgen.Report
			err  error
		}
		results := make(chan outcome, 3)
		go func() {
			r, err := loadgen.Run(ctx, app, spec)
			results <- outcome{"node-a", r, err}
		}()
		for _, k := range []*driven{b, c} {
			go func() {
				r, err := k.ask(command{Op: "drive", Spec: spec})
				results <- outcome{k.name, r, err}
			}()
		}
		time.Sleep(*duration / 3)
		killed := time.Now()
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return err
		}
		first := int64(0)
		for range 3 {
			o := <-results
			if o.node == "node-c" {
				continue // it died with its calls
			}
			if o.err != nil {
				return fmt.Errorf("%s: %w", o.node, o.err)
			}
			sum.total.Add(o.rep)
			sum.ByNode[o.node] = o.rep.ByPool
			if f := o.rep.FirstNodeDownUnixNano; f != 0 && (first == 0 || f < first) {
				first = f
			}
			say("   %s: %d calls, %d ok, %d node_down, %d lost, %d answered twice", o.node, o.rep.Calls, o.rep.OK, o.rep.NodeDown, o.rep.Lost, o.rep.AnsweredTwice)
		}
		if first != 0 {
			sum.DetectMS = float64(time.Unix(0, first).Sub(killed).Microseconds()) / 1000
		}
		say("   kill → first node_down: %.1f ms", sum.DetectMS)

		// node-c again, under its name and data directory (whose leftovers its
		// start cleans up): both other nodes reach its pool.
		<-c.done
		if err := awaitGone(ctx, app, "c", 30*time.Second); err != nil {
			return err
		}
		sum.LeftMS = float64(time.Since(killed).Microseconds()) / 1000
		say("   node-c left the directory %.0f ms after the kill", sum.LeftMS)
		say("\n-- node-c restarted")
		if _, err := start("node-c", "c"); err != nil {
			return err
		}
		if err := awaitPools(ctx, app, all, 30*time.Second); err != nil {
			return err
		}
		if _, err := b.ask(command{Op: "await", Pools: all}); err != nil {
			return err
		}
		sum.Rejoined = true
		short := loadgen.Spec{Pools: []string{"c"}, Concurrency: 2, DurationMS: 500}
		ra, err := loadgen.Run(ctx, app, short)
		if err != nil {
			return err
		}
		rb, err := b.ask(command{Op: "drive", Spec: short})
		if err != nil {
			return err
		}
		for n, r := range map[string]loadgen.Report{"node-a": ra, "node-b": rb} {
			sum.total.Add(r)
			say("   %s → c: %d calls, %d ok", n, r.Calls, r.OK)
			if r.OK == 0 || r.OK != r.Calls {
				sum.Rejoined = false
			}
		}

		sum.totals()
		if *asJSON {
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			if err := enc.Encode(sum); err != nil {
				return err
			}
		} else {
			say("\n== calls: %d  ok: %d  node_down: %d  lost: %d  answered_twice: %d  detect_ms: %.1f  remote_ratio: %.2f  rejoined: %v",
				sum.Calls, sum.OK, sum.NodeDown, sum.Lost, sum.AnsweredTwice, sum.DetectMS, sum.RemoteRatio, sum.Rejoined)
			if len(sum.Errors) > 0 {
				say("   other errors: %v", sum.Errors)
			}
		}
		var problems []string
		if sum.Lost != 0 || sum.AnsweredTwice != 0 || sum.Wrong != 0 {
			problems = append(problems, "calls lost, answered twice or answered wrongly")
		}
		if sum.NodeDown == 0 || sum.DetectMS <= 0 || sum.DetectMS >= 1000 {
			problems = append(problems, "no node_down within a second of the kill")
		}
		if !sum.Rejoined {
			problems = append(problems, "the restarted node did not serve again")
		}
		if len(problems) > 0 {
			return errors.New("demo-cluster: " + strings.Join(problems, "; "))
		}
		return nil
	}
}

// startDriven starts `snakepit serve -drive` as a node of the cluster, in a
// process group of its own, and waits for its gossip line.
func startDriven(ctx context.Context, exe, dir, secret, cluster, node, pool string, workers int, join string) (*driven, error) {
	cmd := exec.CommandContext(ctx, exe, "serve", "-listen", "127.0.0.1:0", "-pool", pool, "-workers", fmt.Sprint(workers),
		"-cluster", cluster, "-gossip", "127.0.0.1:0", "-join", join, "-node", node, "-loopback-timings", "-drive")
	// The secret goes by environment, never on a command line.
	cmd.Env = append(os.Environ(), snakepit.EnvRemoteSecret+"="+secret, "SNAKEPIT_DATA_DIR="+filepath.Join(dir, node))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	k := &driven{name: node, cmd: cmd, stdin: stdin, replies: make(chan reply, 4), done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "{") {
				var r reply
				if json.Unmarshal([]byte(line), &r) == nil {
					k.replies <- r
				}
				continue
			}
			if f := strings.Fields(line); len(f) == 4 && f[0] == "cluster" {
				ready <- f[3]
			}
		}
		_ = cmd.Wait()
		close(k.done)
	}()
	select {
	case k.gossip = <-ready:
		return k, nil
	case <-k.done:
		return nil, fmt.Errorf("%s exited before it was ready", node)
	case <-time.After(90 * time.Second):
		k.end()
		return nil, fmt.Errorf("%s was not ready within 90s", node)
	}
}

// ask sends one command and waits for its reply.
func (k *driven) ask(c command) (loadgen.Report, error) {
	b, _ := json.Marshal(c)
	if _, err := k.stdin.Write(append(b, '\n')); err != nil {
		return loadgen.Report{}, err
	}
	select {
	case r := <-k.replies:
		if r.Error != "" {
			return loadgen.Report{}, errors.New(r.Error)
		}
		if r.Report != nil {
			return *r.Report, nil
		}
		return loadgen.Report{}, nil
	case <-k.done:
		return loadgen.Report{}, fmt.Errorf("%s exited", k.name)
	}
}

// end closes the node's input (it stops cleanly), then kills its process
// group if it is still there after a grace.
func (k *driven) end() {
	_ = k.stdin.Close()
	select {
	case <-k.done:
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
		<-k.done
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newDemoClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo-cluster",
		Short: "Three nodes on this machine, one SIGKILLed under load, every reply counted",
		Long: `demo-cluster runs three nodes (this process and two "snakepit serve -drive"), each with its own
pool: throughput to a local and to a remote pool of the same size, then calls from every node to
every pool by name while one node is SIGKILLed, every reply counted; the node restarted.`,
		Args: usageArgs(cobra.NoArgs),
	}
	run := demoClusterCommand(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cmd.OutOrStdout(), g.logger) }
	return cmd
}
