package procreg

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
)

func startActor(t *testing.T, flush time.Duration) (*actor.ActorSystem, *Client, *Store, *actor.PID) {
	return startActorSync(t, flush, 0)
}

func startActorSync(t *testing.T, flush, syncDelay time.Duration) (*actor.ActorSystem, *Client, *Store, *actor.PID) {
	t.Helper()
	s, _, err := OpenStore(filepath.Join(t.TempDir(), "processes.db"), nil)
	require.NoError(t, err)
	sys := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10 * time.Millisecond))
	pid := sys.Root.Spawn(Props(Config{Store: s, RunID: "run1", HostPID: 42, HostStart: 7, FlushDelay: flush, SyncDelay: syncDelay}))
	t.Cleanup(func() {
		_ = sys.Root.StopFuture(pid).Wait()
		sys.Shutdown()
	})
	return sys, &Client{Root: sys.Root, PID: pid}, s, pid
}

func TestActorRecordsRunAndEntriesDurably(t *testing.T) {
	_, c, s, _ := startActor(t, time.Hour) // only Sync flushes
	ctx := context.Background()
	c.Reserve(Entry{WorkerID: "w1", Generation: 1, Pool: "p", Script: "/s/grpc_server.py"})
	c.Activate(EntryKey("run1", "w1", 1), 100, 100)
	c.Reserve(Entry{WorkerID: "w2", Generation: 2})
	require.NoError(t, c.Sync(ctx))

	snap, err := s.Read() // straight from the file: Sync means on disk
	require.NoError(t, err)
	require.Equal(t, []Run{{RunID: "run1", HostPID: 42, HostStart: 7, StartedAt: snap.Runs[0].StartedAt}}, snap.Runs)
	require.Len(t, snap.Entries, 2)
	byKey := map[string]Entry{}
	for _, e := range snap.Entries {
		byKey[e.Key] = e
	}
	w1 := byKey["run1/w1/1"]
	require.Equal(t, Active, w1.Status)
	require.Equal(t, 100, w1.OSPid)
	require.Equal(t, 42, w1.HostPID)
	require.Equal(t, int64(7), w1.HostStart)
	require.Equal(t, "/s/grpc_server.py", w1.Script)
	require.False(t, w1.ReservedAt.IsZero())
	require.Equal(t, Reserved, byKey["run1/w2/2"].Status)

	c.Remove("run1/w1/1")
	snap, err = c.Read(ctx)
	require.NoError(t, err)
	require.Len(t, snap.Entries, 1, "Read flushes first")

	require.NoError(t, c.Forget(ctx, nil, []string{"run1"}))
	snap, err = s.Read()
	require.NoError(t, err)
	require.Empty(t, snap.Entries)
	require.Empty(t, snap.Runs)
}

func TestActorFlushesOnItsOwnAndOnStop(t *testing.T) {
	sys, c, s, pid := startActor(t, 5*time.Millisecond)
	c.Reserve(Entry{WorkerID: "w1", Generation: 1})
	require.Eventually(t, func() bool {
		snap, err := s.Read()
		return err == nil && len(snap.Entries) == 1
	}, 5*time.Second, 5*time.Millisecond, "the batch timer writes without a Sync")

	// A change received before a (poison) stop is written by the stop.
	c.Reserve(Entry{WorkerID: "w2", Generation: 1})
	require.NoError(t, sys.Root.PoisonFuture(pid).Wait())
	snap, err := s.Read()
	require.NoError(t, err)
	require.Len(t, snap.Entries, 2)
}

func TestConcurrentSyncsAllAnswered(t *testing.T) {
	_, c, s, _ := startActor(t, 20*time.Millisecond)
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			c.Reserve(Entry{WorkerID: "w", Generation: uint64(i)})
			errs <- c.Sync(context.Background())
		}()
	}
	for range 16 {
		require.NoError(t, <-errs)
	}
	snap, err := s.Read()
	require.NoError(t, err)
	require.Len(t, snap.Entries, 16)
}

// Syncs that arrive together share one write (a group commit): a pool of
// workers starting at once pays one transaction, not one each.
func TestSyncsAreGroupCommitted(t *testing.T) {
	_, c, s, _ := startActorSync(t, time.Hour, 200*time.Millisecond)
	before := s.writes.Load() // the run record
	start := make(chan struct{})
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			<-start
			c.Reserve(Entry{WorkerID: "w", Generation: uint64(i)})
			errs <- c.Sync(context.Background())
		}()
	}
	close(start)
	for range 16 {
		require.NoError(t, <-errs)
	}
	snap, err := s.Read()
	require.NoError(t, err)
	require.Len(t, snap.Entries, 16, "every Sync answered after its change was on disk")
	require.LessOrEqual(t, s.writes.Load()-before, int64(4), "16 Syncs within the window share their writes")

	// A Sync with nothing unwritten is answered at once, without a write.
	n := s.writes.Load()
	require.NoError(t, c.Sync(context.Background()))
	require.Equal(t, n, s.writes.Load())
}
