package supervisors

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestRestartRange(t *testing.T) {
	tests := []struct {
		strategy Strategy
		i, n     int
		from, to int
	}{
		{OneForOne, 1, 3, 1, 2},
		{OneForAll, 1, 3, 0, 3},
		{RestForOne, 1, 3, 1, 3},
		{RestForOne, 0, 3, 0, 3},
		{RestForOne, 2, 3, 2, 3},
		{OneForOne, 0, 1, 0, 1},
	}
	for _, tt := range tests {
		from, to := restartRange(tt.strategy, tt.i, tt.n)
		require.Equal(t, [2]int{tt.from, tt.to}, [2]int{from, to}, "%v i=%d n=%d", tt.strategy, tt.i, tt.n)
	}
}

func TestCrashRestartsTheStrategysSet(t *testing.T) {
	tests := []struct {
		strategy Strategy
		journal  []string
		starts   map[string]int // instance counts after the restart
	}{
		{OneForOne, []string{"stop b", "start b"}, map[string]int{"a": 1, "b": 2, "c": 1}},
		{OneForAll, []string{"stop c", "stop b", "stop a", "start a", "start b", "start c"},
			map[string]int{"a": 2, "b": 2, "c": 2}},
		{RestForOne, []string{"stop c", "stop b", "start b", "start c"}, map[string]int{"a": 1, "b": 2, "c": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.strategy.String(), func(t *testing.T) {
			sys := testutil.NewSystem(t)
			j := newJournal()
			sup := spawnSupervisor(t, sys, Spec{Strategy: tt.strategy, Children: []ChildSpec{
				probeChild("a", j, Permanent), probeChild("b", j, Permanent), probeChild("c", j, Permanent),
			}})
			j.reset()
			sys.Root.Send(childPID(t, sys, sup, "b"), &crashMsg{reason: "boom"})
			j.expect(t, tt.journal...)
			for name, n := range tt.starts {
				require.Equal(t, n, j.startsOf(name), "starts of %s", name)
			}
			items := which(t, sys, sup)
			require.Len(t, items, 3)
			for _, c := range items {
				require.True(t, c.Running, c.Name)
				require.Equal(t, tt.starts[c.Name]-1, c.Restarts, c.Name)
			}
			stopSupervisor(t, sys, sup)
		})
	}
}
