package supervisors

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/ctxext"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// TestConcurrentCrashesRestartTheSetOnce: two children of a one_for_all supervisor crash together. The
// first failure restarts all three; the second child crashes before it is stopped (its crash is queued
// ahead of the poison pill) and its failure arrives about an instance already replaced, so it is
// ignored: one restart, within MaxRestarts 1, in every interleaving.
func TestConcurrentCrashesRestartTheSetOnce(t *testing.T) {
	for range 20 {
		sys := testutil.NewSystem(t)
		j := newJournal()
		var g giveUps
		sup := spawnSupervisor(t, sys, Spec{Strategy: OneForAll, MaxRestarts: 1, Window: time.Minute,
			OnGiveUp: g.record, Children: []ChildSpec{
				probeChild("a", j, Permanent), probeChild("b", j, Permanent), probeChild("c", j, Permanent),
			}})
		aPID, cPID := childPID(t, sys, sup, "a"), childPID(t, sys, sup, "c")
		// Queue both crashes behind a block, so both reach the first instances, then let them go.
		release := make(chan struct{})
		for _, pid := range []*actor.PID{aPID, cPID} {
			entered := make(chan struct{})
			sys.Root.Send(pid, &blockMsg{entered: entered, release: release})
			<-entered
			sys.Root.Send(pid, &crashMsg{reason: pid.Id})
		}
		close(release)

		require.Eventually(t, func() bool {
			return j.startsOf("a") == 2 && j.startsOf("b") == 2 && j.startsOf("c") == 2
		}, wait, millisecond)
		// The stale failure, if any, has been handled before the WhichChildren reply: system messages
		// go first, and it was queued before the restart finished.
		for _, c := range which(t, sys, sup) {
			require.Equal(t, 1, c.Restarts, c.Name)
			require.True(t, c.Running, c.Name)
		}
		require.Empty(t, g.snapshot())
		require.Equal(t, 2, ping(t, sys, aPID))
		stopSupervisor(t, sys, sup)
	}
}

// TestStuckChildCannotBeRestartedUnderItsName: a crashed child whose Stopping handler blocks is left
// behind holding its name, so its restarts fail with actor.ErrNameExists until the supervisor gives
// up; the supervisor still stops.
func TestStuckChildCannotBeRestartedUnderItsName(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	release := make(chan struct{})
	defer close(release)
	stuck := probeChild("stuck", j, Permanent, onStopping(func() { <-release }))
	stuck.Shutdown = 20 * time.Millisecond
	var g giveUps
	sup := spawnSupervisor(t, sys, Spec{MaxRestarts: 2, Window: time.Minute, OnGiveUp: g.record,
		Children: []ChildSpec{stuck}})
	sys.Root.Send(childPID(t, sys, sup, "stuck"), &crashMsg{reason: "boom"})

	require.Eventually(t, func() bool { return len(g.snapshot()) == 1 }, wait, millisecond)
	require.ErrorIs(t, g.snapshot()[0].(error), actor.ErrNameExists)
	require.False(t, alive(sys, sup))
	require.Equal(t, 1, j.startsOf("stuck"))
}

// TestPanicInStoppingDoesNotLeaveAZombie: protoactor leaves an actor whose Stopping handler panics
// half stopped, holding its name; the supervisor's middleware contains the panic so the child stops
// and restarts normally.
func TestPanicInStoppingDoesNotLeaveAZombie(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{
		probeChild("a", j, Permanent, onStopping(func() { panic("cleanup failed") })),
	}})
	pid := childPID(t, sys, sup, "a")
	sys.Root.Send(pid, &crashMsg{reason: "boom"})
	require.Eventually(t, func() bool { return j.startsOf("a") == 2 }, wait, millisecond)
	require.Equal(t, 2, ping(t, sys, pid))

	begin := time.Now()
	stopSupervisor(t, sys, sup)
	require.Less(t, time.Since(begin), time.Second)
}

func TestExitOutsideASupervisorOnlyStops(t *testing.T) {
	sys := testutil.NewSystem(t)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*exitMsg); ok {
			Exit(ctx, Reason("bye"))
		}
	}))
	sys.Root.Send(pid, &exitMsg{})
	require.Eventually(t, func() bool { return !alive(sys, pid) }, wait, millisecond)
}

// panickyExtensions is a context whose Get panics, as protoactor's does for an extension id beyond the
// slots Set has grown.
type panickyExtensions struct{}

func (panickyExtensions) Get(ctxext.ContextExtensionID) ctxext.ContextExtension {
	panic("index out of range")
}
func (panickyExtensions) Set(ctxext.ContextExtension) {}

func TestIncarnationOfToleratesMissingExtension(t *testing.T) {
	require.Nil(t, incarnationOf(panickyExtensions{}))
}

// TestPanicOutsideReceiveIsTheCurrentInstances: a panic in a ReenterAfter continuation bypasses the
// receiver middleware, so its failure is not marked with an instance; it is taken to be about the
// current one.
func TestPanicOutsideReceiveIsTheCurrentInstances(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	props := actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			j.started("r")
		case *crashMsg:
			f := actor.NewFuture(ctx.ActorSystem(), millisecond) // times out at once
			ctx.ReenterAfter(f, func(any, error) { panic("in continuation") })
		}
	})
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{{Name: "r", Props: props}}})
	sys.Root.Send(childPID(t, sys, sup, "r"), &crashMsg{})
	require.Eventually(t, func() bool { return j.startsOf("r") == 2 }, wait, millisecond)
	c, _ := childInfo(t, sys, sup, "r")
	require.Equal(t, 1, c.Restarts)
	stopSupervisor(t, sys, sup)
}
