package supervisors

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestShouldRestart(t *testing.T) {
	tests := []struct {
		restart  RestartType
		abnormal bool
		want     bool
	}{
		{Permanent, false, true},
		{Permanent, true, true},
		{Transient, false, false},
		{Transient, true, true},
		{Temporary, false, false},
		{Temporary, true, false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, shouldRestart(tt.restart, tt.abnormal), "%v abnormal=%v", tt.restart, tt.abnormal)
	}
}

func TestIsNormal(t *testing.T) {
	for _, r := range []any{nil, Normal, Shutdown} {
		require.True(t, IsNormal(r), "%v", r)
	}
	for _, r := range []any{"normal", Reason("killed"), 42, errBoom} {
		require.False(t, IsNormal(r), "%v", r)
	}
}

// TestRestartTypes ends child "w" in different ways and checks whether it comes back.
func TestRestartTypes(t *testing.T) {
	tests := []struct {
		name      string
		restart   RestartType
		end       any // message sent to the child
		restarted bool
		listed    bool // still in WhichChildren when not restarted
	}{
		{"permanent stops itself", Permanent, &stopSelfMsg{}, true, true},
		{"permanent exits normal", Permanent, &exitMsg{reason: Normal}, true, true},
		{"permanent crashes", Permanent, &crashMsg{reason: "boom"}, true, true},
		{"transient stops itself", Transient, &stopSelfMsg{}, false, true},
		{"transient exits nil", Transient, &exitMsg{}, false, true},
		{"transient exits shutdown", Transient, &exitMsg{reason: Shutdown}, false, true},
		{"transient exits abnormal", Transient, &exitMsg{reason: Reason("lost connection")}, true, true},
		{"transient crashes", Transient, &crashMsg{reason: "boom"}, true, true},
		{"temporary crashes", Temporary, &crashMsg{reason: "boom"}, false, false},
		{"temporary exits abnormal", Temporary, &exitMsg{reason: errBoom}, false, false},
		{"temporary stops itself", Temporary, &stopSelfMsg{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testutil.NewSystem(t)
			j := newJournal()
			sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{
				probeChild("keep", j, Permanent), probeChild("w", j, tt.restart),
			}})
			sys.Root.Send(childPID(t, sys, sup, "w"), tt.end)

			if tt.restarted {
				require.Eventually(t, func() bool { return j.startsOf("w") == 2 }, wait, millisecond)
				c, ok := childInfo(t, sys, sup, "w")
				require.True(t, ok)
				require.True(t, c.Running)
				require.Equal(t, 1, c.Restarts)
				require.Equal(t, 2, ping(t, sys, c.PID))
			} else {
				// The supervisor handles the exit and records the outcome in one step: once it shows,
				// no restart can follow.
				require.Eventually(t, func() bool {
					c, ok := childInfo(t, sys, sup, "w")
					return !ok || !c.Running
				}, wait, millisecond)
				_, listed := childInfo(t, sys, sup, "w")
				require.Equal(t, tt.listed, listed)
				require.Equal(t, 1, j.startsOf("w"))
			}
			require.Equal(t, 1, j.startsOf("keep"), "a one_for_one sibling is untouched")
			stopSupervisor(t, sys, sup)
		})
	}
}
