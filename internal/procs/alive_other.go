//go:build !unix

package procs

import (
	"context"
	"math"

	"github.com/shirou/gopsutil/v4/process"
)

// zombie is always false: the platform has no zombie state.
func zombie(context.Context, *process.Process) bool { return false }

// Alive reports whether pid exists, as far as gopsutil can tell; pid <= 0
// is never alive.
func Alive(pid int) bool {
	if pid <= 0 || pid > math.MaxInt32 {
		return false
	}
	exists, err := process.PidExists(int32(pid))
	return err == nil && exists
}

// GroupAlive is always false: the platform has no process groups.
func GroupAlive(int) bool { return false }
