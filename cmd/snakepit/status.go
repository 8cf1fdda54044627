package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
	"github.com/snakepit-go/snakepit/internal/instance"
)

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "A running host's pools and workers: state, pid, uptime, requests, memory, queue, errors, recycles",
		Long: `status asks a running host (snakepit run, or a program serving admin.Serve) for its pools and
workers over its local admin endpoint, found with its token in the instance directory
(<data dir>/<instance>/admin.json, readable only by the user running the host).`,
		Args: usageArgs(cobra.NoArgs),
	}
	fs := cmd.Flags()
	inst := addInstanceFlags(fs, "")
	asJSON := fs.Bool("json", false, "print the status as one JSON object")
	watch := fs.Bool("watch", false, "refresh every -interval until interrupted")
	interval := fs.Duration("interval", 2*time.Second, "refresh interval with -watch")
	pageURL := fs.Bool("page", false, "print the address of the live status page (it carries the token: open it in your own browser only)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *interval <= 0 {
			return usageError{fmt.Errorf("-interval must be positive")}
		}
		dir, err := inst.dir()
		if err != nil {
			return err
		}
		if *pageURL {
			ep, err := admin.ReadEndpoint(dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ep.PageURL())
			return nil
		}
		return runStatus(cmd.Context(), dir, *asJSON, *watch, *interval, cmd.OutOrStdout())
	}
	return cmd
}

func runStatus(ctx context.Context, dir string, asJSON, watch bool, interval time.Duration, out io.Writer) error {
	for {
		ep, err := admin.ReadEndpoint(dir)
		if err != nil {
			return err
		}
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		st, err := admin.Fetch(fctx, ep)
		cancel()
		if err != nil {
			if watch && ctx.Err() != nil {
				return nil // interrupted while watching: done
			}
			return err
		}
		if watch && !asJSON {
			if isTerminal(out) {
				fmt.Fprint(out, "\033[H\033[2J") // home, clear screen
			} else {
				fmt.Fprintf(out, "--- %s\n", time.Now().Format(time.TimeOnly))
			}
		}
		if asJSON {
			enc := json.NewEncoder(out)
			if !watch {
				enc.SetIndent("", "  ")
			}
			if err := enc.Encode(st); err != nil {
				return err
			}
		} else {
			printStatus(out, st)
		}
		if !watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// printStatus writes st as tables: one line per pool, one per worker.
func printStatus(out io.Writer, st *admin.Status) {
	fmt.Fprintf(out, "instance %s  run %s  pid %d  up %s  snakepit %s  sessions %d\n\n", st.Instance, st.RunID, st.PID,
		(time.Duration(st.UptimeSeconds) * time.Second).String(), st.Version, st.Sessions.Active)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POOL\tSTATE\tCIRCUIT\tREADY\tBUSY\tQUEUED\tIN-FLIGHT\tREQUESTS\tERRORS\tRESTARTS\tRECYCLED")
	for _, p := range st.Pools {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", p.Pool, p.State, p.Circuit, p.Ready, p.Workers,
			p.Busy, p.Queued, p.InFlight, p.Requests, p.Errors, p.WorkerRestarts, p.Recycled)
	}
	tw.Flush()
	if len(st.RecentErrors) > 0 {
		fmt.Fprintf(out, "\nrecent errors (%d, newest first)\n", len(st.RecentErrors))
		for _, e := range st.RecentErrors[:min(5, len(st.RecentErrors))] {
			fmt.Fprintf(out, "  %s  %s %s  %s: %s\n", e.At.Format(time.TimeOnly), e.Pool, e.Tool, e.Code, e.Message)
		}
	}
	if len(st.RecentEvents) > 0 {
		fmt.Fprintf(out, "\nrecent events (%d, newest first)\n", len(st.RecentEvents))
		for _, e := range st.RecentEvents[:min(5, len(st.RecentEvents))] {
			fmt.Fprintf(out, "  %s  %-8s %s %s  %s\n", e.At.Format(time.TimeOnly), e.Kind, e.Pool, e.WorkerID, e.Detail)
		}
	}
	for _, p := range st.Pools {
		fmt.Fprintf(out, "\npool %s\n", p.Pool)
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKER\tSTATE\tPID\tUPTIME\tREQUESTS\tIN-FLIGHT\tRSS")
		for _, w := range p.WorkerList {
			pid, up, rss := "-", "-", "-"
			if w.OSPid > 0 {
				pid = fmt.Sprint(w.OSPid)
			}
			if u := w.Uptime(st.TakenAt); u > 0 {
				up = u.Round(time.Second).String()
			}
			if w.RSSBytes > 0 {
				rss = fmt.Sprintf("%.1f MiB", float64(w.RSSBytes)/(1<<20))
			}
			state := w.State
			if w.Tainted {
				state += " (tainted)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", w.ID, state, pid, up, w.Requests, w.InFlight, rss)
		}
		tw.Flush()
	}
}

// instanceFlags are -instance and -data-dir, which name an instance a host
// made.
type instanceFlags struct{ name, dataDir *string }

// addInstanceFlags defines them on fs; when is prepended to their help
// ("with -host: ").
func addInstanceFlags(fs *pflag.FlagSet, when string) instanceFlags {
	return instanceFlags{
		name:    fs.String("instance", "", when+"instance name (default $SNAKEPIT_INSTANCE_NAME, else default)"),
		dataDir: fs.String("data-dir", "", when+"data directory (default $SNAKEPIT_DATA_DIR, else ~/.local/state/snakepit)"),
	}
}

// dir is the instance's directory.
func (f instanceFlags) dir() (string, error) {
	_, dir, err := f.locate()
	return dir, err
}

// locate is the instance's name and directory; a bad name is a usage error.
func (f instanceFlags) locate() (string, string, error) {
	name, dir, err := instance.Locate(*f.dataDir, *f.name)
	if err != nil {
		return "", "", usageError{err}
	}
	return name, dir, nil
}
