package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/loadgen"
)

// serveCommand defines serve's flags on fs and returns the command. It
// starts a node: an App with protoactor remote enabled, whose
// pools actors on other nodes call by PID with the poolpb messages. It
// prints one line per pool,
//
//	pool NAME address HOST:PORT id PID-ID run RUN-ID
//
// (the id is the pool's stable one: the same after a restart), and serves
// until interrupted (SIGINT/SIGTERM), then stops cleanly. The
// nodes of a cluster share $SNAKEPIT_REMOTE_SECRET (required): a caller
// without it is refused.
func serveCommand(fs *pflag.FlagSet) func(ctx context.Context, g *globals, in io.Reader, out io.Writer) error {
	listen := fs.String("listen", "127.0.0.1:0", "host:port other nodes reach this node at (port 0 picks one)")
	pool := fs.String("pool", snakepit.DefaultPool, "pool name")
	workers := fs.Int("workers", 2, "workers in the pool")
	adapter := fs.String("adapter", snakepit.DefaultAdapter, "Python adapter class")
	clusterName := fs.String("cluster", "", "join the cluster of this name (pools are then reached by name from every node)")
	gossip := fs.String("gossip", "", "the cluster's gossip host:port for this node (default: -listen's host, port 7946)")
	join := fs.String("join", "", "comma-separated gossip addresses of nodes to join through")
	nodeName := fs.String("node", "", "this node's name in the cluster (default hostname/instance)")
	loopback := fs.Bool("loopback-timings", false, "failure detection tuned for nodes on one machine (~1s instead of ~5s)")
	drive := fs.Bool("drive", false, "take load commands as JSON lines on stdin and answer each with a JSON line (demo-cluster's nodes); stop at end of input")
	return func(ctx context.Context, g *globals, in io.Reader, out io.Writer) error {
		cfg := snakepit.Config{
			RemoteAddress: *listen,
			Pools:         []snakepit.PoolConfig{{Name: *pool, Size: *workers, Adapter: *adapter}},
		}
		if *clusterName != "" {
			cfg.Cluster = snakepit.ClusterConfig{Name: *clusterName, Bind: *gossip, NodeName: *nodeName}
			if *join != "" {
				cfg.Cluster.Seeds = strings.Split(*join, ",")
			}
			if *loopback {
				cfg.Cluster.Timings = snakepit.ClusterLoopback
				cfg.Cluster.LoadInterval = 250 * time.Millisecond
			}
		}
		app, err := snakepit.Start(ctx, g.apply(cfg))
		if err != nil {
			return err
		}
		defer app.Stop(context.Background())
		if err := app.AwaitReady(ctx); err != nil {
			return err
		}
		for _, name := range app.Pools() {
			pid := app.Pool(name)
			fmt.Fprintf(out, "pool %s address %s id %s run %s\n", name, pid.GetAddress(), app.PoolID(name), app.RunID())
		}
		if g := app.GossipAddress(); g != "" {
			fmt.Fprintf(out, "cluster %s gossip %s\n", *clusterName, g)
		}
		var commandsDone <-chan struct{}
		if *drive {
			commandsDone = serveCommands(ctx, app, in, out)
		}
		select {
		case <-ctx.Done():
		case <-commandsDone:
		case <-app.Failed():
			return app.Err()
		}
		return nil
	}
}

// command is one line of `serve -drive`'s input.
type command struct {
	// Op is "await" (wait until Pools are known here or on another node)
	// or "drive" (run Spec and report).
	Op        string       `json:"op"`
	Pools     []string     `json:"pools,omitempty"`
	TimeoutMS int          `json:"timeout_ms,omitempty"`
	Spec      loadgen.Spec `json:"spec"`
}

// reply is one line of `serve -drive`'s output.
type reply struct {
	Op     string          `json:"op"`
	Error  string          `json:"error,omitempty"`
	Report *loadgen.Report `json:"report,omitempty"`
}

// serveCommands runs the commands on in, one at a time, writing a reply
// line for each; the returned channel closes at the end of in.
func serveCommands(ctx context.Context, app *snakepit.App, in io.Reader, out io.Writer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc := json.NewEncoder(out)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			var c command
			r := reply{}
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				r.Error = "bad command: " + err.Error()
				_ = enc.Encode(r)
				continue
			}
			r.Op = c.Op
			switch c.Op {
			case "await":
				if err := awaitPools(ctx, app, c.Pools, time.Duration(cmp.Or(c.TimeoutMS, 30000))*time.Millisecond); err != nil {
					r.Error = err.Error()
				}
			case "drive":
				rep, err := loadgen.Run(ctx, app, c.Spec)
				if err != nil {
					r.Error = err.Error()
				} else {
					r.Report = &rep
				}
			default:
				r.Error = fmt.Sprintf("unknown op %q", c.Op)
			}
			_ = enc.Encode(r)
		}
	}()
	return done
}

// knownPools is every pool name this node has or its directory shows.
func knownPools(app *snakepit.App) map[string]bool {
	known := map[string]bool{}
	for _, p := range app.Pools() {
		known[p] = true
	}
	for _, n := range app.Nodes() {
		for _, p := range n.Pools {
			known[p.Name] = true
		}
	}
	return known
}

// awaitPools waits until every pool is this node's or in the directory.
func awaitPools(ctx context.Context, app *snakepit.App, pools []string, limit time.Duration) error {
	return waitFor(ctx, limit, func() error {
		known := knownPools(app)
		var missing []string
		for _, p := range pools {
			if !known[p] {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("pools %v not known", missing)
		}
		return nil
	})
}

// awaitGone waits until no node advertises pool (its node left).
func awaitGone(ctx context.Context, app *snakepit.App, pool string, limit time.Duration) error {
	return waitFor(ctx, limit, func() error {
		if knownPools(app)[pool] {
			return fmt.Errorf("pool %s still in the directory", pool)
		}
		return nil
	})
}

// waitFor polls check until it returns nil, or returns its last error
// after limit.
func waitFor(ctx context.Context, limit time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w after %s", err, limit)
		case <-tick.C:
		}
	}
}

func newServeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "A node whose pool other nodes call by name (-cluster) or by PID",
		Long: `serve starts a node: a pool with protoactor remote enabled, which actors on other nodes
call by PID, or by name when the node joins a cluster (-cluster). It prints one line per pool
(pool NAME address HOST:PORT id PID-ID run RUN-ID) and serves until interrupted.
The nodes of a cluster share $SNAKEPIT_REMOTE_SECRET (required).`,
		Args: usageArgs(cobra.NoArgs),
	}
	run := serveCommand(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return run(cmd.Context(), g, cmd.InOrStdin(), cmd.OutOrStdout())
	}
	return cmd
}
