package snakepit

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/pool"
)

// Event is one event of the App's catalogue, delivered by App.Subscribe:
//
//	*PoolInitStarted, *PoolInitComplete           a pool's first start
//	*WorkerSpawned, *WorkerReady                  a worker's process starting, then serving
//	*WorkerTerminated                             a worker's process gone (stopped, or on its own)
//	*WorkerRecycled, *WorkerCrashed               why it went
//	*QueueSaturated                               a call refused: the queue was full
//	*HeartbeatMissed                              a worker did not answer a heartbeat
//	*CircuitChanged                               a pool's crash breaker opened, half-opened or closed
//	*CleanupRun                                   the cleanup of earlier runs (start) or this one (stop)
//	*CallQueued, *CallDispatched, *CallDone       one call (only with WithCallEvents)
//	*PythonEvent                                  a worker's Python telemetry (PoolConfig.Telemetry)
type Event interface {
	// EventName is the event's name in the catalogue ("worker.ready", ...).
	EventName() string
}

// PoolInitStarted: a pool declared its workers and starts them.
type PoolInitStarted struct {
	At   time.Time
	Pool string
	Size int
}

// PoolInitComplete: every worker of a pool's first start is ready or
// failed; Duration is from PoolInitStarted.
type PoolInitComplete struct {
	At            time.Time
	Pool          string
	Ready, Failed int
	Duration      time.Duration
}

// WorkerSpawned: a worker's process is being started.
type WorkerSpawned struct {
	At       time.Time
	Pool     string
	WorkerID string
}

// WorkerReady: a worker's process answers and takes calls.
type WorkerReady struct {
	At         time.Time
	Pool       string
	WorkerID   string
	Generation uint64
	OSPid      int
}

// WorkerTerminated: a worker's process is gone: stopped by the host
// (Planned), or on its own (a WorkerCrashed comes with it).
type WorkerTerminated struct {
	At         time.Time
	Pool       string
	WorkerID   string
	Generation uint64
	Planned    bool
	Exit       WorkerExit
}

// QueueSaturated: a call was refused because the pool's queue was full.
type QueueSaturated struct {
	At               time.Time
	Pool             string
	Queued, MaxQueue int
}

// HeartbeatMissed: a worker did not answer a heartbeat ping in time.
type HeartbeatMissed struct {
	At        time.Time
	Pool      string
	WorkerID  string
	Missed    int  // consecutive misses so far
	Dependent bool // the worker is replaced at the limit
}

// CleanupRun: a cleanup pass ran: at start (leftovers of earlier runs) or
// at stop (this run's).
type CleanupRun struct {
	At      time.Time
	AtStart bool
	Report  CleanupReport
}

// CallQueued: a call waits for a worker.
type CallQueued struct {
	At                    time.Time
	Pool, RequestID, Tool string
}

// CallDispatched: a call went to a worker after Waited in the queue.
type CallDispatched struct {
	At                              time.Time
	Pool, RequestID, Tool, WorkerID string
	Waited                          time.Duration
}

// CallDone: a call ended; Code is "" for success, else its error code;
// Duration is from when the pool took it.
type CallDone struct {
	At                              time.Time
	Pool, RequestID, Tool, WorkerID string
	Code                            string
	Duration                        time.Duration
}

// PythonEvent is one event of a worker's Python telemetry stream
// (PoolConfig.Telemetry): the bridge's tool.execution.stop and
// tool.execution.exception, and what adapters emit.
type PythonEvent struct {
	At            time.Time
	Pool          string
	WorkerID      string
	Generation    uint64
	Name          string // dotted: "tool.execution.stop"
	Measurements  map[string]any
	Metadata      map[string]string
	CorrelationID string
}

// EventName is "python." and the event's own name.
func (e *PythonEvent) EventName() string { return "python." + e.Name }

// EventName names the event.
func (*PoolInitStarted) EventName() string  { return "pool.init.started" }
func (*PoolInitComplete) EventName() string { return "pool.init.complete" }
func (*WorkerSpawned) EventName() string    { return "worker.spawned" }
func (*WorkerReady) EventName() string      { return "worker.ready" }
func (*WorkerTerminated) EventName() string { return "worker.terminated" }
func (*WorkerRecycled) EventName() string   { return "worker.recycled" }
func (*WorkerCrashed) EventName() string    { return "worker.crashed" }
func (*QueueSaturated) EventName() string   { return "pool.queue.saturated" }
func (*HeartbeatMissed) EventName() string  { return "heartbeat.missed" }
func (e *CircuitChanged) EventName() string { return "pool.circuit." + string(e.To) }
func (*CleanupRun) EventName() string       { return "cleanup.run" }
func (*CallQueued) EventName() string       { return "call.queued" }
func (*CallDispatched) EventName() string   { return "call.dispatched" }
func (*CallDone) EventName() string         { return "call.done" }

// DefaultEventBuffer is how many events a subscriber may fall behind by
// before events are dropped for it (WithEventBuffer changes it).
const DefaultEventBuffer = 1024

// SubscribeOption adjusts a subscription.
type SubscribeOption func(*Subscription)

// WithCallEvents also delivers CallQueued, CallDispatched and CallDone:
// three events per call, built only while such a subscriber exists.
func WithCallEvents() SubscribeOption { return func(s *Subscription) { s.calls = true } }

// WithEventBuffer sets how many events the subscriber may fall behind by.
func WithEventBuffer(n int) SubscribeOption {
	return func(s *Subscription) {
		if n > 0 {
			s.ch = make(chan Event, n)
		}
	}
}

// Subscription is one App.Subscribe.
type Subscription struct {
	hub     *eventHub
	ch      chan Event
	calls   bool
	dropped atomic.Uint64
	done    chan struct{}
	close   sync.Once
}

