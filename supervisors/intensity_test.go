package supervisors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestIntensityAllowsMaxWithinWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	in := newIntensity(2, time.Minute)
	require.True(t, in.allow(t0))
	require.True(t, in.allow(t0.Add(10*time.Second)))
	require.False(t, in.allow(t0.Add(20*time.Second)), "third restart within the window")
	require.False(t, in.allow(t0.Add(59*time.Second)), "a refused restart is not recorded, the window still holds two")
	require.True(t, in.allow(t0.Add(61*time.Second)), "the first restart has left the window")
	require.False(t, in.allow(t0.Add(62*time.Second)))

	zero := newIntensity(0, time.Minute)
	require.False(t, zero.allow(t0), "MaxRestarts 0 gives up on the first failure")
}

// TestIntensityProperty: allow never lets more than max restarts into any window, and refuses only when
// max restarts are already inside the window ending now.
func TestIntensityProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		max := rapid.IntRange(0, 5).Draw(t, "max")
		window := time.Duration(rapid.IntRange(1, 100).Draw(t, "window")) * time.Millisecond
		gaps := rapid.SliceOf(rapid.IntRange(0, 50)).Draw(t, "gaps")
		in := newIntensity(max, window)
		now := time.Unix(0, 0)
		var allowed []time.Time
		for _, gap := range gaps {
			now = now.Add(time.Duration(gap) * time.Millisecond)
			inWindow := 0
			for _, a := range allowed {
				if a.After(now.Add(-window)) {
					inWindow++
				}
			}
			got := in.allow(now)
			if got != (inWindow < max) {
				t.Fatalf("allow at %v = %v with %d restarts in the window, max %d", now, got, inWindow, max)
			}
			if got {
				allowed = append(allowed, now)
			}
		}
	})
}

// giveUps records OnGiveUp calls.
type giveUps struct {
	mu      sync.Mutex
	reasons []any
}

func (g *giveUps) record(reason any) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reasons = append(g.reasons, reason)
}

func (g *giveUps) snapshot() []any {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]any(nil), g.reasons...)
}

func TestExceedingIntensityCallsOnGiveUp(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	var g giveUps
	sup := spawnSupervisor(t, sys, Spec{
		MaxRestarts: 2, Window: time.Minute, OnGiveUp: g.record,
		Children: []ChildSpec{probeChild("a", j, Permanent), probeChild("b", j, Permanent)},
	})
	for i := 1; i <= 2; i++ {
		sys.Root.Send(childPID(t, sys, sup, "b"), &crashMsg{reason: i})
		require.Eventually(t, func() bool { return j.startsOf("b") == i+1 }, wait, millisecond)
	}
	j.reset()
	sys.Root.Send(childPID(t, sys, sup, "b"), &crashMsg{reason: "third"})

	require.Eventually(t, func() bool { return len(g.snapshot()) > 0 }, wait, millisecond)
	require.False(t, alive(sys, sup), "OnGiveUp runs after the supervisor has stopped")
	require.Equal(t, []string{"stop b", "stop a"}, j.snapshot(), "children stopped in reverse order, not restarted")
	require.Equal(t, []any{"third"}, g.snapshot())
	require.Equal(t, 3, j.startsOf("b"))
}

func TestZeroMaxRestartsGivesUpOnFirstFailure(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	var g giveUps
	sup := spawnSupervisor(t, sys, Spec{
		MaxRestarts: 0, Window: time.Second, OnGiveUp: g.record,
		Children: []ChildSpec{probeChild("a", j, Permanent)},
	})
	sys.Root.Send(childPID(t, sys, sup, "a"), &stopSelfMsg{})
	require.Eventually(t, func() bool { return len(g.snapshot()) == 1 }, wait, millisecond)
	require.Equal(t, Normal, g.snapshot()[0], "a permanent child's normal exit needs a restart too")
	require.Equal(t, 1, j.startsOf("a"))
}

// TestGivingUpEscalatesToParentSupervisor: a nested supervisor without OnGiveUp that gives up fails to
// its parent, which restarts it like any crashed child; its children start again.
func TestGivingUpEscalatesToParentSupervisor(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	inner, err := New(Spec{MaxRestarts: 0, Window: time.Minute, Logger: testutil.QuietLogger(t),
		Children: []ChildSpec{probeChild("g", j, Permanent)}})
	require.NoError(t, err)
	var g giveUps
	sup := spawnSupervisor(t, sys, Spec{MaxRestarts: 3, Window: time.Minute, OnGiveUp: g.record,
		Children: []ChildSpec{probeChild("before", j, Permanent), {Name: "inner", Props: inner}}})
	innerPID := childPID(t, sys, sup, "inner")
	gPID := childPID(t, sys, innerPID, "g")
	j.reset()

	sys.Root.Send(gPID, &crashMsg{reason: "boom"})
	j.expect(t, "stop g", "start g")
	c, ok := childInfo(t, sys, sup, "inner")
	require.True(t, ok)
	require.True(t, c.Running)
	require.Equal(t, 1, c.Restarts)
	require.Equal(t, innerPID.Id, c.PID.Id)
	require.Equal(t, 1, j.startsOf("before"), "one_for_one parent leaves the sibling alone")
	require.Equal(t, 2, ping(t, sys, gPID), "the grandchild is back under its old PID")
	require.Empty(t, g.snapshot())
	stopSupervisor(t, sys, sup)
}

