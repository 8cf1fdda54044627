//go:build unix

package testutil

import (
	"errors"
	"syscall"
)

func signalZero(pid int) bool { return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
