package supervisors

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestRestartedChildKeepsItsPID(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{probeChild("a", j, Permanent)}})
	pid := childPID(t, sys, sup, "a")
	require.Equal(t, sup.Id+"/a", pid.Id)
	require.Equal(t, 1, ping(t, sys, pid))

	for want := 2; want <= 3; want++ {
		sys.Root.Send(pid, &crashMsg{reason: "boom"})
		require.Eventually(t, func() bool { return j.startsOf("a") == want }, wait, millisecond)
		require.Equal(t, want, ping(t, sys, pid), "the old PID value reaches the new instance")
		require.Equal(t, pid.Id, childPID(t, sys, sup, "a").Id)
	}
	stopSupervisor(t, sys, sup)
}
