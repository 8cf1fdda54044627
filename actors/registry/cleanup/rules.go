// Package cleanup ends the Python processes a host is responsible for: on
// start, what earlier runs of the same instance left behind (from the
// process registry, verified against the live process table) and, with the
// rogue sweep, marked processes the registry lost; on stop, every process
// of the current run still alive.
//
// The rules that decide what may be killed are pure functions of a process
// table snapshot (decideEntry, decideRogue), tested with a stubbed lister.
// The two promises they keep: a process is only killed when its command
// line carries an owned script, a run marker and this instance's token (so
// a reused pid or another deployment is never touched), and never while the
// host that started it is alive.
package cleanup

import (
	"time"

	"github.com/snakepit-go/snakepit/actors/registry/procreg"
	"github.com/snakepit-go/snakepit/internal/procs"
)

// Default owned scripts and run markers (upstream Snakepit's).
var (
	DefaultScripts    = []string{"grpc_server.py", "grpc_server_threaded.py"}
	DefaultRunMarkers = []string{"--snakepit-run-id", "--run-id"}
)

// Flags that carry the instance on a worker's command line.
const (
	FlagInstanceName  = "--snakepit-instance-name"
	FlagInstanceToken = "--snakepit-instance-token"
)

// Identity is who is cleaning: the current run (empty for a host that is
// gone, e.g. `snakepit cleanup`) and the instance.
type Identity struct {
	RunID         string
	InstanceName  string
	InstanceToken string
}

// Rules say what a process of ours looks like.
type Rules struct {
	Scripts    []string // owned script names (base names; DefaultScripts when empty)
	RunMarkers []string // flags whose value is a run id (DefaultRunMarkers when empty)
}

func (r Rules) withDefaults() Rules {
	if len(r.Scripts) == 0 {
		r.Scripts = DefaultScripts
	}
	if len(r.RunMarkers) == 0 {
		r.RunMarkers = DefaultRunMarkers
	}
	return r
}

// runID returns the run id the command line carries, if any.
func (r Rules) runID(argv []string) (string, bool) {
	for _, m := range r.RunMarkers {
		if v, ok := procs.FlagValue(argv, m); ok && v != "" {
			return v, true
		}
	}
	return "", false
}

// sameInstance: the command line carries this instance's token (a token is
// required: a process without one is never ours to kill), and its name when
// it carries one.
func sameInstance(argv []string, id Identity) bool {
	tok, ok := procs.FlagValue(argv, FlagInstanceToken)
	if !ok || tok == "" || tok != id.InstanceToken {
		return false
	}
	if name, ok := procs.FlagValue(argv, FlagInstanceName); ok && name != id.InstanceName {
		return false
	}
	return true
}

// Action is what cleanup does with a registry entry.
type Action int

// Actions.
const (
	Keep          Action = iota // belongs to a live host (or this run): untouched
	Forget                      // nothing of ours runs under it: drop the entry
	KillAndForget               // a verified orphan: end its group, drop the entry
)

// EntryDecision is the verdict on one registry entry.
type EntryDecision struct {
	Entry  procreg.Entry
	Action Action
	Reason string
	Target procs.Target
}

// hostStartSlack tolerates the host start time read twice (the kernel's
// boot time, which it is computed from, may move by a second).
const hostStartSlack = 2 * time.Second

// hostAlive reports whether the process pid with create time start (ms)
// still runs, per the snapshot.
func hostAlive(table map[int]procs.Proc, pid int, start int64) bool {
	p, ok := table[pid]
	if pid <= 0 || !ok || p.Zombie {
		return false
	}
	if start == 0 || p.CreateTime == 0 {
		return true // cannot tell a reused pid: assume alive (never kill a live host's worker)
	}
	d := p.CreateTime - start
	return d > -hostStartSlack.Milliseconds() && d < hostStartSlack.Milliseconds()
}

// decideEntry judges an entry of an earlier run against the process table.
func decideEntry(e procreg.Entry, table map[int]procs.Proc, id Identity, r Rules) EntryDecision {
	d := EntryDecision{Entry: e}
	switch {
	case id.RunID != "" && e.RunID == id.RunID:
		d.Action, d.Reason = Keep, "current run"
		return d
	case hostAlive(table, e.HostPID, e.HostStart):
		d.Action, d.Reason = Keep, "its host is alive"
		return d
	case e.OSPid <= 0:
		d.Action, d.Reason = Forget, "reserved, never spawned"
		return d
	}
	p, ok := table[e.OSPid]
	switch {
	case !ok || p.Zombie:
		d.Action, d.Reason = Forget, "process gone"
	case !procs.HasScript(p.Cmdline, entryScripts(e, r)):
		d.Action, d.Reason = Forget, "pid reused: not running its script"
	case !carriesRun(p.Cmdline, e.RunID, r):
		d.Action, d.Reason = Forget, "pid reused: another run id or none"
	case !sameInstance(p.Cmdline, id):
		d.Action, d.Reason = Forget, "pid reused: another instance"
	default:
		d.Action, d.Reason = KillAndForget, "orphan of a dead host"
		d.Target = entryTarget(p, e)
	}
	return d
}

