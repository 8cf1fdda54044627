package manager

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePool answers GetWorkerStates with fixed states and records Recycles.
type fakePool struct {
	mu       sync.Mutex
	states   []pool.WorkerState
	recycled []*pool.Recycle
}

func (f *fakePool) receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *pool.GetWorkerStates:
		f.mu.Lock()
		ctx.Respond(&pool.WorkerStates{Pool: "p", Workers: f.states})
		f.mu.Unlock()
	case *pool.Recycle:
		f.mu.Lock()
		f.recycled = append(f.recycled, m)
		f.mu.Unlock()
	}
}

func (f *fakePool) got() []*pool.Recycle {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*pool.Recycle(nil), f.recycled...)
}

func TestRoundsRecycleWhatDecideChooses(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10 * time.Millisecond))
	defer sys.Shutdown()
	now := time.Now()
	fp := &fakePool{states: []pool.WorkerState{
		{WorkerState: lifecycle.WorkerState{WorkerID: "old", StartedAt: now.Add(-time.Hour), LastActive: now}, OSPid: 1},
		{WorkerState: lifecycle.WorkerState{WorkerID: "fat", StartedAt: now, LastActive: now}, OSPid: 2},
		{WorkerState: lifecycle.WorkerState{WorkerID: "fine", StartedAt: now, LastActive: now}, OSPid: 3},
		{WorkerState: lifecycle.WorkerState{WorkerID: "leaving", StartedAt: now.Add(-time.Hour), LastActive: now, Draining: true}, OSPid: 4},
	}}
	pid := sys.Root.Spawn(actor.PropsFromFunc(fp.receive))
	var measured sync.Map
	rss := func(_ context.Context, pid int) (uint64, error) {
		measured.Store(pid, true)
		if pid == 2 {
			return 500 << 20, nil
		}
		return 50 << 20, nil
	}
	mgr := sys.Root.Spawn(Props(Config{Interval: time.Hour, RSS: rss, Pools: []Pool{{
		Name: "p", PID: pid, Limits: lifecycle.Limits{TTL: time.Minute, MemoryThresholdMB: 100},
	}}}))
	res, err := sys.Root.RequestFuture(mgr, &CheckNow{}, 5*time.Second).Result()
	require.NoError(t, err)
	round := res.(*Round)
	byWorker := map[string]lifecycle.Reason{}
	for _, r := range round.Recycled {
		byWorker[r.WorkerID] = r.Reason
	}
	require.Equal(t, map[string]lifecycle.Reason{"old": lifecycle.ReasonTTL, "fat": lifecycle.ReasonMemory}, byWorker)
	require.Eventually(t, func() bool { return len(fp.got()) == 2 }, 5*time.Second, 5*time.Millisecond)
	for _, r := range fp.got() {
		if r.WorkerID == "fat" {
			require.Equal(t, uint64(500<<20), r.RSSBytes, "the measured memory travels with the recycle")
		}
	}
	_, drained := measured.Load(4)
	require.False(t, drained, "a draining worker is not even measured")
	require.NoError(t, sys.Root.StopFuture(mgr).Wait())
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
}

func TestPeriodicRoundsAndNoMeasurementWithoutAThreshold(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10 * time.Millisecond))
	defer sys.Shutdown()
	fp := &fakePool{states: []pool.WorkerState{
		{WorkerState: lifecycle.WorkerState{WorkerID: "idle", StartedAt: time.Now(), LastActive: time.Now().Add(-time.Hour)}, OSPid: 1},
	}}
	pid := sys.Root.Spawn(actor.PropsFromFunc(fp.receive))
	rss := func(context.Context, int) (uint64, error) {
		t.Error("memory measured although no threshold is set")
		return 0, nil
	}
	mgr := sys.Root.Spawn(Props(Config{Interval: 10 * time.Millisecond, RSS: rss, Pools: []Pool{{
		Name: "p", PID: pid, Limits: lifecycle.Limits{IdleTTL: time.Minute},
	}}}))
	require.Eventually(t, func() bool { return len(fp.got()) >= 2 }, 5*time.Second, 5*time.Millisecond,
		"rounds repeat on their own every interval")
	require.Equal(t, lifecycle.ReasonIdle, fp.got()[0].Reason)
	require.NoError(t, sys.Root.StopFuture(mgr).Wait())
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
}
