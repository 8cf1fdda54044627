package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// runServe starts a node: an App with protoactor remote enabled, whose
// pools actors on other nodes call by PID with the poolpb messages. It
// prints one line per pool,
//
//	pool NAME address HOST:PORT id PID-ID run RUN-ID
//
// (the id is the pool's stable one: the same after a restart), and serves
// until interrupted (SIGINT/SIGTERM), then stops cleanly. The
// nodes of a cluster share $SNAKEPIT_REMOTE_SECRET (required): a caller
// without it is refused.
func runServe(ctx context.Context, args []string, out io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "host:port other nodes reach this node at (port 0 picks one)")
	pool := fs.String("pool", snakepit.DefaultPool, "pool name")
	workers := fs.Int("workers", 2, "workers in the pool")
	adapter := fs.String("adapter", snakepit.DefaultAdapter, "Python adapter class")
	clusterName := fs.String("cluster", "", "join the cluster of this name (pools are then reached by name from every node)")
	gossip := fs.String("gossip", "", "the cluster's gossip host:port for this node (default: -listen's host, port 7946)")
	join := fs.String("join", "", "comma-separated gossip addresses of nodes to join through")
	nodeName := fs.String("node", "", "this node's name in the cluster (default hostname/instance)")
	loopback := fs.Bool("loopback-timings", false, "failure detection tuned for nodes on one machine (~1s instead of ~5s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := snakepit.Config{
		Logger: logger, RemoteAddress: *listen,
		Pools: []snakepit.PoolConfig{{Name: *pool, Size: *workers, Adapter: *adapter}},
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
	app, err := snakepit.Start(ctx, cfg)
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
	select {
	case <-ctx.Done():
	case <-app.Failed():
		return app.Err()
	}
	return nil
}
