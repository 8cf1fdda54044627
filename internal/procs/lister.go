package procs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/shirou/gopsutil/v4/process"
)

// System is the real process table, read with gopsutil's process package
// (listing, command line, parent, status, create time) plus getpgid(2) for
// the process group on Unix.
var System Lister = systemLister{}

type systemLister struct{}

// Processes lists every visible process, skipping rows that vanish while the
// table is read.
func (systemLister) Processes(ctx context.Context) ([]Proc, error) {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("procs: list processes: %w", err)
	}
	rows := make([]Proc, 0, len(pids))
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("procs: list processes: %w", err)
		}
		row, err := readProc(ctx, int(pid))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Process returns the row of pid, or an error matching ErrNotFound.
func (systemLister) Process(ctx context.Context, pid int) (Proc, error) {
	if err := ctx.Err(); err != nil {
		return Proc{}, fmt.Errorf("procs: process %d: %w", pid, err)
	}
	return readProc(ctx, pid)
}

// Environ returns the environment of pid (readable for this user's processes).
func (systemLister) Environ(ctx context.Context, pid int) ([]string, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return nil, fmt.Errorf("procs: process %d: %w", pid, ErrNotFound)
	}
	env, err := (&process.Process{Pid: int32(pid)}).EnvironWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("procs: environment of %d: %w", pid, err)
	}
	return env, nil
}

// EnvValue returns the value of key in env ("KEY=VALUE" entries).
func EnvValue(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// readProc reads one row best-effort: a field that cannot be read stays
// zero (nil for Cmdline). The only errors are ErrNotFound, when the process
// does not exist (any more).
func readProc(ctx context.Context, pid int) (Proc, error) {
	if pid <= 0 || pid > math.MaxInt32 {
		return Proc{}, fmt.Errorf("procs: process %d: %w", pid, ErrNotFound)
	}
	p := &process.Process{Pid: int32(pid)}
	row := Proc{PID: pid}
	ppid, err := p.PpidWithContext(ctx)
	if err != nil {
		// The parent is part of every row's identity; failing to read it
		// almost always means the process is gone.
		if exists, xerr := process.PidExistsWithContext(ctx, int32(pid)); xerr == nil && !exists {
			return Proc{}, fmt.Errorf("procs: process %d: %w", pid, ErrNotFound)
		}
	} else {
		row.PPID = int(ppid)
	}
	if argv, err := p.CmdlineSliceWithContext(ctx); err == nil && len(argv) > 0 {
		row.Cmdline = argv
	}
	if created, err := p.CreateTimeWithContext(ctx); err == nil && created > 0 {
		row.CreateTime = created
	}
	if pgid, err := pgidOf(pid); err == nil {
		row.PGID = pgid
	}
	row.Zombie = zombie(ctx, p)
	return row, nil
}
