package pool

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// localCaller is what the App's Execute does with a Local: run every grant,
// return the terminal reply. It fails the test on anything else and
// records how many grants it ran.
type localCaller struct {
	tb     testing.TB
	reply  wk.Local
	grants int
}

func newLocal(tb testing.TB) *localCaller {
	return &localCaller{tb: tb, reply: make(wk.Local, wk.LocalBuffer)}
}

func (l *localCaller) send(h *harness, req *poolpb.Execute) {
	h.sys.Root.Send(h.pool, &ExecuteLocal{Req: req, Reply: l.reply})
}

// next is the next message on the channel.
func (l *localCaller) next() any {
	l.tb.Helper()
	select {
	case m := <-l.reply:
		return m
	case <-time.After(testutil.Wait):
		l.tb.Fatal("no reply on the local channel")
		return nil
	}
}

// result runs grants until the terminal reply and returns it.
func (l *localCaller) result() *poolpb.Result {
	l.tb.Helper()
	for {
		switch m := l.next().(type) {
		case *wk.Grant:
			l.grants++
			m.Run()
		case *poolpb.Result:
			return m
		default:
			l.tb.Fatalf("unexpected %T on the local channel", m)
		}
	}
}

// nothingMore checks that the channel is empty: exactly one terminal reply.
func (l *localCaller) nothingMore() {
	l.tb.Helper()
	select {
	case m := <-l.reply:
		l.tb.Fatalf("a second message on the local channel: %T", m)
	default:
	}
}

func TestALocalCallerRunsItsCallOnItsOwnGoroutine(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 1})
	h.ready()
	l := newLocal(t)
	l.send(h, exec("l1", "ok"))
	g, ok := l.next().(*wk.Grant)
	require.True(t, ok, "a dispatched local call is granted to its caller")
	// Granted: the call holds the worker's slot before it runs.
	st := h.stats()
	require.EqualValues(t, 1, st.GetBusy())
	g.Run()
	res, ok := l.next().(*poolpb.Result)
	require.True(t, ok, "the terminal reply is on the channel when Run returns")
	require.Nil(t, res.GetError())
	require.Equal(t, `"ok"`, string(res.GetResultJson()))
	l.nothingMore()
	h.waitStats("the slot is free again", func(s *poolpb.Stats) bool { return s.GetBusy() == 0 && s.GetCompleted() == 1 })
}

func TestALocalCallThatQueuesIsGrantedWhenASlotFrees(t *testing.T) {
	env := newFakeEnv()
	h := startPool(t, env, Config{Size: 1})
	h.ready()
	h.send(exec("hold", "gate"))
	h.seen("hold")
	l := newLocal(t)
	l.send(h, exec("l2", "ok"))
	h.waitStats("the local call queued", func(s *poolpb.Stats) bool { return s.GetQueued() == 1 })
	env.open("hold")
	res := l.result()
	require.Nil(t, res.GetError())
	require.Equal(t, 1, l.grants)
	l.nothingMore()
	require.Nil(t, errOf(h.terminal("hold")), "the call that held the slot is answered too")
}

func TestAQueuedLocalCallIsAnsweredOnItsChannel(t *testing.T) {
	env := newFakeEnv()
	h := startPool(t, env, Config{Size: 1, QueueTimeout: 50 * time.Millisecond})
	h.ready()
	h.send(exec("hold", "gate"))
	h.seen("hold")
	l := newLocal(t)
	l.send(h, exec("l3", "ok"))
	res := l.result()
	requireCode(t, sperr.ErrQueueTimeout, sperr.FromProto(res.GetError()))
	require.Zero(t, l.grants)
	l.nothingMore()
	env.open("hold")
}

func TestCancellingAGrantedLocalCallEndsItsRun(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 1})
	h.ready()
	l := newLocal(t)
	l.send(h, exec("l4", "block"))
	g, ok := l.next().(*wk.Grant)
	require.True(t, ok)
	// The cancel reaches the call even before its caller runs it: the
	// executor has it registered from the grant on.
	h.sys.Root.Send(h.pool, &poolpb.Cancel{RequestId: "l4"})
	h.waitStats("the cancel reached the pool", func(s *poolpb.Stats) bool { return s.GetCancelled() == 1 })
	g.Run()
	res, ok := l.next().(*poolpb.Result)
	require.True(t, ok)
	requireCode(t, sperr.ErrCancelled, sperr.FromProto(res.GetError()))
	l.nothingMore()
	h.waitStats("the slot is free again", func(s *poolpb.Stats) bool { return s.GetBusy() == 0 })
}

