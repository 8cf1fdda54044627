//go:build !unix

package procs

import (
	"fmt"
	"os/exec"
)

// Start starts cmd as is: the platform has no process groups and no
// parent-death signal, so opts is ignored.
//
// The caller must call release exactly once after cmd.Wait has returned;
// here it does nothing.
func Start(cmd *exec.Cmd, opts SpawnOptions) (release func(), err error) {
	_ = opts
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("procs: start: %w", err)
	}
	return func() {}, nil
}

// spawnerRunning is always false: only Linux has a spawner goroutine.
func spawnerRunning() bool { return false }
