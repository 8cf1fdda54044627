package pool

import (
	"strconv"
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// TestRequestsQueuedBehindAStopAreAnswered: protoactor drops what is still
// in a stopped actor's mailbox; the pool's mailbox answers it instead, so a
// request sent while the pool stops gets exactly one reply (shutdown, or a
// dead letter once the pool is gone from the registry).
func TestRequestsQueuedBehindAStopAreAnswered(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 1})
	h.ready()
	callers := make([]*caller, 300)
	for i := range callers {
		callers[i] = newCaller(h.sys)
		defer callers[i].close()
	}
	h.sys.Root.Poison(h.pool)
	for i, c := range callers {
		h.sys.Root.RequestWithCustomSender(h.pool, exec(strconv.Itoa(i), "ok"), c.pid)
	}
	shutdown, dead := 0, 0
	for i, c := range callers {
		id := strconv.Itoa(i)
		testutil.Eventually(t, "a reply to "+id, func() bool { return len(c.all(id))+len(c.all("other")) > 0 })
	}
	for i, c := range callers {
		id := strconv.Itoa(i)
		got := append(c.all(id), c.all("other")...)
		require.Len(t, got, 1, "request %s: exactly one reply", id)
		switch m := got[0].(type) {
		case *poolpb.Result:
			require.Equal(t, sperr.CodeShutdown, m.GetError().GetCode(), "request %s", id)
			shutdown++
		case *actor.DeadLetterResponse:
			dead++
		default:
			t.Fatalf("request %s: %T", id, m)
		}
	}
	t.Logf("answered shutdown by the pool or its mailbox: %d, dead letters: %d", shutdown, dead)
}

// TestAHandedBackCallThePoolDoesNotKnowIsAnswered: an idempotent call whose
// worker died reaches a pool that does not know it (it restarted, or has
// stopped): the caller gets the worker's error instead of nothing.
func TestAHandedBackCallThePoolDoesNotKnowIsAnswered(t *testing.T) {
	h := startPool(t, newFakeEnv(), Config{Size: 1})
	h.ready()
	died := sperr.New(sperr.CodeWorkerExit, "python process ended (signal killed)")
	h.sys.Root.Send(h.pool, &wk.CallDone{WorkerID: "p-w1", Generation: 99, Key: 1 << 60, Err: died,
		Unanswered: true, ReplyTo: h.caller.pid, RequestID: "lost"})
	res := h.terminal("lost").(*poolpb.Result)
	require.Equal(t, sperr.CodeWorkerExit, res.GetError().GetCode())

	h.stopPool()
	c := newCaller(h.sys)
	defer c.close()
	// After the stop the pool's PID is gone: a handed-back call would go to
	// dead letters, where nobody answers it; the mailbox guard covers the
	// window in which it is still queued (TestRequestsQueuedBehindAStopAreAnswered).
	h.exactlyOnce("lost")
}
