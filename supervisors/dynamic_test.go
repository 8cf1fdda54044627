package supervisors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestStartTerminateWhichChildren(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{probeChild("a", j, Permanent)}})

	bPID, err := RequestStartChild(sys.Root, sup, probeChild("b", j, Transient), wait)
	require.NoError(t, err)
	require.Equal(t, sup.Id+"/b", bPID.Id)
	require.Equal(t, 1, ping(t, sys, bPID))
	_, err = RequestStartChild(sys.Root, sup, probeChild("c", j, Temporary), wait)
	require.NoError(t, err)

	_, err = RequestStartChild(sys.Root, sup, probeChild("b", j, Permanent), wait)
	require.ErrorIs(t, err, ErrAlreadyPresent)
	_, err = RequestStartChild(sys.Root, sup, ChildSpec{Name: "nil-props"}, wait)
	require.ErrorIs(t, err, ErrInvalidSpec)
	// protoactor panics on child props with a guardian strategy; the supervisor reports it.
	guarded := probeProps("g", j).Clone(actor.WithGuardian(actor.DefaultSupervisorStrategy()))
	_, err = RequestStartChild(sys.Root, sup, ChildSpec{Name: "g", Props: guarded}, wait)
	require.ErrorContains(t, err, "GuardianStrategy")

	sys.Root.Send(bPID, &crashMsg{reason: "boom"})
	require.Eventually(t, func() bool { return j.startsOf("b") == 2 }, wait, millisecond)
	require.Equal(t, []ChildInfo{
		{Name: "a", PID: childPID(t, sys, sup, "a"), Restart: Permanent, Running: true},
		{Name: "b", PID: bPID, Restart: Transient, Running: true, Restarts: 1},
		{Name: "c", PID: childPID(t, sys, sup, "c"), Restart: Temporary, Running: true},
	}, which(t, sys, sup))

	j.reset()
	require.NoError(t, RequestTerminateChild(sys.Root, sup, "b", wait))
	require.Equal(t, []string{"stop b"}, j.snapshot())
	require.ErrorIs(t, RequestTerminateChild(sys.Root, sup, "b", wait), ErrNotFound)
	names := func() (out []string) {
		for _, c := range which(t, sys, sup) {
			out = append(out, c.Name)
		}
		return out
	}
	require.Equal(t, []string{"a", "c"}, names())

	// A name is free again once its child is terminated; the new child goes to the end of the order.
	_, err = RequestStartChild(sys.Root, sup, probeChild("b", j, Permanent), wait)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "c", "b"}, names())

	j.reset()
	stopSupervisor(t, sys, sup)
	require.Equal(t, []string{"stop b", "stop c", "stop a"}, j.snapshot())
}

func TestStartChildFailureIsReportedNotRestarted(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	sup := spawnSupervisor(t, sys, Spec{MaxRestarts: 0, Window: time.Minute,
		Children: []ChildSpec{probeChild("a", j, Permanent)}})

	_, err := RequestStartChild(sys.Root, sup,
		probeChild("bad", j, Permanent, onStarted(func(int) { panic("no config") })), wait)
	var se *StartError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "bad", se.Child)
	require.Equal(t, "no config", se.Reason)

	// Not in the list, not restarted, and not counted: with MaxRestarts 0 the supervisor is still up.
	_, listed := childInfo(t, sys, sup, "bad")
	require.False(t, listed)
	require.Equal(t, 0, j.startsOf("bad"))
	require.True(t, alive(sys, sup))
	stopSupervisor(t, sys, sup)
}

func TestStartChildTimeout(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	release := make(chan struct{})
	sup := spawnSupervisor(t, sys, Spec{})
	slow := probeChild("slow", j, Permanent, onStarted(func(int) { <-release }))
	slow.StartTimeout = 50 * time.Millisecond
	slow.Shutdown = 10 * time.Millisecond

	_, err := RequestStartChild(sys.Root, sup, slow, wait)
	require.ErrorIs(t, err, ErrStartTimeout)
	close(release)
	// The instance is stopped as soon as its Started returns (the supervisor asked it to stop).
	require.Eventually(t, func() bool { return !alive(sys, sys.NewLocalPID(sup.Id+"/slow")) }, wait, millisecond)
	require.Empty(t, which(t, sys, sup))
	stopSupervisor(t, sys, sup)
}

// TestInitialStartFailureIsACrash: a child whose Started panics during the supervisor's own start is
// restarted per strategy and intensity; the supervisor's Started still finishes with all children up.
func TestInitialStartFailureIsACrash(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	failFirst := onStarted(func(instance int) {
		if instance == 1 {
			panic("first start fails")
		}
	})
	sup := spawnSupervisor(t, sys, Spec{Strategy: RestForOne, Children: []ChildSpec{
		probeChild("a", j, Permanent), probeChild("b", j, Permanent, failFirst), probeChild("c", j, Permanent),
	}})
	// b's failed start wrote nothing; its second start did, then c.
	require.Equal(t, []string{"start a", "stop b", "start b", "start c"}, j.snapshot())
	items := which(t, sys, sup)
	require.Equal(t, []int{0, 1, 0}, []int{items[0].Restarts, items[1].Restarts, items[2].Restarts})
	stopSupervisor(t, sys, sup)
}

func TestInitialStartFailureBeyondIntensityGivesUp(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	var g giveUps
	props, err := New(Spec{MaxRestarts: 1, Window: time.Minute, OnGiveUp: g.record, Logger: testutil.QuietLogger(t),
		Children: []ChildSpec{
			probeChild("a", j, Permanent),
			probeChild("b", j, Permanent, onStarted(func(int) { panic("never starts") })),
			probeChild("c", j, Permanent),
		}})
	require.NoError(t, err)
	sys.Root.Spawn(props)
	require.Eventually(t, func() bool { return len(g.snapshot()) == 1 }, wait, millisecond)
	var se *StartError
	require.ErrorAs(t, g.snapshot()[0].(error), &se)
	require.Equal(t, "never starts", se.Reason)
	require.Equal(t, []string{"start a", "stop b", "stop b", "stop a"}, j.snapshot(), "c never started")
}