// runsAs reports whether argv is a worker of run for this instance: one of
// scripts, the run marker with run, this instance's token.
func runsAs(argv, scripts []string, run string, id Identity, r Rules) bool {
	return procs.HasScript(argv, scripts) && carriesRun(argv, run, r) && sameInstance(argv, id)
}

// entryTarget ends a registered process, with its group while it still
// leads the group it was spawned in (the tool subprocesses go too).
func entryTarget(p procs.Proc, e procreg.Entry) procs.Target {
	t := procs.Target{PID: p.PID}
	if e.PGID > 1 && p.PGID == e.PGID {
		t.PGID = e.PGID
	}
	return t
}

// leaderTarget ends a process, with its group when it leads one.
func leaderTarget(p procs.Proc) procs.Target {
	t := procs.Target{PID: p.PID}
	if p.PGID == p.PID {
		t.PGID = p.PGID
	}
	return t
}

// entryScripts is the script an entry's process must run: the one it was
// launched with, else the owned ones.
func entryScripts(e procreg.Entry, r Rules) []string {
	if e.Script != "" {
		return []string{e.Script}
	}
	return r.Scripts
}

func carriesRun(argv []string, runID string, r Rules) bool {
	got, ok := r.runID(argv)
	return ok && got == runID
}

// decideRogue judges a process found in the table (not via the registry).
// It is killed only if it runs an owned script, carries a run marker with
// another run id and this instance's token, that run's host is not alive,
// and the process is an orphan (its parent is gone or init).
func decideRogue(p procs.Proc, table map[int]procs.Proc, id Identity, r Rules, liveRuns map[string]bool, self int) (bool, string) {
	if p.Zombie || p.PID == self || p.PPID == self {
		return false, "ours or gone"
	}
	if !procs.HasScript(p.Cmdline, r.Scripts) {
		return false, "no owned script"
	}
	run, ok := r.runID(p.Cmdline)
	if !ok {
		return false, "no run marker"
	}
	if !sameInstance(p.Cmdline, id) {
		return false, "another instance"
	}
	if run == id.RunID {
		return false, "current run"
	}
	if liveRuns[run] {
		return false, "its run's host is alive"
	}
	if !orphan(p, table) {
		return false, "its parent is alive"
	}
	return true, "orphan of run " + run
}

// orphan: the process's parent is gone (or is init).
func orphan(p procs.Proc, table map[int]procs.Proc) bool {
	parent, ok := table[p.PPID]
	return p.PPID <= 1 || !ok || parent.Zombie
}

// Environment markers a worker carries and hands down to what its tools
// start (worker.EnvRunID and friends).
const (
	EnvRunID         = "SNAKEPIT_RUN_ID"
	EnvInstanceName  = "SNAKEPIT_INSTANCE_NAME"
	EnvInstanceToken = "SNAKEPIT_INSTANCE_TOKEN"
)

// envRun returns the run a process's environment marks it with, when the
// markers are this instance's (token required, and the name if present).
func envRun(env []string, id Identity) (string, bool) {
	tok, ok := procs.EnvValue(env, EnvInstanceToken)
	if !ok || tok == "" || tok != id.InstanceToken {
		return "", false
	}
	if name, ok := procs.EnvValue(env, EnvInstanceName); ok && name != id.InstanceName {
		return "", false
	}
	run, ok := procs.EnvValue(env, EnvRunID)
	return run, ok && run != ""
}

// decideDescendant judges an orphan by its environment: a process one of
// our workers' tools started (it inherited the markers) whose run is over.
// It catches what left the worker's process group and has no owned script
// on its command line.
func decideDescendant(env []string, id Identity, liveRuns map[string]bool) (bool, string) {
	run, ok := envRun(env, id)
	switch {
	case !ok:
		return false, "no markers of this instance"
	case run == id.RunID:
		return false, "current run"
	case liveRuns[run]:
		return false, "its run's host is alive"
	}
	return true, "left behind by run " + run
}
