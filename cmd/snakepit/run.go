package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
	"github.com/snakepit-go/snakepit/apps/snakepit/configfile"
)

func newRunCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run -config FILE",
		Short: "A host serving the pools of a config file, with its admin endpoint (and metrics when the file turns them on)",
		Long: `run starts a host from a YAML config file (see examples/snakepit.yaml and README_OPERATIONS.md):
its pools, the admin endpoint "snakepit status" reads, and the Prometheus /metrics endpoint when
the file enables it. It serves until interrupted (SIGINT or SIGTERM), then stops every worker.
-python, -pythonpath and -priv-dir override the file; -log-level does when given.`,
		Args: usageArgs(cobra.NoArgs),
	}
	path := cmd.Flags().String("config", "snakepit.yaml", "the config file")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		f, err := configfile.Load(*path)
		if err != nil {
			return err
		}
		if !cmd.Flags().Changed("log-level") && os.Getenv("SNAKEPIT_LOG") == "" {
			level, _ := f.Level()
			g.logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
		}
		return runHost(cmd.Context(), g, f, cmd.OutOrStdout())
	}
	return cmd
}

// runHost serves the file's pools until ctx ends.
func runHost(ctx context.Context, g *globals, f *configfile.File, out io.Writer) (err error) {
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	cfg = g.apply(cfg)
	var promHandler http.Handler
	if f.Metrics.Enabled {
		mp, h, err := admin.NewMeterProvider()
		if err != nil {
			return err
		}
		defer mp.Shutdown(context.Background())
		cfg.MeterProvider, promHandler = mp, h
	}
	start := time.Now()
	app, err := snakepit.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = errors.Join(err, app.Stop(ctx))
	}()
	if !f.Admin.Disabled {
		adm, err := admin.Serve(app, admin.Options{Address: f.Admin.Address, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		defer adm.Close(context.Background())
		fmt.Fprintf(out, "admin    http://%s (its token in %s; snakepit status reads it)\n", adm.Address(),
			filepath.Join(app.InstanceDir(), admin.EndpointFile))
	}
	if promHandler != nil {
		ms, err := admin.ServeMetrics(app.InstanceDir(), promHandler, admin.MetricsOptions{
			Address: f.Metrics.Address, AllowRemote: f.Metrics.AllowRemote, NoAuth: f.Metrics.NoAuth, Logger: cfg.Logger})
		if err != nil {
			return err
		}
		defer ms.Close(context.Background())
		fmt.Fprintf(out, "metrics  http://%s/metrics", ms.Address())
		if tf := ms.TokenFile(); tf != "" {
			fmt.Fprintf(out, " (bearer token in %s)", tf)
		}
		fmt.Fprintln(out)
	}
	endBar := poolProgress(ctx, app, g.stderr)
	err = app.AwaitInitComplete(ctx)
	endBar()
	if err != nil && ctx.Err() == nil {
		return err
	}
	for _, p := range app.Pools() {
		if st, err := app.Stats(ctx, p); err == nil {
			fmt.Fprintf(out, "pool     %s: %d/%d workers ready", p, st.Ready, st.Workers)
			if cfg.RemoteAddress != "" {
				fmt.Fprintf(out, "; other nodes reach it at %s id %s", app.Address(), app.PoolID(p))
			}
			fmt.Fprintln(out)
		}
	}
	if cfg.Cluster.Name != "" {
		fmt.Fprintf(out, "cluster  %s as %s, gossip %s\n", cfg.Cluster.Name, cfg.Cluster.NodeName, app.GossipAddress())
	}
	fmt.Fprintf(out, "serving  instance %s, run %s, ready in %s; Ctrl-C stops\n", app.Instance(), app.RunID(),
		time.Since(start).Round(time.Millisecond))
	select {
	case <-ctx.Done():
		return nil
	case <-app.Failed():
		return app.Err()
	}
}
