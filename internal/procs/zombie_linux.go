package procs

import (
	"errors"

	"golang.org/x/sys/unix"
)

// WaitExitedKeepZombie blocks until the child pid has exited and leaves it
// unreaped (waitid with WNOWAIT): while it is a zombie its pid, and so the
// id of the process group it leads, cannot be given to another process, so
// the group may still be signalled safely. The caller reaps it afterwards
// (exec.Cmd.Wait).
func WaitExitedKeepZombie(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// CanKeepZombie reports whether WaitExitedKeepZombie works here.
const CanKeepZombie = true
