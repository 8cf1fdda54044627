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
	g, err := x.Reserve(c)
	require.NoError(t, err)
	require.Equal(t, 1, x.InFlight(), "reserved: a cancel or a close reaches it")
	g.Run()
	// Both are there when Run returns: CallDone to the pool (first),
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
	_, err := x.Reserve(call(1, "ok", `{}`, false))
	require.Error(t, err, "a call without a Local")
	c, _ := localCall(2, "ok", `{}`)
	c.Req.Stream = true
	_, err = x.Reserve(c)
	require.Error(t, err, "a stream")
	c, _ = localCall(3, "ok", `{}`)
	x.Close(sperr.New(sperr.CodeShutdown, "closed"))
	_, err = x.Reserve(c)
	require.ErrorIs(t, err, ErrClosed)
}

// A worker that stops between the grant and its run: the call is answered
// with the close's cause, once, and Wait waited for it.
func TestAGrantClosedBeforeItRunsIsAnsweredWithTheCause(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c, local := localCall(1, "ok", `{}`)
	g, err := x.Reserve(c)
	require.NoError(t, err)
	x.Close(sperr.New(sperr.CodeWorkerExit, "the process died"))
	require.False(t, x.Wait(50*time.Millisecond), "Wait waits for the granted call")
	g.Run()
	require.True(t, x.Wait(time.Second))
	res := (<-local).(*poolpb.Result)
	require.Equal(t, sperr.CodeWorkerExit, res.GetError().GetCode())
	require.Empty(t, local)
	_, dones, _, _ := kinds(rec.All())
	require.Equal(t, 1, dones)
}

// A granted call whose caller leaves: Run returns with the answer
// at once, while the slot stays held until the tool has returned.
func TestAGrantedCallWhoseCallerLeftSettlesElsewhere(t *testing.T) {
	ctl := &fakeControl{mode: "running"}
	x, rec, kills := settleExecutor(t, ctl, 5*time.Second)
	c, local := localCall(1, "block", `{}`)
	g, err := x.Reserve(c)
	require.NoError(t, err)
	ran := make(chan struct{})
	go func() { defer close(ran); g.Run() }()
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
