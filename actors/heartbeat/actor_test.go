package heartbeat

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

const wait = 5 * time.Second // bound of every Eventually (generous: correctness, not speed)

// frozen is a worker that never answers: its ping ends only with its ctx.
func frozen(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// spawn starts a monitor and stops it at the end of the test (before the
// system is shut down: cleanups run last-registered first).
func spawn(t *testing.T, sys *actor.ActorSystem, o Options) *actor.PID {
	t.Helper()
	pid := sys.Root.Spawn(Props(o))
	t.Cleanup(func() { _ = sys.Root.StopFuture(pid).Wait() })
	return pid
}

func status(t *testing.T, sys *actor.ActorSystem, pid *actor.PID) *Status {
	t.Helper()
	res, err := sys.Root.RequestFuture(pid, &GetStatus{}, wait).Result()
	require.NoError(t, err)
	s, ok := res.(*Status)
	require.True(t, ok, "reply %T", res)
	return s
}

// recorder collects the events a monitor reports.
type recorder struct{ testutil.Recorder[Event] }

func (r *recorder) add(e Event) { r.Add(e) }

func (r *recorder) all() []Event { return r.All() }

func (r *recorder) count(k EventKind) int { return r.Count(func(e Event) bool { return e.Kind == k }) }

// notifyProbe is a worker stand-in that forwards the Lost it receives to a
// channel. sync makes sure every message enqueued to it before the call
// was forwarded.
type notifyProbe struct {
	sys  *actor.ActorSystem
	pid  *actor.PID
	lost chan *Lost
}

type probeSync struct{}

func newNotifyProbe(t *testing.T, sys *actor.ActorSystem) *notifyProbe {
	t.Helper()
	p := &notifyProbe{sys: sys, lost: make(chan *Lost, 64)}
	p.pid = sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *Lost:
			p.lost <- m
		case *probeSync:
			c.Respond(&probeSync{})
		}
	}))
	t.Cleanup(func() { _ = sys.Root.StopFuture(p.pid).Wait() })
	return p
}

