package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/snakepit-go/snakepit/internal/procs"
)

// ErrNoProcess reports that the process TreeRSS was asked about does not
// exist. It is procs.ErrNotFound, so errors.Is matches either name.
var ErrNoProcess = procs.ErrNotFound

// TreeRSS returns the resident set size in bytes of the process pid plus all
// of its descendants (children, grandchildren …), read with gopsutil. A
// Python worker that forks (multiprocessing, subprocesses) holds its memory
// in the whole tree, not only in the process the host started.
//
// Descendants that vanish during the walk, or whose memory cannot be read,
// are skipped. When pid itself does not exist (or is not a valid pid) the
// error matches ErrNoProcess. A done ctx stops the walk with ctx.Err().
//
// Resident sets of processes sharing pages (copy-on-write after fork) are
// added up, so the sum can be more than the memory the tree really uses.
// On Linux, listing a process's children scans /proc once per process in the
// tree: cheap for a worker and its few children, not meant for hot paths.
func TreeRSS(ctx context.Context, pid int) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if pid <= 0 || pid > math.MaxInt32 {
		return 0, noProcess(pid)
	}
	root, err := process.NewProcessWithContext(ctx, int32(pid))
	if err != nil {
		if errors.Is(err, process.ErrorProcessNotRunning) {
			return 0, noProcess(pid)
		}
		return 0, fmt.Errorf("lifecycle: process %d: %w", pid, err)
	}
	mem, err := root.MemoryInfoWithContext(ctx)
	if err != nil {
		return 0, rootErr(ctx, pid, "memory", err)
	}
	total := mem.RSS

	seen := map[int32]bool{root.Pid: true}
	stack := []*process.Process{root}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids, err := p.ChildrenWithContext(ctx)
		if err != nil {
			if p == root {
				return 0, rootErr(ctx, pid, "children", err)
			}
			continue // a descendant that vanished
		}
		for _, kid := range kids {
			if seen[kid.Pid] {
				continue
			}
			seen[kid.Pid] = true
			km, err := kid.MemoryInfoWithContext(ctx)
			if err != nil {
				continue // vanished between the listing and the read
			}
			total += km.RSS
			stack = append(stack, kid)
		}
	}
	return total, nil
}

// rootErr is the error for a failed read of the root process: ErrNoProcess
// when it is gone by now, else err wrapped.
func rootErr(ctx context.Context, pid int, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if exists, xerr := process.PidExistsWithContext(ctx, int32(pid)); xerr == nil && !exists {
		return noProcess(pid)
	}
	return fmt.Errorf("lifecycle: process %d: reading %s: %w", pid, what, err)
}

func noProcess(pid int) error {
	return fmt.Errorf("lifecycle: process %d: %w", pid, ErrNoProcess)
}
