//go:build unix && !linux

package procs

import (
	"context"
	"errors"
	"slices"
	"syscall"

	"github.com/shirou/gopsutil/v4/process"
)

// signalZero reports whether kill(pid, 0) finds something (EPERM counts:
// the process exists but belongs to someone else).
func signalZero(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// zombie reports whether gopsutil's status of p says zombie.
func zombie(ctx context.Context, p *process.Process) bool {
	status, err := p.StatusWithContext(ctx)
	return err == nil && slices.Contains(status, process.Zombie)
}

// Alive reports whether pid exists and is not a zombie; pid <= 0 is never
// alive. kill(pid, 0) decides existence, gopsutil's status the zombie state.
func Alive(pid int) bool {
	if pid <= 0 || !signalZero(pid) {
		return false
	}
	return !zombie(context.Background(), &process.Process{Pid: int32(pid)})
}

// GroupAlive reports whether any non-zombie process has process-group id
// pgid; pgid <= 1 is never alive. A group whose only members are zombies is
// dead. When the group exists but none of its members can be seen, it counts
// as alive.
func GroupAlive(pgid int) bool {
	if pgid <= 1 || !signalZero(-pgid) {
		return false
	}
	ctx := context.Background()
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return true
	}
	seen := false
	for _, pid := range pids {
		if g, err := syscall.Getpgid(int(pid)); err != nil || g != pgid {
			continue
		}
		seen = true
		if !zombie(ctx, &process.Process{Pid: pid}) {
			return true
		}
	}
	if seen {
		return false
	}
	return signalZero(-pgid)
}
