package pool

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// Table tests of the pool core: each case is a sequence of events and the
// slot states and effects it must lead to. No actors, no clock: time is
// t0 plus what the case says.

// driver feeds one core and keeps what it asked for.
type driver struct {
	tb  testing.TB
	c   *core
	now time.Time
}

func newDriver(tb testing.TB, cfg Config) *driver {
	cfg.Name, cfg.Logger = "p", testutil.QuietLogger(tb)
	if cfg.Size == 0 {
		cfg.Size = 1
	}
	cfg.keyBase = func() uint64 { return 0 }
	d := &driver{tb: tb, c: newCore(cfg.WithDefaults()), now: t0}
	d.c.Start()
	return d
}

// effects returns the effects of the events since the last call.
func (d *driver) effects() []Effect { return append([]Effect(nil), d.c.effects()...) }

func (d *driver) kinds(want EffectKind) []Effect {
	var out []Effect
	for _, e := range d.effects() {
		if e.Kind == want {
			out = append(out, e)
		}
	}
	return out
}

func (d *driver) state(id WorkerID) SlotState { return d.c.slots[id].state }

func (d *driver) inSched(id WorkerID) (present, ready bool) {
	w, ok := d.c.sched.workers[id]
	return ok, ok && w.ready
}

func (d *driver) later(dt time.Duration) { d.now = d.now.Add(dt); d.c.Tick(d.now) }

func (d *driver) call(id string) { d.c.Execute(&poolpb.Execute{Tool: "t", RequestId: id}, id, d.now) }

const w1, w2, w3 = WorkerID("p-w1"), WorkerID("p-w2"), WorkerID("p-w3")

