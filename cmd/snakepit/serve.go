package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// runServe starts a node: an App with protoactor remote enabled, whose
// pools actors on other nodes call by PID with the poolpb messages. It
// prints one line per pool,
//
//	pool NAME address HOST:PORT id PID-ID run RUN-ID
//
// and serves until interrupted (SIGINT/SIGTERM), then stops cleanly. The
// nodes of a cluster share $SNAKEPIT_REMOTE_SECRET (required): a caller
// without it is refused.
func runServe(ctx context.Context, args []string, out io.Writer, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "host:port other nodes reach this node at (port 0 picks one)")
	pool := fs.String("pool", snakepit.DefaultPool, "pool name")
	workers := fs.Int("workers", 2, "workers in the pool")
	adapter := fs.String("adapter", snakepit.DefaultAdapter, "Python adapter class")
	if err := fs.Parse(args); err != nil {
		return err
	}
	app, err := snakepit.Start(ctx, snakepit.Config{
		Logger: logger, RemoteAddress: *listen,
		Pools: []snakepit.PoolConfig{{Name: *pool, Size: *workers, Adapter: *adapter}},
	})
	if err != nil {
		return err
	}
	defer app.Stop(context.Background())
	if err := app.AwaitReady(ctx); err != nil {
		return err
	}
	for _, name := range app.Pools() {
		pid := app.Pool(name)
		fmt.Fprintf(out, "pool %s address %s id %s run %s\n", name, pid.GetAddress(), pid.GetId(), app.RunID())
	}
	select {
	case <-ctx.Done():
	case <-app.Failed():
		return app.Err()
	}
	return nil
}
