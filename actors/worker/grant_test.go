package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// localCall is call(...) for a caller with a Local reply channel.
func localCall(key uint64, tool, args string) (Call, Local) {
	c := call(key, tool, args, false)
	c.ReplyTo, c.Local = nil, make(Local, LocalBuffer)
	return c, c.Local
}

func TestAGrantedCallRunsOnTheCallersGoroutine(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c, local := localCall(1, "ok", `{"n": 7}`)
	require.NoError(t, x.Reserve(c))
	require.Equal(t, 1, x.InFlight(), "reserved: a cancel or a close reaches it")
	x.RunGranted(1)
	// Both are there when RunGranted returns: CallDone to the pool (first),
	// the reply on the caller's channel.
	done, ok := rec.All()[0].(*CallDone)
	require.True(t, ok)
	require.Nil(t, done.Err)
	require.Len(t, local, 1)
	res := (<-local).(*poolpb.Result)
	assert.JSONEq(t, `{"n":7}`, string(res.GetResultJson()))
	assert.Zero(t, x.InFlight())
}

func TestReserveRefusesWhatItCannotRun(t *testing.T) {
	x, _, _ := newTestExecutor(t, nil)
	require.Error(t, x.Reserve(call(1, "ok", `{}`, false)), "a call without a Local")
	c, _ := localCall(2, "ok", `{}`)
	c.Req.Stream = true
	require.Error(t, x.Reserve(c), "a stream")
	c, _ = localCall(3, "ok", `{}`)
	x.Close(sperr.New(sperr.CodeShutdown, "closed"))
	require.ErrorIs(t, x.Reserve(c), ErrClosed)
}

// A worker that stops between the grant and its run: the call is answered
// with the close's cause, once, and Wait waited for it.
func TestAGrantClosedBeforeItRunsIsAnsweredWithTheCause(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c, local := localCall(1, "ok", `{}`)
	require.NoError(t, x.Reserve(c))
	x.Close(sperr.New(sperr.CodeWorkerExit, "the process died"))
	require.False(t, x.Wait(50*time.Millisecond), "Wait waits for the granted call")
	x.RunGranted(1)
	require.True(t, x.Wait(time.Second))
	res := (<-local).(*poolpb.Result)
	require.Equal(t, sperr.CodeWorkerExit, res.GetError().GetCode())
	require.Empty(t, local)
	_, dones, _, _ := kinds(rec.All())
	require.Equal(t, 1, dones)
}

// A granted call whose caller leaves: RunGranted returns with the answer
// at once, while the slot stays held until the tool has returned.
func TestAGrantedCallWhoseCallerLeftSettlesElsewhere(t *testing.T) {
	ctl := &fakeControl{mode: "running"}
	x, rec, kills := settleExecutor(t, ctl, 5*time.Second)
	c, local := localCall(1, "block", `{}`)
	require.NoError(t, x.Reserve(c))
	ran := make(chan struct{})
	go func() { defer close(ran); x.RunGranted(1) }()
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	x.Cancel(1)
	<-ran // returned although the tool still runs
	res := (<-local).(*poolpb.Result)
	require.Equal(t, sperr.CodeCancelled, res.GetError().GetCode())
	require.Eventually(t, func() bool { return ctl.probes.Load() >= 2 }, 5*time.Second, time.Millisecond)
	_, dones, _, _ := kinds(rec.All())
	require.Zero(t, dones, "the slot is held while the tool runs")
	ctl.released.Store(true)
	rec.WaitUntil(t, "the CallDone", func(l []any) bool { _, d, _, _ := kinds(l); return d == 1 })
	require.Empty(t, local, "exactly one reply")
	require.Zero(t, kills.Load())
}