func (p *notifyProbe) received(t *testing.T) []*Lost {
	t.Helper()
	_, err := p.sys.Root.RequestFuture(p.pid, &probeSync{}, wait).Result()
	require.NoError(t, err)
	var out []*Lost
	for {
		select {
		case l := <-p.lost:
			out = append(out, l)
		default:
			return out
		}
	}
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHealthyWorkerIsPingedWithoutEvents(t *testing.T) {
	sys := testutil.NewSystem(t)
	var rec recorder
	var calls atomic.Int64
	pid := spawn(t, sys, Options{
		Config:   Config{Interval: 5 * time.Millisecond},
		WorkerID: "w1",
		Ping:     func(context.Context) error { calls.Add(1); return nil },
		OnEvent:  rec.add,
	})

	require.Eventually(t, func() bool { return status(t, sys, pid).Sent >= 5 }, wait, 5*time.Millisecond)
	s := status(t, sys, pid)
	require.Zero(t, s.Missed)
	require.Zero(t, s.Consecutive)
	require.False(t, s.Lost)
	require.False(t, s.LastOK.IsZero())
	require.GreaterOrEqual(t, calls.Load(), int64(s.Sent), "one ping per result")
	require.Empty(t, rec.all())
}

func TestDependentMonitorReportsLossOnce(t *testing.T) {
	sys := testutil.NewSystem(t)
	probe := newNotifyProbe(t, sys)
	var rec recorder
	pid := spawn(t, sys, Options{
		Config:   Config{Interval: 5 * time.Millisecond, Timeout: 20 * time.Millisecond, MaxMissed: 3},
		WorkerID: "w1",
		Ping:     frozen,
		Notify:   probe.pid,
		OnEvent:  rec.add,
	})

	var lost *Lost
	select {
	case lost = <-probe.lost:
	case <-time.After(wait):
		t.Fatal("no Lost reached Notify")
	}
	require.Equal(t, "w1", lost.WorkerID)
	require.Equal(t, 3, lost.Missed)
	require.ErrorIs(t, lost.Err, context.DeadlineExceeded)

	// Ten more pings, all missed: no second Lost.
	atLoss := status(t, sys, pid).Sent
	require.Eventually(t, func() bool { return status(t, sys, pid).Sent >= atLoss+10 }, wait, 5*time.Millisecond)
	require.Empty(t, probe.received(t), "Lost is sent once per loss")

	events := rec.all()
	require.GreaterOrEqual(t, len(events), 4)
	for i, want := range []struct {
		kind   EventKind
		missed int
	}{{EventMissed, 1}, {EventMissed, 2}, {EventMissed, 3}, {EventLost, 3}} {
		e := events[i]
		require.Equal(t, want.kind, e.Kind, "event %d", i)
		require.Equal(t, want.missed, e.Missed, "event %d", i)
		require.Equal(t, "w1", e.WorkerID)
		require.True(t, e.Dependent)
		require.ErrorIs(t, e.Err, context.DeadlineExceeded)
		require.False(t, e.At.IsZero())
	}
	for _, e := range events[4:] {
		require.Equal(t, EventMissed, e.Kind, "only misses follow the loss")
	}

	s := status(t, sys, pid)
	require.True(t, s.Lost)
	require.GreaterOrEqual(t, s.Consecutive, 13)
	require.Equal(t, s.Sent, s.Missed)
	require.True(t, s.LastOK.IsZero())
}

func TestIndependentMonitorReportsLossAndRecovery(t *testing.T) {
	sys := testutil.NewSystem(t)
	probe := newNotifyProbe(t, sys)
	var rec recorder
	var isFrozen atomic.Bool
	isFrozen.Store(true)
	pid := spawn(t, sys, Options{
		Config: Config{
			Interval: 5 * time.Millisecond, Timeout: 20 * time.Millisecond, MaxMissed: 3,
			Independent: true,
		},
		WorkerID: "w2",
		Ping: func(ctx context.Context) error {
			if isFrozen.Load() {
				return frozen(ctx)
			}
			return nil
		},
		Notify:  probe.pid,
		OnEvent: rec.add,
	})

	require.Eventually(t, func() bool { return rec.count(EventLost) == 1 }, wait, 5*time.Millisecond)
	require.True(t, status(t, sys, pid).Lost)

	isFrozen.Store(false)
	require.Eventually(t, func() bool { return rec.count(EventRecovered) == 1 }, wait, 5*time.Millisecond)
	s := status(t, sys, pid)
	require.False(t, s.Lost)
	require.Zero(t, s.Consecutive)
	require.False(t, s.LastOK.IsZero())
	require.Equal(t, 1, rec.count(EventLost))
	for _, e := range rec.all() {
		require.False(t, e.Dependent)
		if e.Kind == EventRecovered {
			require.NoError(t, e.Err)
			require.GreaterOrEqual(t, e.Missed, 3, "the misses the recovery ended")
		}
	}

	isFrozen.Store(true)
	require.Eventually(t, func() bool { return rec.count(EventLost) == 2 }, wait, 5*time.Millisecond,
		"one EventLost per loss")
	require.True(t, status(t, sys, pid).Lost)
	require.Empty(t, probe.received(t), "an independent monitor never tells the worker to stop")
}

func TestInitialDelayIsRespected(t *testing.T) {
	sys := testutil.NewSystem(t)
	first := make(chan time.Time, 1)
	const delay = 200 * time.Millisecond
	spawned := time.Now()
	pid := spawn(t, sys, Options{
		Config:   Config{Interval: 5 * time.Millisecond, InitialDelay: delay},
		WorkerID: "w1",
		Ping: func(context.Context) error {
			select {
			case first <- time.Now():
			default:
			}
			return nil
		},
	})

	select {
	case at := <-first:
		require.GreaterOrEqual(t, at.Sub(spawned), delay, "the first ping waited for the initial delay")
	case <-time.After(wait):
		t.Fatal("no ping after the initial delay")
	}
	require.Eventually(t, func() bool { return status(t, sys, pid).Sent > 0 }, wait, 10*time.Millisecond)
}

func TestStopCancelsABlockedPing(t *testing.T) {
	sys := testutil.NewSystem(t)
	entered := make(chan struct{})
	ended := make(chan error, 1)
	var once sync.Once
	pid := sys.Root.Spawn(Props(Options{
		Config:   Config{Timeout: 10 * time.Second},
		WorkerID: "w1",
		Ping: func(ctx context.Context) error {
			once.Do(func() { close(entered) })
			err := frozen(ctx)
			ended <- err
			return err
		},
	}))
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("no ping started")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- sys.Root.StopFuture(pid).Wait() }()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("stop did not end while a ping was blocked")
	}
	select {
	case err := <-ended:
		require.ErrorIs(t, err, context.Canceled, "the ping's ctx is cancelled by the stop")
	default:
		t.Fatal("stop returned before the ping ended")
	}
}