// Dropped is how many events were not delivered because the handler fell
// a buffer behind.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription: no event is delivered after it returns
// (one being handled finishes first).
func (s *Subscription) Close() {
	s.close.Do(func() {
		s.hub.remove(s)
		close(s.ch)
	})
	<-s.done
}

// Subscribe calls fn with each event of the catalogue (see Event), in the
// order the App saw them, on a goroutine of the subscription's own: a slow
// handler never holds up a pool or a call; it falls behind, up to its
// buffer, and then misses events (Dropped counts them). Close ends it.
func (a *App) Subscribe(fn func(Event), opts ...SubscribeOption) *Subscription {
	s := &Subscription{hub: a.events, ch: make(chan Event, DefaultEventBuffer), done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	go func() {
		defer close(s.done)
		for e := range s.ch {
			fn(e)
		}
	}()
	a.events.add(s)
	return s
}

// eventHub hands events to the subscriptions without blocking.
type eventHub struct {
	mu    sync.RWMutex
	subs  []*Subscription
	calls atomic.Int32 // subscriptions that want call events

	initMu sync.Mutex
	initAt map[string]time.Time // pool → its PoolInitStarted
}

func (h *eventHub) add(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs = append(h.subs, s)
	if s.calls {
		h.calls.Add(1)
	}
}

func (h *eventHub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.subs {
		if x == s {
			h.subs = append(h.subs[:i:i], h.subs[i+1:]...)
			if s.calls {
				h.calls.Add(-1)
			}
			return
		}
	}
}

// wantCalls reports whether anyone listens for call events.
func (h *eventHub) wantCalls() bool { return h.calls.Load() > 0 }

func (h *eventHub) publish(e Event) {
	_, isCall := e.(interface{ callEvent() })
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, s := range h.subs {
		if isCall && !s.calls {
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

func (*CallQueued) callEvent()     {}
func (*CallDispatched) callEvent() {}
func (*CallDone) callEvent()       {}

// closeAll ends every subscription (App.Stop, after the last event).
func (h *eventHub) closeAll() {
	h.mu.RLock()
	subs := append([]*Subscription(nil), h.subs...)
	h.mu.RUnlock()
	for _, s := range subs {
		s.Close()
	}
}

// fromPool turns a pool's event into the catalogue's (nil for others).
func (h *eventHub) fromPool(evt any, now time.Time) Event {
	switch e := evt.(type) {
	case *pool.WorkerRecycled:
		return &WorkerRecycled{At: now, Pool: e.Pool, WorkerID: e.WorkerID, Reason: RecycleReason(e.Reason),
			Generation: e.Generation, Uptime: e.Uptime, Requests: e.Requests, RSSBytes: e.RSSBytes, Removed: e.Removed}
	case *pool.WorkerCrashed:
		return &WorkerCrashed{At: now, Pool: e.Pool, WorkerID: e.WorkerID, Generation: e.Generation,
			Class: ExitClass(e.Class), Exit: WorkerExit(e.Exit), Tainted: e.Tainted}
	case *pool.CircuitChanged:
		return &CircuitChanged{At: now, Pool: e.Pool, From: CircuitState(e.From), To: CircuitState(e.To)}
	case *pool.PoolInitStarted:
		h.initMu.Lock()
		if h.initAt == nil {
			h.initAt = map[string]time.Time{}
		}
		h.initAt[e.Pool] = now
		h.initMu.Unlock()
		return &PoolInitStarted{At: now, Pool: e.Pool, Size: e.Size}
	case *pool.PoolInitComplete:
		h.initMu.Lock()
		d := now.Sub(h.initAt[e.Pool])
		h.initMu.Unlock()
		return &PoolInitComplete{At: now, Pool: e.Pool, Ready: e.Ready, Failed: e.Failed, Duration: d}
	case *pool.WorkerStarting:
		return &WorkerSpawned{At: now, Pool: e.Pool, WorkerID: e.WorkerID}
	case *pool.WorkerReady:
		return &WorkerReady{At: now, Pool: e.Pool, WorkerID: e.WorkerID, Generation: e.Generation, OSPid: e.OSPid}
	case *pool.WorkerTerminated:
		return &WorkerTerminated{At: now, Pool: e.Pool, WorkerID: e.WorkerID, Generation: e.Generation,
			Planned: e.Planned, Exit: WorkerExit(e.Exit)}
	case *pool.QueueSaturated:
		return &QueueSaturated{At: now, Pool: e.Pool, Queued: e.Queued, MaxQueue: e.MaxQueue}
	case *pool.CallQueued:
		return &CallQueued{At: now, Pool: e.Pool, RequestID: e.RequestID, Tool: e.Tool}
	case *pool.CallDispatched:
		return &CallDispatched{At: now, Pool: e.Pool, RequestID: e.RequestID, Tool: e.Tool, WorkerID: e.WorkerID, Waited: e.Waited}
	case *pool.CallDone:
		return &CallDone{At: now, Pool: e.Pool, RequestID: e.RequestID, Tool: e.Tool, WorkerID: e.WorkerID,
			Code: e.Code, Duration: e.Duration}
	}
	return nil
}

// heartbeatMissed is the catalogue's event for a heartbeat monitor's.
func heartbeatMissed(e *heartbeat.Event) Event {
	if e.Kind != heartbeat.EventMissed {
		return nil
	}
	p := e.WorkerID
	if i := strings.LastIndex(p, "-w"); i > 0 {
		p = p[:i] // worker ids are <pool>-w<N>
	}
	return &HeartbeatMissed{At: e.At, Pool: p, WorkerID: e.WorkerID, Missed: e.Missed, Dependent: e.Dependent}
}