func TestCoreSlotMachine(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		run  func(t *testing.T, d *driver)
	}{
		{"start: queued, starting under permits, ready", Config{Size: 3, StartupConcurrency: 2}, func(t *testing.T, d *driver) {
			starts := d.kinds(EffStart)
			require.Len(t, starts, 2)
			assert.Equal(t, []SlotState{SlotStarting, SlotStarting, SlotQueued}, []SlotState{d.state(w1), d.state(w2), d.state(w3)})
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			assert.Equal(t, SlotReady, d.state(w1))
			starts = d.kinds(EffStart)
			require.Len(t, starts, 1, "the freed permit starts the next slot")
			assert.Equal(t, w3, starts[0].Worker)
			assert.Equal(t, StateReady, d.c.state)
		}},
		{"crash: restarting, removed from the scheduler once, published once, no start of ours", Config{}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.effects()
			d.c.OnDown(w1, 1, false, wk.ExitInfo{Signal: "SIGKILL"}, d.now)
			d.c.OnDown(w1, 1, false, wk.ExitInfo{Signal: "SIGKILL"}, d.now) // a duplicate changes nothing
			effs := d.effects()
			assert.Equal(t, SlotRestarting, d.state(w1))
			present, _ := d.inSched(w1)
			assert.False(t, present)
			var crashed, starts int
			for _, e := range effs {
				if _, ok := e.Event.(*WorkerCrashed); ok {
					crashed++
				}
				if e.Kind == EffStart || e.Kind == EffStop {
					starts++
				}
			}
			assert.Equal(t, 1, crashed)
			assert.Zero(t, starts, "the worker supervisor restarts a crashed worker, not the pool")
			d.c.OnReady(w1, 2, 1, 102, nil, d.now)
			assert.Equal(t, SlotReady, d.state(w1))
			assert.EqualValues(t, 1, d.c.stats.WorkerRestarts)
		}},
		{"stream credit reaches the worker running the call, and nothing else", Config{Size: 1}, func(t *testing.T, d *driver) {
			d.c.Credit("a", 4) // unknown
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.call("a")
			d.call("b") // queued: capacity 1
			sub := d.kinds(EffSubmit)
			require.Len(t, sub, 1)
			d.c.Credit("b", 4) // queued: nothing to credit
			d.c.Credit("a", 0) // nothing
			d.c.Credit("a", 4)
			cr := d.kinds(EffCredit)
			require.Len(t, cr, 1)
			assert.Equal(t, sub[0].Key, cr[0].Key)
			assert.Equal(t, w1, cr[0].Worker)
			assert.EqualValues(t, 4, cr[0].Credits)
		}},
		{"a new generation replaces one whose Down never came", Config{}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.call("a")
			require.Len(t, d.kinds(EffSubmit), 1)
			d.c.OnReady(w1, 2, 1, 102, nil, d.now)
			d.c.OnDown(w1, 1, false, wk.ExitInfo{}, d.now) // late: stale
			assert.Equal(t, SlotReady, d.state(w1))
			_, ready := d.inSched(w1)
			assert.True(t, ready)
			for _, e := range d.kinds(EffPublish) {
				_, crashed := e.Event.(*WorkerCrashed)
				_, gone := e.Event.(*WorkerTerminated)
				assert.False(t, crashed || gone, "the stale Down is not a crash of the new generation: %T", e.Event)
			}
		}},
		{"taint: ready but out of dispatch until the taint runs out", Config{Crash: CrashBarrier{TaintDuration: time.Second}}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.c.OnDown(w1, 1, false, wk.ExitInfo{Signal: "SIGSEGV"}, d.now)
			d.c.OnReady(w1, 2, 1, 102, nil, d.now)
			d.call("a")
			assert.Empty(t, d.kinds(EffSubmit), "no call for a tainted slot")
			_, ready := d.inSched(w1)
			assert.False(t, ready)
			d.later(time.Second)
			subs := d.kinds(EffSubmit)
			require.Len(t, subs, 1, "the queued call runs once the taint is over")
			assert.EqualValues(t, 2, subs[0].Generation)
		}},
		{"unresponsive: no call until it answers again", Config{}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.c.OnResponsive(w1, 1, false, "probe", d.now)
			d.call("a")
			assert.Empty(t, d.kinds(EffSubmit))
			d.c.OnResponsive(w1, 1, true, "", d.now)
			assert.Len(t, d.kinds(EffSubmit), 1)
		}},
		{"first start fails: dead, retried at backoff after a clean-up stop", Config{ReconcileBackoff: time.Second}, func(t *testing.T, d *driver) {
			d.effects()
			d.c.OnStartFailed(w1, 1, errors.New("boom"), true, d.now)
			assert.Equal(t, SlotDead, d.state(w1))
			assert.Equal(t, StateInitFailed, d.c.state)
			d.later(999 * time.Millisecond)
			assert.Equal(t, SlotDead, d.state(w1))
			d.later(time.Millisecond)
			stops := d.kinds(EffStop)
			require.Len(t, stops, 1)
			assert.True(t, stops[0].Report)
			assert.Equal(t, SlotStopping, d.state(w1))
			d.c.OnStopped(w1, d.now)
			assert.Equal(t, SlotStarting, d.state(w1))
			assert.Len(t, d.kinds(EffStart), 1)
			d.c.OnStartFailed(w1, 2, errors.New("boom"), true, d.now)
			assert.Equal(t, 2*time.Second, d.c.slots[w1].backoff, "the backoff doubles")
		}},
		{"a replacement's failed start: the supervisor starts it again", Config{}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.c.OnDown(w1, 1, false, wk.ExitInfo{}, d.now)
			d.c.OnStartFailed(w1, 2, errors.New("boom"), false, d.now)
			assert.Equal(t, SlotRestarting, d.state(w1))
			assert.False(t, d.c.slots[w1].failed, "a slot that once started has not failed")
			d.c.OnReady(w1, 3, 1, 103, nil, d.now)
			assert.Equal(t, SlotReady, d.state(w1))
		}},
		{"recycle: drain, stop, replace, one at a time", Config{Size: 2}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.c.OnReady(w2, 2, 1, 102, nil, d.now)
			d.call("a") // runs on w1
			require.Equal(t, w1, d.kinds(EffSubmit)[0].Worker)
			require.NoError(t, d.c.Recycle(w1, "manual", 0, d.now))
			require.NoError(t, d.c.Recycle(w2, "manual", 0, d.now))
			assert.Equal(t, SlotDraining, d.state(w1))
			assert.Equal(t, SlotReady, d.state(w2), "one recycle at a time")
			assert.Empty(t, d.kinds(EffStop), "w1 still runs a call")
			d.c.OnCallDone(&wk.CallDone{WorkerID: string(w1), Generation: 1, Key: 1}, d.now)
			stops := d.kinds(EffStop)
			require.Len(t, stops, 1)
			assert.Equal(t, w1, stops[0].Worker)
			d.c.OnStopped(w1, d.now)
			assert.Equal(t, SlotStarting, d.state(w1))
			assert.Equal(t, SlotReady, d.state(w2))
			d.c.OnReady(w1, 3, 1, 103, nil, d.now)
			assert.Equal(t, SlotStopping, d.state(w2), "w2's recycle starts once w1's replacement is ready")
		}},
		{"a drain past its deadline stops the worker anyway", Config{DrainTimeout: time.Second}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.call("a")
			require.NoError(t, d.c.Recycle(w1, "manual", 0, d.now))
			d.later(time.Second)
			assert.Equal(t, SlotStopping, d.state(w1))
		}},
		{"a crash while draining keeps the slot on its way out", Config{}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.call("a")
			require.NoError(t, d.c.Recycle(w1, "manual", 0, d.now))
			d.c.OnDown(w1, 1, false, wk.ExitInfo{}, d.now)
			assert.Equal(t, SlotStopping, d.state(w1), "nothing left to drain")
			d.c.OnReady(w1, 2, 1, 102, nil, d.now)
			assert.Equal(t, SlotStopping, d.state(w1), "a new generation of a stopping slot gets no call")
			_, ready := d.inSched(w1)
			assert.False(t, ready)
		}},
		{"resize down: a started slot is drained and removed, a queued one dropped", Config{Size: 3, StartupConcurrency: 1}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now) // w2 starts, w3 queued
			require.NoError(t, d.c.Resize(1, d.now))
			assert.NotContains(t, d.c.slots, w3, "never started: dropped")
			assert.Equal(t, SlotStopping, d.state(w2))
			d.c.OnStopped(w2, d.now)
			assert.NotContains(t, d.c.slots, w2)
			assert.Equal(t, []string{string(w1)}, d.c.Workers())
			assert.Zero(t, d.c.starting, "the removed slot's permit was given back")
		}},
		{"recycling a starting slot gives its permit to the next", Config{Size: 2, StartupConcurrency: 1}, func(t *testing.T, d *driver) {
			d.effects()
			require.NoError(t, d.c.Recycle(w1, "manual", 0, d.now))
			starts := d.kinds(EffStart)
			require.Len(t, starts, 1)
			assert.Equal(t, w2, starts[0].Worker)
		}},
		{"a refused submit closes the slot and retries the call once", Config{Size: 2}, func(t *testing.T, d *driver) {
			d.c.OnReady(w1, 1, 1, 101, nil, d.now)
			d.c.OnReady(w2, 2, 1, 102, nil, d.now)
			d.call("a")
			sub := d.kinds(EffSubmit)[0]
			d.c.OnSubmitFailed(sub.Key, sub.Worker, sub.Generation, wk.ErrClosed, d.now)
			again := d.kinds(EffSubmit)
			require.Len(t, again, 1)
			assert.NotEqual(t, sub.Worker, again[0].Worker)
			d.c.OnSubmitFailed(again[0].Key, again[0].Worker, again[0].Generation, wk.ErrClosed, d.now)
			replies := d.kinds(EffReply)
			require.Len(t, replies, 1)
			assert.Equal(t, "no_workers_available", replies[0].Err.Code)
		}},
		{"stopping answers the queue and awaiters; nothing starts after", Config{Size: 2, StartupConcurrency: 1}, func(t *testing.T, d *driver) {
			d.call("a")
			d.c.AwaitReady("w", true, time.Time{}, d.now)
			d.effects()
			d.c.Stopping(d.now)
			effs := d.effects()
			var replies, ready int
			for _, e := range effs {
				switch e.Kind {
				case EffReply:
					replies++
					assert.Equal(t, "shutdown", e.Err.Code)
				case EffReadyReply:
					ready++
				case EffStart, EffArm:
					t.Errorf("effect %d after the stop", e.Kind)
				}
			}
			assert.Equal(t, 1, replies)
			assert.Equal(t, 1, ready)
			d.c.OnStartFailed(w1, 1, errors.New("boom"), true, d.now)
			assert.Empty(t, d.kinds(EffStart))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newDriver(t, tc.cfg)) })
	}
}

