package supervisors

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// TestStopConcurrency: with StopConcurrency n, children stop n at a time,
// in reverse start order by group; without it, one at a time in reverse.
func TestStopConcurrency(t *testing.T) {
	for _, tc := range []struct {
		concurrency, wantMax int
	}{{0, 1}, {1, 1}, {4, 4}} {
		t.Run(fmt.Sprint(tc.concurrency), func(t *testing.T) {
			sys := testutil.NewSystem(t)
			j := newJournal()
			var mu sync.Mutex
			inflight, maxSeen := 0, 0
			var order []int
			slow := func(i int) probeOption {
				return onStopping(func() {
					mu.Lock()
					inflight++
					maxSeen = max(maxSeen, inflight)
					order = append(order, i)
					mu.Unlock()
					time.Sleep(100 * time.Millisecond)
					mu.Lock()
					inflight--
					mu.Unlock()
				})
			}
			var children []ChildSpec
			for i := 1; i <= 8; i++ {
				children = append(children, probeChild(fmt.Sprintf("c%d", i), j, Permanent, slow(i)))
			}
			sup := spawnSupervisor(t, sys, Spec{Strategy: OneForOne, Children: children, StopConcurrency: tc.concurrency})
			stopSupervisor(t, sys, sup)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, order, 8)
			if tc.wantMax == 1 {
				require.Equal(t, 1, maxSeen)
				require.Equal(t, []int{8, 7, 6, 5, 4, 3, 2, 1}, order, "one at a time, in reverse")
				return
			}
			require.Greater(t, maxSeen, 1, "children stop together")
			require.LessOrEqual(t, maxSeen, tc.wantMax, "at most StopConcurrency at once")
			first, second := slices.Clone(order[:4]), slices.Clone(order[4:])
			slices.Sort(first)
			slices.Sort(second)
			require.Equal(t, []int{5, 6, 7, 8}, first, "the later-started group stops first")
			require.Equal(t, []int{1, 2, 3, 4}, second)
		})
	}
}
