package worker

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/controlpb"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// fakeControl answers Status as its mode says: the call still running
// until release, no answer at all (a blocked loop), or UNIMPLEMENTED.
type fakeControl struct {
	mode     string // "running", "hang", "unimplemented"
	released atomic.Bool
	probes   atomic.Int64
}

func (f *fakeControl) Status(ctx context.Context, _ *controlpb.StatusRequest, _ ...grpc.CallOption) (*controlpb.StatusResponse, error) {
	f.probes.Add(1)
	switch f.mode {
	case "hang":
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case "unimplemented":
		return nil, status.Error(codes.Unimplemented, "no WorkerControl")
	}
	if f.released.Load() {
		return &controlpb.StatusResponse{}, nil
	}
	return &controlpb.StatusResponse{Running: []*controlpb.RunningCall{{CallId: "p-w1-3-1", Cancelled: true}}}, nil
}

// settleExecutor is an executor on the fake bridge with a fake WorkerControl
// and a kill that closes it (as the process's death would).
func settleExecutor(t *testing.T, ctl *fakeControl, grace time.Duration) (*Executor, *recorder, *atomic.Int64) {
	t.Helper()
	base, _, _ := newTestExecutor(t, nil) // for its connection to the fake bridge
	rec := newRecorder()
	kills := new(atomic.Int64)
	var x *Executor
	var once sync.Once
	x = NewExecutor(ExecutorConfig{WorkerID: "p-w1", Pool: "p", Generation: 3, Client: base.client, Sender: rec,
		PoolPID: poolPID, Control: ctl, CancelGrace: grace, ExitWait: 10 * time.Millisecond,
		Kill: func(string) {
			kills.Add(1)
			once.Do(func() { go x.Close(sperr.New(sperr.CodeWorkerExit, "killed")) })
		}})
	t.Cleanup(func() {
		x.Close(sperr.New(sperr.CodeShutdown, "test over"))
		assert.True(t, x.Wait(5*time.Second))
	})
	return x, rec, kills
}

func kinds(msgs []any) (replies, dones, unresponsive, responsive int) {
	for _, m := range msgs {
		switch v := m.(type) {
		case *poolpb.Result:
			replies++
		case *CallDone:
			dones++
		case *Responsive:
			if v.OK {
				responsive++
			} else {
				unresponsive++
			}
		}
	}
	return
}

func TestSettleHoldsTheSlotUntilTheToolReturns(t *testing.T) {
	ctl := &fakeControl{mode: "running"}
	x, rec, kills := settleExecutor(t, ctl, 5*time.Second)
	require.NoError(t, x.Submit(call(1, "block", `{}`, false)))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	x.Cancel(1)
	msgs := rec.waitFor(t, 1)
	_, ok := msgs[0].(*poolpb.Result)
	require.True(t, ok, "the caller is answered at once, before the slot is freed: %T", msgs[0])
	require.Eventually(t, func() bool { return ctl.probes.Load() >= 3 }, 5*time.Second, time.Millisecond)
	replies, dones, _, _ := kinds(rec.waitFor(t, 1))
	assert.Equal(t, 1, replies)
	assert.Zero(t, dones, "the slot is held while the tool runs")
	ctl.released.Store(true)
	rec.waitFor(t, 2)
	replies, dones, unresp, _ := kinds(rec.waitFor(t, 2))
	assert.Equal(t, 1, replies)
	assert.Equal(t, 1, dones)
	assert.Zero(t, unresp)
	assert.Zero(t, kills.Load(), "a tool that returns within the grace keeps its worker")
}

func TestSettleKillsAToolStillRunningAfterTheGrace(t *testing.T) {
	ctl := &fakeControl{mode: "running"}
	x, rec, kills := settleExecutor(t, ctl, 150*time.Millisecond)
	require.NoError(t, x.Submit(call(1, "block", `{}`, false)))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	x.Cancel(1)
	require.Eventually(t, func() bool { return kills.Load() == 1 }, 5*time.Second, time.Millisecond)
	replies, dones, _, _ := kinds(rec.waitFor(t, 2))
	assert.Equal(t, 1, replies, "exactly one reply")
	assert.Equal(t, 1, dones, "exactly one CallDone, after the kill")
}

func TestSettleTakesAnUnresponsiveWorkerOutOfRotation(t *testing.T) {
	ctl := &fakeControl{mode: "hang"}
	x, rec, kills := settleExecutor(t, ctl, 300*time.Millisecond)
	require.NoError(t, x.Submit(call(1, "block", `{}`, false)))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	x.Cancel(1)
	require.Eventually(t, func() bool { return kills.Load() == 1 }, 5*time.Second, time.Millisecond)
	msgs := rec.waitFor(t, 3)
	replies, dones, unresp, resp := kinds(msgs)
	assert.Equal(t, 1, replies)
	assert.Equal(t, 1, dones)
	assert.Equal(t, 1, unresp, "the pool hears the worker is unresponsive")
	assert.Zero(t, resp, "a killed worker is not reported responsive again")
}

func TestSettleFallsBackToPingWithoutWorkerControl(t *testing.T) {
	ctl := &fakeControl{mode: "unimplemented"}
	x, rec, kills := settleExecutor(t, ctl, 5*time.Second)
	require.NoError(t, x.Submit(call(1, "block", `{}`, false)))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	x.Cancel(1)
	replies, dones, _, _ := kinds(rec.waitFor(t, 2))
	assert.Equal(t, 1, replies)
	assert.Equal(t, 1, dones, "an upstream worker that answers Ping is taken at its word")
	assert.Zero(t, kills.Load())
}

func TestNoSettleForCallsThatFinishOrFailOnTheirOwn(t *testing.T) {
	ctl := &fakeControl{mode: "running"}
	x, rec, kills := settleExecutor(t, ctl, time.Minute)
	require.NoError(t, x.Submit(call(1, "ok", `{"n":1}`, false)))
	require.NoError(t, x.Submit(call(2, "fail", `{}`, false)))
	replies, dones, _, _ := kinds(rec.waitFor(t, 4))
	assert.Equal(t, 2, replies)
	assert.Equal(t, 2, dones)
	assert.Zero(t, ctl.probes.Load(), "nobody left: no probe")
	assert.Zero(t, kills.Load())
}