func TestStopGivesUpOnAPingerIgnoringItsContext(t *testing.T) {
	sys := testutil.NewSystem(t)
	var logs syncBuffer
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	pid := sys.Root.Spawn(Props(Options{
		Config:   Config{Timeout: 20 * time.Millisecond},
		WorkerID: "w1",
		Ping: func(context.Context) error {
			once.Do(func() { close(entered) })
			<-release // ignores its ctx
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	}))
	defer close(release) // lets the abandoned loop end before goleak looks
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("no ping started")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- sys.Root.StopFuture(pid).Wait() }()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(wait):
		t.Fatal("stop waited for a pinger that ignores its context")
	}
	require.Contains(t, logs.String(), "giving up")
	require.Contains(t, logs.String(), "level=WARN")
}

func TestPanicInPingCountsAsMiss(t *testing.T) {
	sys := testutil.NewSystem(t)
	var rec recorder
	errBoom := errors.New("boom error")
	var calls atomic.Int64
	pid := spawn(t, sys, Options{
		Config: Config{
			Interval: 5 * time.Millisecond, MaxMissed: 2, Independent: true,
		},
		WorkerID: "w1",
		Ping: func(context.Context) error {
			switch calls.Add(1) {
			case 1:
				panic("boom")
			case 2:
				panic(errBoom)
			}
			return nil
		},
		OnEvent: rec.add,
	})

	require.Eventually(t, func() bool { return rec.count(EventRecovered) == 1 }, wait, 5*time.Millisecond)
	events := rec.all()
	require.Len(t, events, 4)
	require.Equal(t, EventMissed, events[0].Kind)
	require.ErrorContains(t, events[0].Err, "panicked")
	require.ErrorContains(t, events[0].Err, "boom")
	require.Equal(t, EventMissed, events[1].Kind)
	require.ErrorIs(t, events[1].Err, errBoom)
	require.Equal(t, EventLost, events[2].Kind)
	require.Equal(t, 2, events[2].Missed)
	require.Equal(t, EventRecovered, events[3].Kind)

	s := status(t, sys, pid)
	require.Equal(t, 2, s.Missed)
	require.Zero(t, s.Consecutive)
	require.False(t, s.Lost)
}

func TestDependentLossWithoutNotify(t *testing.T) {
	sys := testutil.NewSystem(t)
	var rec recorder
	pid := spawn(t, sys, Options{
		Config:   Config{Interval: 5 * time.Millisecond, Timeout: 10 * time.Millisecond, MaxMissed: 1},
		WorkerID: "w1",
		Ping:     func(context.Context) error { return errors.New("unavailable") },
		OnEvent:  rec.add,
	})
	require.Eventually(t, func() bool { return rec.count(EventLost) == 1 }, wait, 5*time.Millisecond)
	require.True(t, status(t, sys, pid).Lost)
}

func TestMisconfiguredMonitorStopsItself(t *testing.T) {
	for name, o := range map[string]Options{
		"nil ping":         {WorkerID: "w1"},
		"negative timeout": {WorkerID: "w1", Ping: func(context.Context) error { return nil }, Config: Config{Timeout: -1}},
	} {
		t.Run(name, func(t *testing.T) {
			sys := testutil.NewSystem(t)
			var logs syncBuffer
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			pid := sys.Root.Spawn(Props(o))
			require.Eventually(t, func() bool {
				_, err := sys.Root.RequestFuture(pid, &GetStatus{}, time.Second).Result()
				return err != nil
			}, wait, 10*time.Millisecond)
			require.Contains(t, logs.String(), "level=ERROR")
		})
	}
}

func TestConfigDefaultsAndValidation(t *testing.T) {
	require.Equal(t, Config{Interval: 2 * time.Second, Timeout: 10 * time.Second, MaxMissed: 3},
		Config{}.WithDefaults())
	d := Config{}.WithDefaults()
	require.Zero(t, d.InitialDelay)
	require.False(t, d.Independent, "dependent by default")

	set := Config{
		Interval: time.Second, Timeout: 3 * time.Second, MaxMissed: 5,
		InitialDelay: time.Minute, Independent: true,
	}
	require.Equal(t, set, set.WithDefaults(), "set values are kept")

	require.NoError(t, Config{}.Validate())
	require.NoError(t, d.Validate())
	require.NoError(t, set.Validate())
	for name, c := range map[string]Config{
		"interval":      {Interval: -time.Second},
		"timeout":       {Timeout: -time.Second},
		"initial delay": {InitialDelay: -time.Millisecond},
		"max missed":    {MaxMissed: -1},
	} {
		err := c.Validate()
		require.Error(t, err, name)
		require.ErrorContains(t, err, name)
		require.Error(t, c.WithDefaults().Validate(), "WithDefaults keeps %s negative", name)
	}
}
