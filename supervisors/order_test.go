package supervisors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestChildrenStartInOrderAndStopInReverse(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{
		probeChild("a", j, Permanent), probeChild("b", j, Permanent), probeChild("c", j, Permanent),
	}})
	// spawnSupervisor returned after the supervisor's Started: every child has started by then.
	require.Equal(t, []string{"start a", "start b", "start c"}, j.snapshot())

	j.reset()
	stopSupervisor(t, sys, sup)
	require.Equal(t, []string{"stop c", "stop b", "stop a"}, j.snapshot())
}

func TestStartWaitsForEachChildsStarted(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	entered := make(chan struct{})
	release := make(chan struct{})
	slowStart := onStarted(func(int) {
		j.add("enter a")
		close(entered)
		<-release
	})
	props, err := New(Spec{Logger: testutil.QuietLogger(t), Children: []ChildSpec{
		probeChild("a", j, Permanent, slowStart), probeChild("b", j, Permanent), probeChild("c", j, Permanent),
	}})
	require.NoError(t, err)
	sup := sys.Root.Spawn(props)

	<-entered
	require.Never(t, func() bool { return len(j.snapshot()) > 1 }, 100*time.Millisecond, time.Millisecond,
		"b started while a's Started was running: %v", j.snapshot())
	close(release)
	which(t, sys, sup)
	require.Equal(t, []string{"enter a", "start a", "start b", "start c"}, j.snapshot())
	stopSupervisor(t, sys, sup)
}

func TestNestedSupervisorExtendsOrderToGrandchildren(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	inner, err := New(Spec{Logger: testutil.QuietLogger(t), Children: []ChildSpec{
		probeChild("x", j, Permanent), probeChild("y", j, Permanent),
	}})
	require.NoError(t, err)
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{
		{Name: "inner", Props: inner}, probeChild("z", j, Permanent),
	}})
	require.Equal(t, []string{"start x", "start y", "start z"}, j.snapshot())

	j.reset()
	stopSupervisor(t, sys, sup)
	require.Equal(t, []string{"stop z", "stop y", "stop x"}, j.snapshot())
}
