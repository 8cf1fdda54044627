package supervisors

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// TestStuckChildDoesNotHoldUpStop: a child whose Stopping handler blocks past its Shutdown is stopped
// by force and then left behind; the supervisor's stop completes in bounded time and the other
// children still stop in order.
func TestStuckChildDoesNotHoldUpStop(t *testing.T) {
	sys := testutil.NewSystem(t)
	j := newJournal()
	release := make(chan struct{})
	defer close(release) // lets the stuck handler return so its goroutine ends before goleak looks
	stuck := probeChild("stuck", j, Permanent, onStopping(func() { <-release }))
	stuck.Shutdown = 50 * time.Millisecond
	sup := spawnSupervisor(t, sys, Spec{Children: []ChildSpec{
		probeChild("a", j, Permanent), stuck, probeChild("c", j, Permanent),
	}})
	j.reset()

	begin := time.Now()
	stopSupervisor(t, sys, sup)
	elapsed := time.Since(begin)
	require.Less(t, elapsed, 2*time.Second, "stop took %v", elapsed)
	require.GreaterOrEqual(t, elapsed, 2*stuck.Shutdown, "Shutdown to drain, then the forced stop's wait")
	require.Equal(t, []string{"stop c", "stop stuck", "stop a"}, j.snapshot())
	require.False(t, alive(sys, sup))
}

// TestStopDrainsWithinShutdown: a child busy when asked to stop is poisoned, so the messages queued
// before the poison pill are processed if it finishes within Shutdown; past Shutdown it is stopped
// and the rest of its queue is dropped.
func TestStopDrainsWithinShutdown(t *testing.T) {
	tests := []struct {
		name     string
		shutdown time.Duration
		journal  []string
	}{
		{"drained", 5 * time.Second, []string{"start slow", "note 1", "note 2", "note 3", "stop slow"}},
		{"cut short", 300 * time.Millisecond, []string{"start slow", "stop slow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := testutil.NewSystem(t)
			j := newJournal()
			logger, forced := logSignal("child did not stop within its shutdown timeout, stopping it")
			sup := spawnSupervisor(t, sys, Spec{Logger: logger, Children: []ChildSpec{
				{Name: "slow", Shutdown: tt.shutdown, Props: probeProps("slow", j)},
			}})
			pid := childPID(t, sys, sup, "slow")
			busy, release := make(chan struct{}), make(chan struct{})
			sys.Root.Send(pid, &blockMsg{entered: busy, release: release})
			<-busy
			for i := 1; i <= 3; i++ {
				sys.Root.Send(pid, &noteMsg{line: fmt.Sprintf("note %d", i)})
			}
			done := make(chan error, 1)
			go func() { done <- sys.Root.PoisonFuture(sup).Wait() }()
			if tt.shutdown < wait {
				<-forced // Shutdown has passed and the supervisor has sent Stop
			} else {
				require.Never(t, func() bool { return isClosed(forced) || len(done) > 0 },
					100*time.Millisecond, millisecond)
			}
			close(release)
			require.NoError(t, <-done)
			require.Equal(t, tt.journal, j.snapshot())
		})
	}
}
