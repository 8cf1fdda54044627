package worker

import (
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassify(t *testing.T) {
	sig := func(s syscall.Signal) ExitInfo { return ExitInfo{OSPid: 42, ExitCode: -1, Signal: s.String()} }
	named := func(s string) ExitInfo { return ExitInfo{OSPid: 42, ExitCode: -1, Signal: s} }
	code := func(c int) ExitInfo { return ExitInfo{OSPid: 42, ExitCode: c} }
	tests := []struct {
		name string
		e    ExitInfo
		want ExitClass
	}{
		{"exit 0", code(0), ExitClean},
		{"zero value", ExitInfo{}, ExitClean},
		{"exit 1", code(1), ExitError},
		{"exit 2", code(2), ExitError},
		{"exit 255", code(255), ExitError},
		{"exit 143 (shell SIGTERM) is an error", code(143), ExitError},
		{"exit 139 is a segfault", code(139), ExitSegfault},
		{"exit 134 is an abort", code(134), ExitAbort},
		{"exit 137 is killed", code(137), ExitKilled},
		{"not reaped", code(-1), ExitUnknown},
		{"other negative code", code(-7), ExitUnknown},

		// Signals as exitInfoOf records them (Go's names on this platform).
		{"SIGSEGV", sig(syscall.SIGSEGV), ExitSegfault},
		{"SIGBUS", sig(syscall.SIGBUS), ExitSegfault},
		{"SIGILL", sig(syscall.SIGILL), ExitSegfault},
		{"SIGFPE", sig(syscall.SIGFPE), ExitSegfault},
		{"SIGABRT", sig(syscall.SIGABRT), ExitAbort},
		{"SIGKILL", sig(syscall.SIGKILL), ExitKilled},
		{"SIGTERM", sig(syscall.SIGTERM), ExitSignal},
		{"SIGINT", sig(syscall.SIGINT), ExitSignal},
		{"SIGHUP", sig(syscall.SIGHUP), ExitSignal},

		// Names from other platforms and spellings.
		{"linux segfault name", named("segmentation fault"), ExitSegfault},
		{"bus error", named("bus error"), ExitSegfault},
		{"illegal instruction", named("illegal instruction"), ExitSegfault},
		{"floating point exception", named("floating point exception"), ExitSegfault},
		{"linux abort name", named("aborted"), ExitAbort},
		{"bsd abort name", named("abort trap"), ExitAbort},
		{"killed", named("killed"), ExitKilled},
		{"SIGKILL spelled out", named("SIGKILL"), ExitKilled},
		{"KILL", named("KILL"), ExitKilled},
		{"sigsegv lower case", named("sigsegv"), ExitSegfault},
		{"SIGABRT spelled out", named("SIGABRT"), ExitAbort},
		{"SIGIOT", named("SIGIOT"), ExitAbort},
		{"padded", named(" killed "), ExitKilled},
		{"terminated", named("terminated"), ExitSignal},
		{"SIGTERM spelled out", named("SIGTERM"), ExitSignal},
		{"unknown signal number", named("signal 77"), ExitSignal},

		// A signal decides over the exit code.
		{"signal with exit code 0", ExitInfo{ExitCode: 0, Signal: "killed"}, ExitKilled},
		{"signal with exit code 139", ExitInfo{ExitCode: 139, Signal: "terminated"}, ExitSignal},

		// Killed by the host is still killed.
		{"killed by the host", ExitInfo{ExitCode: -1, Signal: "killed", KilledFor: "heartbeat lost"}, ExitKilled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Classify(tc.e))
		})
	}
}

func TestExitClassCrash(t *testing.T) {
	tests := []struct {
		c     ExitClass
		crash bool
	}{
		{ExitClean, false},
		{ExitUnknown, false},
		{ExitError, true},
		{ExitSegfault, true},
		{ExitAbort, true},
		{ExitKilled, true},
		{ExitSignal, true},
		{ExitClass("bogus"), false},
		{ExitClass(""), false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.crash, tc.c.Crash(), "class %q", tc.c)
	}
}

func TestPossibleOOM(t *testing.T) {
	tests := []struct {
		name string
		e    ExitInfo
		want bool
	}{
		{"SIGKILL not by the host", ExitInfo{ExitCode: -1, Signal: "killed"}, true},
		{"exit 137 not by the host", ExitInfo{ExitCode: 137}, true},
		{"SIGKILL by the host", ExitInfo{ExitCode: -1, Signal: "killed", KilledFor: "execution ttl"}, false},
		{"segfault", ExitInfo{ExitCode: -1, Signal: "segmentation fault"}, false},
		{"SIGTERM", ExitInfo{ExitCode: -1, Signal: "terminated"}, false},
		{"clean", ExitInfo{}, false},
		{"exit 1", ExitInfo{ExitCode: 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, PossibleOOM(tc.e))
		})
	}
}
