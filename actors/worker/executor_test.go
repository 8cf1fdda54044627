package worker

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// fakeBridge is a BridgeService whose tools behave by name.
type fakeBridge struct {
	bridgepb.UnimplementedBridgeServiceServer
}

func (fakeBridge) ExecuteTool(ctx context.Context, r *bridgepb.ExecuteToolRequest) (*bridgepb.ExecuteToolResponse, error) {
	switch r.GetToolName() {
	case "ok":
		return &bridgepb.ExecuteToolResponse{Success: true, Result: &anypb.Any{
			TypeUrl: "type.googleapis.com/snakepit.map", Value: []byte(`{"n":` + string(r.GetParameters()["n"].GetValue()) + `}`)}}, nil
	case "binary":
		return &bridgepb.ExecuteToolResponse{Success: true, BinaryResult: []byte{1, 2, 3},
			Result: &anypb.Any{TypeUrl: "type.googleapis.com/snakepit.binary"}}, nil
	case "empty_binary": // as the Python bridge sends b"": no binary_result, the Any describes it
		return &bridgepb.ExecuteToolResponse{Success: true,
			Result: &anypb.Any{TypeUrl: "type.googleapis.com/snakepit.binary", Value: []byte(`{"size":0}`)}}, nil
	case "fail":
		return &bridgepb.ExecuteToolResponse{Success: false, ErrorMessage: `{"type":"KeyError","message":"'x'","traceback":"tb"}`}, nil
	default: // "block"
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

func (fakeBridge) ExecuteStreamingTool(r *bridgepb.ExecuteToolRequest, s grpc.ServerStreamingServer[bridgepb.ToolChunk]) error {
	for i := 1; i <= 3; i++ {
		if err := s.Send(&bridgepb.ToolChunk{ChunkId: r.GetToolName() + "-" + string(rune('0'+i)), Data: []byte{byte(i)}}); err != nil {
			return err
		}
	}
	if r.GetToolName() == "block" {
		<-s.Context().Done()
		return s.Context().Err()
	}
	return s.Send(&bridgepb.ToolChunk{ChunkId: "final", IsFinal: true})
}

// recorder is a Sender that keeps what it was asked to send.
type recorder struct{ testutil.Recorder[any] }

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) Send(_ *actor.PID, msg any) { r.Add(msg) }

// waitFor waits until n messages were sent and returns them.
func (r *recorder) waitFor(t *testing.T, n int) []any {
	t.Helper()
	return r.WaitFor(t, n)
}

var (
	callerPID = actor.NewPID("test", "caller")
	poolPID   = actor.NewPID("test", "pool")
)

// newTestExecutor serves fakeBridge on a unix socket and returns an
// executor on it; stop stops the server.
func newTestExecutor(t *testing.T, exit func(time.Duration) (ExitInfo, bool)) (*Executor, *recorder, func()) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "b.sock")
	lis, err := net.Listen("unix", sock)
	require.NoError(t, err)
	srv := grpc.NewServer()
	bridgepb.RegisterBridgeServiceServer(srv, fakeBridge{})
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	if exit == nil {
		exit = func(time.Duration) (ExitInfo, bool) { return ExitInfo{}, false }
	}
	rec := newRecorder()
	x := NewExecutor(ExecutorConfig{WorkerID: "p-w1", Pool: "p", Generation: 3,
		Client: bridgepb.NewBridgeServiceClient(conn), Sender: rec, PoolPID: poolPID, Exit: exit, ExitWait: time.Second})
	var once sync.Once
	stop := func() { once.Do(func() { srv.Stop() }) }
	t.Cleanup(func() {
		x.Close(sperr.New(sperr.CodeShutdown, "test over"))
		assert.True(t, x.Wait(5*time.Second))
		stop()
		_ = conn.Close()
	})
	return x, rec, stop
}

func call(key uint64, tool string, args string, stream bool) Call {
	return Call{Key: key, ReplyTo: callerPID, Req: &poolpb.Execute{RequestId: "r", Tool: tool, ArgsJson: []byte(args), Stream: stream}}
}

// replyAndDone splits a finished call's two messages. The pool hears
// CallDone before the caller gets its reply, so the worker's slot is free
// by the time the caller can call again.
func replyAndDone(t *testing.T, msgs []any) (any, *CallDone) {
	t.Helper()
	require.Len(t, msgs, 2)
	done, ok := msgs[0].(*CallDone)
	require.True(t, ok, "the pool hears CallDone before the reply, got %T", msgs[0])
	return msgs[1], done
}

