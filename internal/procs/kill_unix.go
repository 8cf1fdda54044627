//go:build unix

package procs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Terminate ends t with escalation. It sends SIGTERM (to -PGID for a group,
// else to PID) and polls liveness with backoff (1 ms doubling up to 100 ms)
// until the target is dead or grace passes; then it sends SIGKILL and polls
// again for up to 2 s or until ctx ends. A ctx that ends during the grace
// skips the rest of it. grace <= 0 means SIGKILL at once.
//
// Liveness is GroupAlive(PGID) for groups and Alive(PID) otherwise, so a
// zombie counts as dead: a child the caller has not reaped yet is gone.
// ESRCH from kill is not an error. An error comes back only when a signal
// cannot be sent (EPERM, for one), with Survived, or for a target this
// package refuses: pid or group 1, or this process and its own group.
// Survived with a nil error means the wait after SIGKILL ran out.
func Terminate(ctx context.Context, t Target, grace time.Duration) (Outcome, error) {
	sigTarget, alive := t.PID, func() bool { return Alive(t.PID) }
	if t.PGID > 0 {
		sigTarget, alive = -t.PGID, func() bool { return GroupAlive(t.PGID) }
	}
	if err := checkTarget(t); err != nil {
		return Survived, err
	}
	if !alive() {
		return Gone, nil
	}
	if grace > 0 {
		if err := signal(sigTarget, syscall.SIGTERM); err != nil {
			return Survived, fmt.Errorf("procs: terminate %v: %w", t, err)
		}
		if waitDead(ctx, grace, alive) {
			return Terminated, nil
		}
	}
	if err := signal(sigTarget, syscall.SIGKILL); err != nil {
		return Survived, fmt.Errorf("procs: kill %v: %w", t, err)
	}
	if waitDead(ctx, killWait, alive) {
		return Killed, nil
	}
	return Survived, nil
}

// checkTarget refuses targets whose signal would hit init or this very
// process: kill(-1) signals everything, kill(0) our own group.
func checkTarget(t Target) error {
	if t.PGID > 0 {
		if t.PGID == 1 {
			return fmt.Errorf("procs: refusing to signal %v", t)
		}
		if own, err := syscall.Getpgid(0); err == nil && own == t.PGID {
			return fmt.Errorf("procs: refusing to signal %v: it is this process's own group", t)
		}
		return nil
	}
	if t.PID == 1 {
		return fmt.Errorf("procs: refusing to signal %v", t)
	}
	if t.PID == os.Getpid() {
		return fmt.Errorf("procs: refusing to signal %v: it is this process", t)
	}
	return nil
}

// signal sends sig to pid (a negative pid names a group); ESRCH is success.
func signal(pid int, sig syscall.Signal) error {
	err := syscall.Kill(pid, sig)
	if err == nil || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return fmt.Errorf("%v: %w", sig, err)
}

// waitDead polls alive with backoff until it reports false (true is
// returned), d passes or ctx ends (false, after one last check).
func waitDead(ctx context.Context, d time.Duration, alive func() bool) bool {
	deadline := time.Now().Add(d)
	delay := pollFirst
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if !alive() {
			return true
		}
		remaining := time.Until(deadline)
		if remaining <= 0 || ctx.Err() != nil {
			return false
		}
		timer.Reset(min(delay, remaining))
		select {
		case <-ctx.Done():
			return !alive()
		case <-timer.C:
		}
		delay = min(2*delay, pollMax)
	}
}
