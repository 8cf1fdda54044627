package cleanup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/procs"
)

// Registry is the process registry as cleanup uses it: the actor's Client
// inside an App, procreg.Direct for a host that is gone.
type Registry interface {
	Read(ctx context.Context) (procreg.Snapshot, error)
	Forget(ctx context.Context, keys, runs []string) error
}

// Options configure one cleanup pass.
type Options struct {
	Identity Identity
	Rules    Rules
	// Rogue enables the rogue sweep (Orphans only).
	Rogue bool
	// Registry may be nil: then only the process table is used.
	Registry Registry
	Lister   procs.Lister // procs.System when nil
	Killer   procs.Killer // procs.SystemKiller when nil
	// Grace is SIGTERM to SIGKILL per process (default 2s).
	Grace time.Duration
	// DryRun decides and reports but kills nothing and changes no entry
	// (the report's outcomes are then Gone).
	DryRun bool
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.Rules = o.Rules.withDefaults()
	if o.Lister == nil {
		o.Lister = procs.System
	}
	if o.Killer == nil {
		o.Killer = procs.SystemKiller
	}
	if o.Grace <= 0 {
		o.Grace = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Killed is one process cleanup ended (or tried to).
type Killed struct {
	PID, PGID int
	RunID     string
	WorkerID  string // when it came from the registry
	Reason    string
	Outcome   procs.Outcome
	Err       error
}

// Report says what a cleanup pass did.
type Report struct {
	Killed    []Killed
	Forgotten int // registry entries dropped
	Kept      int // registry entries of live hosts, left alone
	Took      time.Duration
	// DryRun: nothing was ended or dropped; Killed and Forgotten are what
	// the real run would end and drop.
	DryRun bool
}

// Survivors are the processes still alive after SIGKILL.
func (r Report) Survivors() []Killed {
	var out []Killed
	for _, k := range r.Killed {
		if k.Outcome == procs.Survived || k.Err != nil {
			out = append(out, k)
		}
	}
	return out
}

// String is a one-line summary.
func (r Report) String() string {
	if r.DryRun {
		return fmt.Sprintf("%d would be killed, %d entries would be forgotten, %d kept (dry run), in %s",
			len(r.Killed), r.Forgotten, r.Kept, r.Took.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d killed, %d survivors, %d entries forgotten, %d kept, in %s",
		len(r.Killed), len(r.Survivors()), r.Forgotten, r.Kept, r.Took.Round(time.Millisecond))
}

// Orphans cleans up after earlier runs of this instance: registry entries
// whose host is dead (their processes killed when still ours, else just
// forgotten), dead runs forgotten, then — when Rogue is set — the rogue
// sweep over the whole process table.
func Orphans(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	start := time.Now()
	rep := Report{DryRun: o.DryRun}
	table, err := snapshot(ctx, o.Lister)
	if err != nil {
		return rep, err
	}
	var errs []error
	liveRuns := map[string]bool{}
	if o.Registry != nil {
		snap, err := o.Registry.Read(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("read the process registry: %w", err))
		}
		var forget []string
		var targets []Killed
		liveEntries := map[string]bool{}
		for _, e := range snap.Entries {
			d := decideEntry(e, table, o.Identity, o.Rules)
			switch d.Action {
			case Keep:
				rep.Kept++
				liveEntries[e.RunID] = true
			case Forget:
				forget = append(forget, e.Key)
			case KillAndForget:
				forget = append(forget, e.Key)
				targets = append(targets, killed(d.Target, e.RunID, e.WorkerID, d.Reason))
			}
		}
		rep.Killed = append(rep.Killed, kill(ctx, o, targets)...)
		var runs []string
		for _, r := range snap.Runs {
			switch {
			case r.RunID == o.Identity.RunID:
			case hostAlive(table, r.HostPID, r.HostStart):
				liveRuns[r.RunID] = true
			case !liveEntries[r.RunID]:
				runs = append(runs, r.RunID)
			}
		}
		switch {
		case o.DryRun:
			rep.Forgotten = len(forget)
			// The sweep judges the table as the kills above would leave it,
			// so a dry run counts what the real run does, each process once.
			table = withoutTargets(table, targets)
		case len(forget) > 0 || len(runs) > 0:
			if err := o.Registry.Forget(ctx, forget, runs); err != nil {
				errs = append(errs, fmt.Errorf("forget entries: %w", err))
			} else {
				rep.Forgotten = len(forget)
			}
		}
		if len(targets) > 0 && !o.DryRun {
			// The sweep judges the table as it is now.
			if table, err = snapshot(ctx, o.Lister); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if o.Rogue && table != nil {
		self := os.Getpid()
		var targets []Killed
		for _, p := range sortedProcs(table) {
			if ok, why := decideRogue(p, table, o.Identity, o.Rules, liveRuns, self); ok {
				run, _ := o.Rules.runID(p.Cmdline)
				targets = append(targets, killed(leaderTarget(p), run, "", "rogue: "+why))
			}
		}
		// What a dead run's tools started and left behind.
		skip := func(p procs.Proc) bool { return p.PPID == self || procs.HasScript(p.Cmdline, o.Rules.Scripts) }
		forOrphanEnvs(ctx, o, table, skip, func(p procs.Proc, env []string) {
			if ok, why := decideDescendant(env, o.Identity, liveRuns); ok {
				run, _ := envRun(env, o.Identity)
				targets = append(targets, killed(procs.Target{PID: p.PID}, run, "", "descendant: "+why))
			}
		})
		rep.Killed = append(rep.Killed, kill(ctx, o, targets)...)
	}
	rep.Took = time.Since(start)
	logReport(o.Logger, "cleanup of earlier runs", rep)
	return rep, errors.Join(errs...)
}

// CurrentRun ends every process of the current run still alive — from the
// registry and from the process table (the run marker with this run id and
// this instance's token) — then forgets the run. Run it after the workers
// stopped: normally it finds nothing.
func CurrentRun(ctx context.Context, o Options) (Report, error) {
	o = o.withDefaults()
	start := time.Now()
	var rep Report
	if o.Identity.RunID == "" {
		return rep, errors.New("cleanup: no current run")
	}
	table, err := snapshot(ctx, o.Lister)
	if err != nil {
		return rep, err
	}
	var errs []error
	targets := map[int]Killed{}
	if o.Registry != nil {
		snap, err := o.Registry.Read(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("read the process registry: %w", err))
		}
		for _, e := range snap.Entries {
			if e.RunID != o.Identity.RunID || e.OSPid <= 0 {
				continue
			}
			if p, ok := table[e.OSPid]; ok && !p.Zombie && runsAs(p.Cmdline, entryScripts(e, o.Rules), e.RunID, o.Identity, o.Rules) {
				targets[p.PID] = killed(entryTarget(p, e), e.RunID, e.WorkerID, "still alive at stop")
			}
		}
	}
	for _, p := range sortedProcs(table) {
		if _, seen := targets[p.PID]; !seen && !p.Zombie && runsAs(p.Cmdline, o.Rules.Scripts, o.Identity.RunID, o.Identity, o.Rules) {
			targets[p.PID] = killed(leaderTarget(p), o.Identity.RunID, "", "still alive at stop (unregistered)")
		}
	}
	// Orphans this run's tools left (they carry the run's markers in their
	// environment, e.g. a daemon that started its own session).
	skip := func(p procs.Proc) bool { _, seen := targets[p.PID]; return seen }
	forOrphanEnvs(ctx, o, table, skip, func(p procs.Proc, env []string) {
		if run, ok := envRun(env, o.Identity); ok && run == o.Identity.RunID {
			targets[p.PID] = killed(procs.Target{PID: p.PID}, run, "", "left behind by a tool of this run")
		}
	})
	list := make([]Killed, 0, len(targets))
	for _, t := range targets {
		list = append(list, t)
	}
	rep.Killed = kill(ctx, o, list)
	if o.Registry != nil && !o.DryRun {
		if err := o.Registry.Forget(ctx, nil, []string{o.Identity.RunID}); err != nil {
			errs = append(errs, fmt.Errorf("forget the run: %w", err))
		}
	}
	rep.Took = time.Since(start)
	logReport(o.Logger, "cleanup of the current run", rep)
	return rep, errors.Join(errs...)
}

// withoutTargets is table less what killing targets ends: each target's
// process and, for a group target, its group.
func withoutTargets(table map[int]procs.Proc, targets []Killed) map[int]procs.Proc {
	if len(targets) == 0 {
		return table
	}
	out := make(map[int]procs.Proc, len(table))
	for pid, p := range table {
		gone := false
		for _, t := range targets {
			if p.PID == t.PID || t.PGID != 0 && p.PGID == t.PGID {
				gone = true
				break
			}
		}
		if !gone {
			out[pid] = p
		}
	}
	return out
}

// killed is a target not yet ended.
func killed(t procs.Target, run, worker, reason string) Killed {
	return Killed{PID: t.PID, PGID: t.PGID, RunID: run, WorkerID: worker, Reason: reason}
}

// forOrphanEnvs calls fn with the environment of each live orphan of the
// table (not this process, not skipped, environment readable). Only
// orphans are read: a process whose parent lives belongs to that parent.
func forOrphanEnvs(ctx context.Context, o Options, table map[int]procs.Proc, skip func(procs.Proc) bool, fn func(procs.Proc, []string)) {
	self := os.Getpid()
	for _, p := range sortedProcs(table) {
		if p.Zombie || p.PID == self || skip(p) || !orphan(p, table) {
			continue
		}
		if env, err := o.Lister.Environ(ctx, p.PID); err == nil {
			fn(p, env)
		}
	}
}

// kill ends the targets in parallel, each with escalation.
func kill(ctx context.Context, o Options, targets []Killed) []Killed {
	if o.DryRun {
		return targets
	}
	var wg sync.WaitGroup
	for i := range targets {
		wg.Add(1)
		go func(t *Killed) {
			defer wg.Done()
			t.Outcome, t.Err = o.Killer.Terminate(ctx, procs.Target{PID: t.PID, PGID: t.PGID}, o.Grace)
		}(&targets[i])
	}
	wg.Wait()
	sort.Slice(targets, func(i, j int) bool { return targets[i].PID < targets[j].PID })
	return targets
}

func snapshot(ctx context.Context, l procs.Lister) (map[int]procs.Proc, error) {
	list, err := l.Processes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	table := make(map[int]procs.Proc, len(list))
	for _, p := range list {
		table[p.PID] = p
	}
	return table, nil
}

func sortedProcs(table map[int]procs.Proc) []procs.Proc {
	out := make([]procs.Proc, 0, len(table))
	for _, p := range table {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

func logReport(log *slog.Logger, what string, r Report) {
	for _, k := range r.Killed {
		log.Warn(what+": ended a process", "os_pid", k.PID, "pgid", k.PGID, "run_id", k.RunID,
			"worker", k.WorkerID, "reason", k.Reason, "outcome", k.Outcome.String(), "error", k.Err)
	}
	if len(r.Killed) > 0 || r.Forgotten > 0 {
		log.Info(what, "summary", r.String())
	}
}
