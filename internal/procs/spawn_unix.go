//go:build unix && !linux

package procs

import (
	"fmt"
	"os/exec"
	"syscall"
)

// Start starts cmd in a new process group (Setpgid, with Pgid reset to 0;
// a caller's Setsid, which makes a new group anyway, is kept instead),
// keeping every other SysProcAttr field the caller set. cmd.SysProcAttr is
// created or updated in place. opts.ParentDeathSignal is ignored: the
// platform has no parent-death signal.
//
// The caller must call release exactly once after cmd.Wait has returned
// (the child is reaped); here it does nothing.
func Start(cmd *exec.Cmd, opts SpawnOptions) (release func(), err error) {
	_ = opts
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if !cmd.SysProcAttr.Setsid {
		cmd.SysProcAttr.Setpgid = true
		cmd.SysProcAttr.Pgid = 0
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("procs: start: %w", err)
	}
	return func() {}, nil
}

// spawnerRunning is always false: only Linux has a spawner goroutine.
func spawnerRunning() bool { return false }