// TestEscalationReachesOnGiveUpWithIntensityError: when the parent cannot restart the nested supervisor
// either, the parent's OnGiveUp gets the nested supervisor's *IntensityError.
func TestEscalationReachesOnGiveUpWithIntensityError(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	inner, err := New(Spec{MaxRestarts: 0, Window: time.Minute, Logger: testutil.QuietLogger(t),
		Children: []ChildSpec{probeChild("g", j, Permanent)}})
	require.NoError(t, err)
	var g giveUps
	sup := spawnSupervisor(t, sys, Spec{MaxRestarts: 0, Window: time.Minute, OnGiveUp: g.record,
		Children: []ChildSpec{{Name: "inner", Props: inner}}})
	innerPID := childPID(t, sys, sup, "inner")
	sys.Root.Send(childPID(t, sys, innerPID, "g"), &crashMsg{reason: errBoom})

	require.Eventually(t, func() bool { return len(g.snapshot()) == 1 }, wait, millisecond)
	var ie *IntensityError
	require.ErrorAs(t, g.snapshot()[0].(error), &ie)
	require.Equal(t, "g", ie.Child)
	require.Equal(t, innerPID.Id, ie.Supervisor.Id)
	require.ErrorIs(t, ie, errBoom)
	require.False(t, alive(sys, innerPID))
	require.False(t, alive(sys, sup))
}

// TestRootSupervisorWithoutOnGiveUpFailsToProtoactor: at the root, giving up without OnGiveUp hands the
// failure to protoactor's guardian, which restarts the supervisor in place; its children start again.
func TestRootSupervisorWithoutOnGiveUpFailsToProtoactor(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	var events []any
	var mu sync.Mutex
	sub := sys.EventStream.Subscribe(func(evt any) {
		if e, ok := evt.(*actor.SupervisorEvent); ok {
			mu.Lock()
			events = append(events, e.Reason)
			mu.Unlock()
		}
	})
	defer sys.EventStream.Unsubscribe(sub)
	sup := spawnSupervisor(t, sys, Spec{MaxRestarts: 0, Window: time.Minute,
		Children: []ChildSpec{probeChild("a", j, Permanent)}})
	sys.Root.Send(childPID(t, sys, sup, "a"), &crashMsg{reason: "boom"})
	require.Eventually(t, func() bool { return j.startsOf("a") == 2 }, wait, millisecond)
	mu.Lock()
	require.Len(t, events, 1)
	var ie *IntensityError
	require.True(t, errors.As(events[0].(error), &ie), "reason %T", events[0])
	mu.Unlock()
	stopSupervisor(t, sys, sup)
}

// TestNestedSupervisorThatCannotStartFailsItsStart: a nested supervisor that gives up inside its own
// Started (a grandchild never starts) fails its start, which its parent handles like any failed start.
func TestNestedSupervisorThatCannotStartFailsItsStart(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	inner, err := New(Spec{MaxRestarts: 0, Window: time.Minute, Logger: testutil.QuietLogger(t), Children: []ChildSpec{
		probeChild("g", j, Permanent, onStarted(func(int) { panic("no") })),
	}})
	require.NoError(t, err)
	var g giveUps
	props, err := New(Spec{MaxRestarts: 1, Window: time.Minute, OnGiveUp: g.record, Logger: testutil.QuietLogger(t),
		Children: []ChildSpec{{Name: "inner", Props: inner}}})
	require.NoError(t, err)
	sys.Root.Spawn(props)

	require.Eventually(t, func() bool { return len(g.snapshot()) == 1 }, wait, millisecond)
	var se *StartError
	require.ErrorAs(t, g.snapshot()[0].(error), &se)
	require.Equal(t, "inner", se.Child)
	var ie *IntensityError
	require.ErrorAs(t, se, &ie)
	require.Equal(t, "g", ie.Child)
	require.Equal(t, []string{"stop g", "stop g"}, j.snapshot(), "two attempts of inner, one of g each")
}