func TestSlotStateNames(t *testing.T) {
	for s := SlotQueued; s <= SlotDead; s++ {
		assert.NotEqual(t, "unknown", s.String(), "state %d", s)
	}
	assert.Equal(t, "unknown", SlotState(200).String())
}

// published is the events among effects.
func published(effs []Effect) []any {
	var out []any
	for _, e := range effs {
		if e.Kind == EffPublish {
			out = append(out, e.Event)
		}
	}
	return out
}

// The pool's lifecycle events, in order; call events only while wanted.
func TestCoreEvents(t *testing.T) {
	wanted := false
	d := newDriver(t, Config{Size: 2, MaxQueue: 1, CallEvents: func() bool { return wanted }})
	assert.Equal(t, []any{&PoolInitStarted{Pool: "p", Size: 2}, &WorkerStarting{Pool: "p", WorkerID: "p-w1"},
		&WorkerStarting{Pool: "p", WorkerID: "p-w2"}}, published(d.effects()))
	d.c.OnReady(w1, 1, 1, 101, nil, d.now)
	assert.Equal(t, []any{&WorkerReady{Pool: "p", WorkerID: "p-w1", Generation: 1, OSPid: 101}}, published(d.effects()))
	d.c.OnStartFailed(w2, 1, errors.New("no"), false, d.now)
	assert.Equal(t, []any{&PoolInitComplete{Pool: "p", Ready: 1, Failed: 1}}, published(d.effects()))

	d.call("a") // runs: no call events while unwanted
	assert.Empty(t, published(d.effects()))
	wanted = true
	d.call("b") // queued
	assert.Equal(t, []any{&CallQueued{Pool: "p", RequestID: "b", Tool: "t"}}, published(d.effects()))
	d.call("c") // the queue (1) is full
	assert.Equal(t, []any{&QueueSaturated{Pool: "p", Queued: 1, MaxQueue: 1},
		&CallDone{Pool: "p", RequestID: "c", Tool: "t", Code: "pool_saturated"}}, published(d.effects()))
	d.later(time.Second)
	d.c.OnCallDone(&wk.CallDone{WorkerID: string(w1), Generation: 1, Key: 1}, d.now) // a ends, b goes
	evs := published(d.effects())
	require.Len(t, evs, 2)
	assert.Equal(t, &CallDone{Pool: "p", RequestID: "a", Tool: "t", WorkerID: "p-w1", Duration: time.Second}, evs[0])
	disp, ok := evs[1].(*CallDispatched)
	require.True(t, ok, "%T", evs[1])
	assert.Equal(t, "b", disp.RequestID)
	assert.Equal(t, "p-w1", disp.WorkerID)

	d.c.OnDown(w1, 1, false, wk.ExitInfo{ExitCode: 1}, d.now)
	evs = published(d.effects())
	require.NotEmpty(t, evs)
	assert.Equal(t, &WorkerTerminated{Pool: "p", WorkerID: "p-w1", Generation: 1, Exit: wk.ExitInfo{ExitCode: 1}}, evs[0])
	assert.IsType(t, &WorkerCrashed{}, evs[1], "a process that ended on its own is also a crash")
}
