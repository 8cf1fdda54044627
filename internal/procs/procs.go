// Package procs is the host's low-level process toolkit: spawn attributes
// (own process group, parent-death signal), group termination with
// SIGTERM→SIGKILL escalation, zombie-aware liveness, and process-table
// listing with command-line lookup.
//
// Liveness everywhere treats a zombie (exited, not yet reaped) as dead: a
// worker that has exited but whose parent has not called wait yet no longer
// runs any code and holds no resources that matter to cleanup.
package procs

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

// ErrNotFound reports that no process has the requested pid. Lister.Process
// returns it, wrapped or bare; test with errors.Is.
var ErrNotFound = errors.New("procs: no such process")

// ErrUnsupported reports an operation the platform has no process control
// for (Windows and other non-Unix systems for now).
var ErrUnsupported = errors.New("procs: unsupported on this platform")

// killWait bounds how long Terminate polls for death after SIGKILL.
const killWait = 2 * time.Second

// Poll backoff for Terminate: the first wait and the cap it doubles up to.
const (
	pollFirst = time.Millisecond
	pollMax   = 100 * time.Millisecond
)

// Proc is one row of the process table.
type Proc struct {
	// PID is the process id.
	PID int
	// PPID is the parent's process id; 0 when unknown.
	PPID int
	// PGID is the process-group id; 0 when unknown or on platforms without
	// process groups.
	PGID int
	// Cmdline is the argument vector; nil when unreadable (kernel threads,
	// zombies, other users' processes on some systems).
	Cmdline []string
	// Zombie is true for a process that has exited but is not reaped yet;
	// it counts as dead everywhere in this package.
	Zombie bool
	// CreateTime is the start time in milliseconds since the Unix epoch;
	// 0 when unknown.
	CreateTime int64
}

// Lister reads the process table; tests stub it.
type Lister interface {
	// Processes returns every visible process. Rows that vanish while the
	// table is scanned are skipped, not reported as errors.
	Processes(ctx context.Context) ([]Proc, error)
	// Process returns the row of pid, or an error matching ErrNotFound when
	// there is no such process.
	Process(ctx context.Context, pid int) (Proc, error)
	// Environ returns the environment ("KEY=VALUE") of pid; an error when
	// it cannot be read (gone, or another user's process).
	Environ(ctx context.Context, pid int) ([]string, error)
}

// Target names what to signal: the process group PGID when PGID > 0 (the
// whole group), else the single process PID.
type Target struct {
	// PID is the process to signal when PGID is not set.
	PID int
	// PGID, when > 0, selects the whole process group instead of PID.
	PGID int
}

// String formats t for errors and logs.
func (t Target) String() string {
	if t.PGID > 0 {
		return fmt.Sprintf("process group %d", t.PGID)
	}
	return fmt.Sprintf("pid %d", t.PID)
}

// Outcome is the result of Terminate.
type Outcome int

const (
	// Gone means nothing was alive when Terminate started; no signal was sent.
	Gone Outcome = iota
	// Terminated means the target died after SIGTERM, within the grace.
	Terminated
	// Killed means the target needed SIGKILL and then died.
	Killed
	// Survived means the target was still alive after SIGKILL and the wait
	// (the context ended or the kill wait passed), or could not be signalled.
	Survived
)

// String returns "gone", "terminated", "killed" or "survived".
func (o Outcome) String() string {
	switch o {
	case Gone:
		return "gone"
	case Terminated:
		return "terminated"
	case Killed:
		return "killed"
	case Survived:
		return "survived"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Killer is what cleanup code calls to end processes; tests stub it.
type Killer interface {
	// Terminate ends t with escalation; see the package-level Terminate.
	Terminate(ctx context.Context, t Target, grace time.Duration) (Outcome, error)
}

type systemKiller struct{}

func (systemKiller) Terminate(ctx context.Context, t Target, grace time.Duration) (Outcome, error) {
	return Terminate(ctx, t, grace)
}

// SystemKiller is the real Killer: it calls Terminate.
var SystemKiller Killer = systemKiller{}

// SpawnOptions tunes Start.
type SpawnOptions struct {
	// ParentDeathSignal is sent to the child when the spawning host dies
	// (Linux only, ignored elsewhere); 0 means none.
	ParentDeathSignal syscall.Signal
}
