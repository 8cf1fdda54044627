package worker

import (
	"strings"
	"syscall"
)

// ExitClass says how a worker process ended.
type ExitClass string

// The classes of a worker process's end.
const (
	// ExitClean: exit code 0.
	ExitClean ExitClass = "clean"
	// ExitError: a non-zero exit code (other than the shell-style 134, 137
	// and 139 below).
	ExitError ExitClass = "exit"
	// ExitSegfault: SIGSEGV, SIGBUS, SIGILL, SIGFPE, or exit code 139
	// (128+SIGSEGV, as a shell reports it).
	ExitSegfault ExitClass = "segfault"
	// ExitAbort: SIGABRT or exit code 134 (128+SIGABRT).
	ExitAbort ExitClass = "abort"
	// ExitKilled: SIGKILL or exit code 137 (128+SIGKILL), sent by the host,
	// by a person, or by the kernel's OOM killer; see Classify.
	ExitKilled ExitClass = "killed"
	// ExitSignal: any other signal (SIGTERM, SIGINT …).
	ExitSignal ExitClass = "signal"
	// ExitUnknown: not known (the process was not reaped: ExitCode -1 and
	// no signal).
	ExitUnknown ExitClass = "unknown"
)

// signalClasses maps a normalized signal name to its class: Go's names of
// the signals (syscall.Signal.String, what ExitInfo.Signal holds: "killed",
// "segmentation fault" …, "abort trap" on BSDs), and the SIGXXX and XXX
// forms.
var signalClasses = func() map[string]ExitClass {
	m := map[string]ExitClass{}
	add := func(c ExitClass, sig syscall.Signal, names ...string) {
		m[normSignal(sig.String())] = c
		for _, n := range names {
			m[normSignal(n)] = c
		}
	}
	add(ExitSegfault, syscall.SIGSEGV, "SIGSEGV", "segmentation fault")
	add(ExitSegfault, syscall.SIGBUS, "SIGBUS", "bus error")
	add(ExitSegfault, syscall.SIGILL, "SIGILL", "illegal instruction")
	add(ExitSegfault, syscall.SIGFPE, "SIGFPE", "floating point exception")
	add(ExitAbort, syscall.SIGABRT, "SIGABRT", "SIGIOT", "aborted", "abort trap")
	add(ExitKilled, syscall.SIGKILL, "SIGKILL", "killed")
	return m
}()

// normSignal lowercases a signal name and drops a "SIG" prefix, so
// "SIGKILL", "KILL" and "kill" are one name.
func normSignal(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if strings.HasPrefix(s, "sig") && !strings.Contains(s, " ") {
		s = s[len("sig"):]
	}
	return s
}

// Classify returns the class of an exit. A signal, when there is one, decides
// the class; otherwise the exit code does: 0 is clean, 139, 134 and 137 are
// what a shell reports for a child that died of SIGSEGV, SIGABRT and
// SIGKILL, any other positive code is an error, and -1 (or any negative code)
// means the exit status is not known.
//
// An OOM kill cannot be told apart from another SIGKILL without the kernel's
// logs: both are ExitKilled. Callers treat ExitKilled as a possible OOM (see
// PossibleOOM).
func Classify(e ExitInfo) ExitClass {
	if e.Signal != "" {
		if c, ok := signalClasses[normSignal(e.Signal)]; ok {
			return c
		}
		return ExitSignal
	}
	switch {
	case e.ExitCode == 0:
		return ExitClean
	case e.ExitCode < 0:
		return ExitUnknown
	case e.ExitCode == 139:
		return ExitSegfault
	case e.ExitCode == 134:
		return ExitAbort
	case e.ExitCode == 137:
		return ExitKilled
	default:
		return ExitError
	}
}

// PossibleOOM reports an exit that may be the kernel's OOM killer: killed
// (SIGKILL or exit code 137) and not by the host (KilledFor is empty).
func PossibleOOM(e ExitInfo) bool {
	return e.KilledFor == "" && Classify(e) == ExitKilled
}

// Crash reports whether the class is a crash: segfault, abort, killed, exit
// or signal; not clean, not unknown.
func (c ExitClass) Crash() bool {
	switch c {
	case ExitSegfault, ExitAbort, ExitKilled, ExitError, ExitSignal:
		return true
	default:
		return false
	}
}