func TestAnIdempotentLocalCallIsGrantedAgainAfterItsWorkerDies(t *testing.T) {
	env := newFakeEnv()
	h := startPool(t, env, Config{Size: 2})
	h.ready()
	l := newLocal(t)
	req := exec("l5", "gate")
	req.Idempotent = true
	l.send(h, req)
	g, ok := l.next().(*wk.Grant)
	require.True(t, ok)
	done := make(chan struct{})
	go func() { defer close(done); g.Run() }()
	first := h.seen("l5")
	h.crash(first.worker)
	<-done
	// The dead worker handed the call back; the pool grants it again, on
	// the other worker.
	g2, ok := l.next().(*wk.Grant)
	require.True(t, ok, "the retry is granted to the same caller")
	require.NotEqual(t, first.worker, g2.Exec.WorkerID())
	env.open("l5")
	g2.Run()
	res, ok := l.next().(*poolpb.Result)
	require.True(t, ok)
	require.Nil(t, res.GetError())
	l.nothingMore()
	require.EqualValues(t, 1, h.stats().GetRetried())
}

func TestALocalStreamIsRefused(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 1})
	h.ready()
	l := newLocal(t)
	h.sys.Root.Send(h.pool, &ExecuteLocal{Req: &poolpb.Execute{RequestId: "s1", Tool: "stream", Stream: true}, Reply: l.reply})
	select {
	case m := <-l.reply:
		c, ok := m.(*poolpb.Chunk)
		require.True(t, ok, "a stream's terminal reply is a final chunk: %T", m)
		requireCode(t, sperr.ErrInvalidArgument, sperr.FromProto(c.GetError()))
	case <-time.After(testutil.Wait):
		t.Fatal("no reply")
	}
	l.nothingMore()
}

// Local calls sent while the pool stops get exactly one answer: shutdown,
// from the pool or its mailbox guard, or they become dead letters once the
// pool is gone from the registry (which the App answers: answerLost).
func TestLocalCallsQueuedBehindAStopAreAnswered(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 1})
	h.ready()
	dead := testutil.NewRecorder[string]()
	sub := h.sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			if m, ok := dl.Message.(*ExecuteLocal); ok {
				dead.Add(m.Req.GetRequestId())
			}
		}
	})
	defer h.sys.EventStream.Unsubscribe(sub)
	const n = 300
	locals := make([]*localCaller, n)
	h.sys.Root.Poison(h.pool)
	for i := range locals {
		locals[i] = newLocal(t)
		locals[i].send(h, exec(strconv.Itoa(i), "ok"))
	}
	answered := 0
	for i, l := range locals {
		id := strconv.Itoa(i)
		var got any
		testutil.Eventually(t, "an answer to "+id, func() bool {
			select {
			case got = <-l.reply:
				return true
			default:
				return slices.Contains(dead.All(), id)
			}
		})
		if got == nil {
			continue // a dead letter
		}
		answered++
		res, ok := got.(*poolpb.Result)
		require.True(t, ok, "request %s: %T", id, got)
		if res.GetError() != nil {
			require.Equal(t, sperr.CodeShutdown, res.GetError().GetCode(), "request %s", id)
		}
		require.NotContains(t, dead.All(), id, "request %s answered and dead-lettered", id)
		l.nothingMore()
	}
	t.Logf("answered by the pool or its mailbox: %d, dead letters: %d", answered, len(dead.All()))
}

// A local call whose request, or whose handed-back retry, became a dead
// letter is answered no_workers (or with the worker's error); a handed-back
// call from a PID caller too; other dead letters are left alone.
func TestLostLocalCallsAreAnswered(t *testing.T) {
	sys := testutil.NewSystem(t)
	gone := actor.NewPID("nonhost", "snakepit-x/runtime/pool-p")
	reply := make(wk.Local, wk.LocalBuffer)
	AnswerLost(sys.Root, &actor.DeadLetterEvent{PID: gone, Message: &ExecuteLocal{Req: &poolpb.Execute{RequestId: "r1"}, Reply: reply}})
	res := (<-reply).(*poolpb.Result)
	require.Equal(t, "r1", res.GetRequestId())
	require.Equal(t, sperr.CodeNoWorkers, res.GetError().GetCode())

	died := sperr.New(sperr.CodeWorkerExit, "python process ended")
	AnswerLost(sys.Root, &actor.DeadLetterEvent{PID: gone, Message: &wk.CallDone{Unanswered: true, Local: reply, RequestID: "r2", Err: died}})
	res = (<-reply).(*poolpb.Result)
	require.Equal(t, "r2", res.GetRequestId())
	require.Equal(t, sperr.CodeWorkerExit, res.GetError().GetCode())

	AnswerLost(sys.Root, &actor.DeadLetterEvent{PID: gone, Message: &wk.CallDone{Local: reply, RequestID: "r3"}}) // answered already
	AnswerLost(sys.Root, &actor.DeadLetterEvent{PID: gone, Message: &poolpb.Execute{RequestId: "r4"}})
	AnswerLost(sys.Root, "not a dead letter")
	require.Empty(t, reply)

	c := newCaller(sys)
	defer c.close()
	AnswerLost(sys.Root, &actor.DeadLetterEvent{PID: gone, Message: &wk.CallDone{Unanswered: true, ReplyTo: c.pid, RequestID: "r5"}})
	testutil.Eventually(t, "the PID caller's answer", func() bool { return len(c.all("r5")) == 1 })
	require.Equal(t, sperr.CodeNoWorkers, errOf(c.all("r5")[0]).Code)
}