func TestExecutorUnaryResults(t *testing.T) {
	cases := []struct {
		name, tool, args string
		check            func(t *testing.T, r *poolpb.Result, d *CallDone)
	}{
		{"json result", "ok", `{"n": 7}`, func(t *testing.T, r *poolpb.Result, d *CallDone) {
			assert.Nil(t, r.GetError())
			assert.JSONEq(t, `{"n":7}`, string(r.GetResultJson()))
			assert.Equal(t, "p-w1", r.GetWorkerId())
			assert.Nil(t, d.Err)
		}},
		{"binary result", "binary", `{}`, func(t *testing.T, r *poolpb.Result, d *CallDone) {
			assert.True(t, r.GetIsBinary())
			assert.Equal(t, []byte{1, 2, 3}, r.GetBinaryResult())
		}},
		{"empty binary result", "empty_binary", `{}`, func(t *testing.T, r *poolpb.Result, d *CallDone) {
			assert.True(t, r.GetIsBinary())
			assert.Empty(t, r.GetBinaryResult(), "the description is not the data")
			assert.JSONEq(t, `{"size":0}`, r.GetMetadata()["binary_info"])
		}},
		{"python error", "fail", `{}`, func(t *testing.T, r *poolpb.Result, d *CallDone) {
			e := sperr.FromProto(r.GetError())
			assert.ErrorIs(t, e, sperr.ErrPythonException)
			assert.Equal(t, "KeyError", e.PythonType)
			assert.Equal(t, "p-w1", e.WorkerID)
			require.NotNil(t, d.Err)
			assert.Equal(t, sperr.CodePythonException, d.Err.Code)
		}},
		{"arguments not an object", "ok", `[1]`, func(t *testing.T, r *poolpb.Result, d *CallDone) {
			assert.ErrorIs(t, sperr.FromProto(r.GetError()), sperr.ErrInvalidArgument)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, rec, _ := newTestExecutor(t, nil)
			require.NoError(t, x.Submit(call(1, c.tool, c.args, false)))
			reply, done := replyAndDone(t, rec.waitFor(t, 2))
			assert.Equal(t, uint64(1), done.Key)
			assert.Equal(t, uint64(3), done.Generation)
			c.check(t, reply.(*poolpb.Result), done)
		})
	}
}

func TestExecutorCancelAnswersOnce(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	require.NoError(t, x.Submit(call(9, "block", `{}`, false)))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	assert.True(t, x.Cancel(9))
	reply, _ := replyAndDone(t, rec.waitFor(t, 2))
	assert.ErrorIs(t, sperr.FromProto(reply.(*poolpb.Result).GetError()), sperr.ErrCancelled)
	assert.False(t, x.Cancel(9), "a finished call is gone")
	assert.Equal(t, 0, x.InFlight())
}

func TestExecutorDeadline(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c := call(1, "block", `{}`, false)
	c.Req.DeadlineUnixNano = time.Now().Add(50 * time.Millisecond).UnixNano()
	require.NoError(t, x.Submit(c))
	reply, _ := replyAndDone(t, rec.waitFor(t, 2))
	assert.ErrorIs(t, sperr.FromProto(reply.(*poolpb.Result).GetError()), sperr.ErrDeadlineExceeded)
}

// TestCallStateCause: the cause a call is answered with is the first thing
// that ended its context — context.WithCancelCause's rule, kept beside one
// context.
func TestCallStateCause(t *testing.T) {
	cancelled := sperr.New(sperr.CodeCancelled, "by the caller")
	shutdown := sperr.New(sperr.CodeShutdown, "closing")
	past := time.Now().Add(-time.Second)
	for _, tc := range []struct {
		name     string
		deadline time.Time
		causes   []*sperr.Error
		want     *sperr.Error
	}{
		{"first cause wins", time.Time{}, []*sperr.Error{cancelled, shutdown}, cancelled},
		{"own end first: no cause", time.Time{}, []*sperr.Error{nil, cancelled}, nil},
		{"deadline first: no cause", past, []*sperr.Error{cancelled}, nil},
		{"not cancelled", time.Time{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &callState{}
			if tc.deadline.IsZero() {
				st.ctx, st.stop = context.WithCancel(context.Background())
			} else {
				st.ctx, st.stop = context.WithDeadline(context.Background(), tc.deadline)
			}
			defer st.stop()
			for _, c := range tc.causes {
				st.cancel(c)
			}
			assert.Same(t, tc.want, st.cause.Load())
			if len(tc.causes) > 0 || !tc.deadline.IsZero() {
				assert.Error(t, st.ctx.Err())
			} else {
				assert.NoError(t, st.ctx.Err())
			}
		})
	}
}

