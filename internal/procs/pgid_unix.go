//go:build unix

package procs

import "syscall"

// pgidOf returns the process-group id of pid.
func pgidOf(pid int) (int, error) {
	return syscall.Getpgid(pid)
}
