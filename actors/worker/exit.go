package worker

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/snakepit-go/snakepit/internal/sperr"
)

// ExitInfo describes how a Python process ended.
type ExitInfo struct {
	OSPid    int
	ExitCode int    // -1 when killed by a signal
	Signal   string // "" unless killed by a signal, e.g. "killed"
	Output   string // the last few KB of its stdout and stderr
	// KilledFor says why the host killed the process (execution TTL,
	// heartbeat lost, a request), "" when it ended on its own.
	KilledFor string
}

// exitInfoOf reads a reaped process's state.
func exitInfoOf(ps *os.ProcessState, pid int, output string) ExitInfo {
	info := ExitInfo{OSPid: pid, ExitCode: -1, Output: output}
	if ps == nil {
		return info
	}
	info.ExitCode = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		info.Signal = ws.Signal().String()
	}
	return info
}

// String is a short human form: "exit code 1" or "signal killed".
func (e ExitInfo) String() string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return fmt.Sprintf("exit code %d", e.ExitCode)
}

// Error returns the worker_exit error in-flight calls receive.
func (e ExitInfo) Error(pool, workerID string) *sperr.Error {
	err := sperr.New(sperr.CodeWorkerExit, "python process %d ended (%s)", e.OSPid, e)
	if e.KilledFor != "" {
		err.Message = fmt.Sprintf("python process %d was killed by the host: %s", e.OSPid, e.KilledFor)
		err.WithDetail("killed_for", e.KilledFor)
	}
	err.Pool, err.WorkerID = pool, workerID
	err.WithDetail("os_pid", strconv.Itoa(e.OSPid)).WithDetail("exit_code", strconv.Itoa(e.ExitCode))
	if e.Signal != "" {
		err.WithDetail("signal", e.Signal)
	}
	if e.Output != "" {
		err.WithDetail("last_output", e.Output)
	}
	return err
}