// TestExecutorCancelAfterDeadlineIsADeadline: a cancel that comes after the
// call's deadline passed does not change its answer.
func TestExecutorCancelAfterDeadlineIsADeadline(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c := call(2, "block", `{}`, false)
	c.Deadline = time.Now().Add(-time.Millisecond)
	c.Local = make(Local, LocalBuffer)
	g, err := x.Reserve(c)
	require.NoError(t, err)
	x.Cancel(2) // the deadline already ended the call's context
	g.Run()
	reply := (<-c.Local).(*poolpb.Result)
	assert.ErrorIs(t, sperr.FromProto(reply.GetError()), sperr.ErrDeadlineExceeded)
	require.Len(t, rec.waitFor(t, 1), 1) // the CallDone
}

func TestExecutorCloseAnswersEveryCallOnceAndRefusesNew(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	for k := uint64(1); k <= 5; k++ {
		require.NoError(t, x.Submit(call(k, "block", `{}`, false)))
	}
	require.Error(t, x.Submit(call(1, "ok", `{}`, false)), "duplicate key")
	require.Eventually(t, func() bool { return x.InFlight() == 5 }, 5*time.Second, time.Millisecond)
	x.Close(sperr.New(sperr.CodeShutdown, "stopping"))
	require.True(t, x.Wait(5*time.Second))
	msgs := rec.waitFor(t, 10)
	results, dones := map[uint64]int{}, 0
	for _, m := range msgs {
		switch v := m.(type) {
		case *poolpb.Result:
			assert.ErrorIs(t, sperr.FromProto(v.GetError()), sperr.ErrShutdown)
		case *CallDone:
			results[v.Key]++
			dones++
		}
	}
	assert.Len(t, msgs, 10, "one reply and one CallDone per call, nothing more")
	assert.Equal(t, 5, dones)
	for k, n := range results {
		assert.Equal(t, 1, n, "call %d", k)
	}
	assert.ErrorIs(t, x.Submit(call(6, "ok", `{}`, false)), ErrClosed)
}

func TestExecutorStream(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	require.NoError(t, x.Submit(call(1, "count", `{}`, true)))
	msgs := rec.waitFor(t, 5)
	require.Len(t, msgs, 5)
	for i, m := range msgs[:3] {
		ch := m.(*poolpb.Chunk)
		assert.Equal(t, []byte{byte(i + 1)}, ch.GetData())
		assert.False(t, ch.GetIsFinal())
	}
	assert.IsType(t, &CallDone{}, msgs[3], "the pool hears CallDone before the final chunk")
	assert.True(t, msgs[4].(*poolpb.Chunk).GetIsFinal())
}

// A stream with a credit window sends that many chunks, then waits for the
// caller's credit; the final chunk needs none.
func TestExecutorStreamWaitsForCredit(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c := call(1, "count", `{}`, true)
	c.Req.StreamWindow = 1
	require.NoError(t, x.Submit(c))
	rec.waitFor(t, 1)
	assert.Never(t, func() bool { return len(rec.All()) > 1 }, 200*time.Millisecond, 5*time.Millisecond,
		"no second chunk before the caller's credit")
	assert.False(t, x.Credit(99, 1), "no such call")
	require.True(t, x.Credit(1, 1))
	msgs := rec.waitFor(t, 2)
	assert.Equal(t, []byte{2}, msgs[1].(*poolpb.Chunk).GetData())
	assert.Never(t, func() bool { return len(rec.All()) > 2 }, 100*time.Millisecond, 5*time.Millisecond)
	require.True(t, x.Credit(1, 5))
	msgs = rec.waitFor(t, 5)
	assert.Equal(t, []byte{3}, msgs[2].(*poolpb.Chunk).GetData())
	assert.IsType(t, &CallDone{}, msgs[3])
	assert.True(t, msgs[4].(*poolpb.Chunk).GetIsFinal())
}

