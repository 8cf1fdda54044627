//go:build !linux

package procs

import "errors"

// WaitExitedKeepZombie is not available on this system: it returns an
// error at once, and callers signal the group only before the leader is
// reaped by other means.
func WaitExitedKeepZombie(pid int) error {
	return errors.New("procs: waiting without reaping is not supported on this system")
}

// CanKeepZombie reports whether WaitExitedKeepZombie works here.
const CanKeepZombie = false
