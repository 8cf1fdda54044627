package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snakepit-go/snakepit/actors/registry/cleanup"
	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/instance"
	"github.com/snakepit-go/snakepit/internal/rundir"
	"github.com/snakepit-go/snakepit/internal/shm"
)

// cleanupCommand defines cleanup's flags on fl and returns the command. It ends what a dead host of an instance left behind: processes in
// its process registry whose host is gone (verified against their command
// lines) and, unless -rogue=false, orphaned processes carrying the
// instance's token and a run marker. Processes of live hosts are never
// touched.
func cleanupCommand(fl *pflag.FlagSet) func(ctx context.Context, stdout io.Writer, logger *slog.Logger) error {
	inst := addInstanceFlags(fl, "")
	token := fl.String("token", "", "instance token (default $SNAKEPIT_INSTANCE_TOKEN, else the instance's token file)")
	rogue := fl.Bool("rogue", true, "also sweep orphans that are not in the registry")
	grace := fl.Duration("grace", 2*time.Second, "SIGTERM to SIGKILL")
	dry := fl.Bool("dry-run", false, "report what would be ended, end nothing")
	return func(ctx context.Context, stdout io.Writer, logger *slog.Logger) error {
		name, dir, err := inst.locate()
		if err != nil {
			return err
		}
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("no instance %q in %s", name, filepath.Dir(dir))
		}
		if *token == "" {
			*token = os.Getenv(instance.EnvToken)
		}
		if *token == "" {
			t, err := instance.ReadToken(dir)
			if err != nil {
				return fmt.Errorf("instance %q has no token file; pass -token: %w", name, err)
			}
			*token = t
		}
		opts := cleanup.Options{
			Identity: cleanup.Identity{InstanceName: name, InstanceToken: *token},
			Rogue:    *rogue, Grace: *grace, DryRun: *dry, Logger: logger,
		}
		db := filepath.Join(dir, "processes.db")
		if _, err := os.Stat(db); err == nil {
			store, _, err := procreg.OpenStore(db, logger)
			if err != nil {
				return err
			}
			opts.Registry = procreg.Direct{Store: store}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		rep, err := cleanup.Orphans(ctx, opts)
		verb := "ended"
		if *dry {
			verb = "would end"
		}
		for _, k := range rep.Killed {
			fmt.Fprintf(stdout, "%s pid %d (pgid %d, run %s, worker %s): %s", verb, k.PID, k.PGID, k.RunID, k.WorkerID, k.Reason)
			if !*dry {
				fmt.Fprintf(stdout, " → %s", k.Outcome)
			}
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "instance %s: %s\n", name, rep)
		if err != nil {
			return err
		}
		if !*dry {
			// The temp directories (worker sockets, ready files) and the
			// shared-memory directories (segments) of runs whose host is gone.
			bases := []string{""}
			if b := shm.Base(); b != "" {
				bases = append(bases, b)
			}
			for _, base := range bases {
				dirs, err := rundir.Sweep(base, name, "", rundir.HostAlive(ctx))
				for _, d := range dirs {
					fmt.Fprintf(stdout, "removed %s\n", d)
				}
				if err != nil {
					return err
				}
			}
		}
		if s := rep.Survivors(); len(s) > 0 && !*dry {
			return fmt.Errorf("%d processes survived SIGKILL", len(s))
		}
		return nil
	}
}

func newCleanupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "End what a dead host of an instance left behind (processes, temp files, shared memory)",
		Long: `cleanup ends the processes a dead host of an instance left behind: those in its process
registry whose host is gone (verified against their command lines) and, unless -rogue=false,
orphans carrying the instance's token and a run marker. Processes of live hosts are never touched.
-dry-run reports what the real run would end.`,
		Args: usageArgs(cobra.NoArgs),
	}
	run := cleanupCommand(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return run(cmd.Context(), cmd.OutOrStdout(), g.logger) }
	return cmd
}