// A stream waiting for credit is still cancellable: it ends with one
// cancelled final chunk.
func TestExecutorStreamWaitingForCreditIsCancelled(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	c := call(1, "count", `{}`, true)
	c.Req.StreamWindow = 1
	require.NoError(t, x.Submit(c))
	rec.waitFor(t, 1)
	require.True(t, x.Cancel(1))
	msgs := rec.waitFor(t, 3)
	assert.IsType(t, &CallDone{}, msgs[1])
	last := msgs[2].(*poolpb.Chunk)
	assert.True(t, last.GetIsFinal())
	assert.ErrorIs(t, sperr.FromProto(last.GetError()), sperr.ErrCancelled)
}

func TestExecutorStreamClosedMidwayEndsWithOneErrorChunk(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	require.NoError(t, x.Submit(call(1, "block", `{}`, true)))
	rec.waitFor(t, 3)
	x.Close(sperr.New(sperr.CodeShutdown, "stopping"))
	require.True(t, x.Wait(5*time.Second))
	msgs := rec.waitFor(t, 5)
	require.Len(t, msgs, 5)
	assert.IsType(t, &CallDone{}, msgs[3])
	last := msgs[4].(*poolpb.Chunk)
	assert.True(t, last.GetIsFinal())
	assert.ErrorIs(t, sperr.FromProto(last.GetError()), sperr.ErrShutdown)
}

func TestExecutorServerGoneReportsWorkerExit(t *testing.T) {
	exited := make(chan struct{})
	exit := func(d time.Duration) (ExitInfo, bool) {
		select {
		case <-exited:
			return ExitInfo{OSPid: 77, ExitCode: -1, Signal: "killed"}, true
		case <-time.After(d):
			return ExitInfo{}, false
		}
	}
	x, rec, stop := newTestExecutor(t, exit)
	require.NoError(t, x.Submit(call(1, "block", `{}`, false)))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	close(exited)
	stop() // the "process" is gone: the connection breaks
	reply, done := replyAndDone(t, rec.waitFor(t, 2))
	e := sperr.FromProto(reply.(*poolpb.Result).GetError())
	assert.ErrorIs(t, e, sperr.ErrWorkerExit)
	assert.Equal(t, "killed", e.Details["signal"])
	assert.Equal(t, sperr.CodeWorkerExit, done.Err.Code)
}

func TestExecutorExecutionTTLAnswersTimeoutAndKills(t *testing.T) {
	x, rec, _ := newTestExecutor(t, nil)
	killed := make(chan string, 2)
	x.execTTL, x.kill = 50*time.Millisecond, func(reason string) { killed <- reason }

	require.NoError(t, x.Submit(call(1, "ok", `{"n":1}`, false)))
	res, done := replyAndDone(t, rec.waitFor(t, 2))
	require.Nil(t, res.(*poolpb.Result).GetError())
	require.Nil(t, done.Err)

	// Call 1's TTL timer, had it outlived the call, would fire before call
	// 2's: the first kill names the tool of the call that hung.
	require.NoError(t, x.Submit(call(2, "block", `{}`, false)))
	msgs := rec.waitFor(t, 4)
	e := sperr.FromProto(msgs[3].(*poolpb.Result).GetError())
	require.ErrorIs(t, e, sperr.ErrDeadlineExceeded)
	require.Contains(t, e.Message, "execution TTL")
	select {
	case reason := <-killed:
		require.Contains(t, reason, "execution TTL")
		require.Contains(t, reason, "call to block", "a call that ended in time kills nothing")
	case <-time.After(5 * time.Second):
		t.Fatal("the hung worker was not killed")
	}
	require.Empty(t, killed, "one kill, for the call that hung")
}

func TestExecutorRetryableCallIsLeftToThePool(t *testing.T) {
	exited := ExitInfo{OSPid: 42, ExitCode: -1, Signal: "killed"}
	x, rec, stop := newTestExecutor(t, func(time.Duration) (ExitInfo, bool) { return exited, true })
	c := call(1, "block", `{}`, false)
	c.Retryable = true
	require.NoError(t, x.Submit(c))
	require.Eventually(t, func() bool { return x.InFlight() == 1 }, 5*time.Second, time.Millisecond)
	stop() // the server dies under the call
	msgs := rec.waitFor(t, 1)
	done, ok := msgs[0].(*CallDone)
	require.True(t, ok, "no reply to the caller, only CallDone; got %T", msgs[0])
	require.True(t, done.Unanswered)
	require.ErrorIs(t, done.Err, sperr.ErrWorkerExit)
}
