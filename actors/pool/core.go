package pool

import (
	"log/slog"
	"time"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// core is the pool's state and every decision the pool makes: which worker
// starts, runs a call, is recycled, restarted or removed, which caller is
// answered with what. It is a pure value in the manner of etcd raft's node:
// no goroutines, no actors, no I/O, no clock (time is an argument). Its
// methods change the state and append what must be done to an effect list;
// the pool actor takes the list (effects) and carries it out, reporting the
// outcomes back as further method calls (OnStopped, OnSubmitFailed, …).
//
// The slots (one per worker, with their SlotState) are the one source of
// truth for readiness: the scheduler's "ready" bit of a worker is derived
// from its slot by sync, and nothing else sets it.
type core struct {
	cfg   Config
	log   *slog.Logger
	sched *Scheduler
	state string
	// initDone: PoolInitComplete was published for this start.
	initDone bool

	nextKey uint64
	pending map[uint64]*pending
	byReqID map[string]uint64

	slots   map[WorkerID]*slot
	order   []WorkerID // start order
	toStart []WorkerID // slots waiting for a start permit, oldest first
	// starting is the number of start permits held (slots in SlotStarting).
	starting int
	slotSeq  int // the highest worker number handed out

	recycles  []*recycleJob // waiting, in order
	recycling *recycleJob   // the one running (one at a time)
	breaker   *Breaker
	awaiters  []awaiter
	// lastStartErr is the latest worker start failure, quoted when the pool
	// fails to initialise.
	lastStartErr error
	// timerAt is where the actor's one timer points (zero: disarmed).
	timerAt time.Time

	stats poolpb.Stats

	out, spare []Effect
}

// pending is a request the pool has taken and not yet seen answered.
type pending struct {
	req     *poolpb.Execute
	replyTo any // the caller's address, opaque here
	// deadline bounds queueing and execution: the request's, or the pool's
	// ExecuteTimeout from when it was taken.
	deadline time.Time
	takenAt  time.Time // when the pool took it
	retried  bool
	// crashRetried: the call's worker died and it runs again (idempotent).
	crashRetried bool
	// trial: the half-open crash breaker let this call through as its trial.
	trial bool
	// worker and generation hold the call once dispatched; only a CallDone
	// from that very worker generation ends it.
	worker     WorkerID
	generation uint64
}

type awaiter struct {
	replyTo  any
	all      bool
	deadline time.Time
}

// EffectKind says what an Effect asks the pool actor to do.
type EffectKind uint8

// The effects.
const (
	// EffStart: start worker Worker under the worker supervisor. A refusal
	// is reported with OnStartFailed(Worker, 0, err, true).
	EffStart EffectKind = iota + 1
	// EffStop: stop worker Worker (within Timeout). With Report, the end
	// is reported with OnStopped(Worker).
	EffStop
	// EffSubmit: submit call Key to Exec (worker Worker, Generation). A
	// refusal is reported with OnSubmitFailed.
	EffSubmit
	// EffCancel: cancel running call Key on Exec.
	EffCancel
	// EffCredit: give running stream Key on Exec Credits more chunks.
	EffCredit
	// EffStopRetries: Exec answers its calls itself from now on.
	EffStopRetries
	// EffReply: send the terminal reply to Req carrying Err to ReplyTo.
	EffReply
	// EffReadyReply: send ReadyReply to ReplyTo (an AwaitReady answer).
	EffReadyReply
	// EffPublish: publish Event.
	EffPublish
	// EffArm: point the timer at At (earlier than where it pointed).
	EffArm
)

// Effect is one thing the pool actor must do; which fields are set depends
// on Kind.
type Effect struct {
	Kind       EffectKind
	Worker     WorkerID
	Generation uint64
	Key        uint64
	Exec       *wk.Executor
	Req        *poolpb.Execute
	ReplyTo    any
	At         time.Time // EffSubmit: the call's deadline; EffArm: when
	Timeout    time.Duration
	Retryable  bool
	Report     bool
	Err        *sperr.Error
	ReadyReply *poolpb.ReadyReply
	Event      any
	Credits    uint32 // EffCredit
}

func newCore(c Config) *core {
	return &core{
		cfg:     c,
		log:     c.Logger.With("pool", c.Name),
		sched:   NewScheduler(c.MaxQueue),
		pending: map[uint64]*pending{},
		byReqID: map[string]uint64{},
		slots:   map[WorkerID]*slot{},
	}
}

// effects returns what is to be done and starts a new list. The returned
// slice stays valid until the next call of effects, so the actor may call
// the core's methods while carrying it out.
func (c *core) effects() []Effect {
	out := c.out
	c.out, c.spare = c.spare[:0], out
	return out
}

func (c *core) emit(e Effect) { c.out = append(c.out, e) }

// Start starts the pool: every slot is declared and the first ones start.
func (c *core) Start() {
	c.state = StateStarting
	// Keys must not repeat across restarts of this pool (same PID): a late
	// CallDone from a predecessor's worker must not match a new request.
	c.nextKey = c.cfg.keyBase()
	c.stats.Pool = c.cfg.Name
	c.breaker = NewBreaker(c.cfg.Crash.Breaker)
	c.slotSeq = c.cfg.Size
	for i := 1; i <= c.cfg.Size; i++ {
		s := c.addSlot(WorkerID(WorkerName(c.cfg.Name, i)))
		// A pool restarted on its own finds its old workers still running:
		// replace them, so the new pool knows every worker it routes to.
		c.emit(Effect{Kind: EffStop, Worker: s.id, Timeout: c.stopTimeout()})
	}
	c.log.Info("pool starting", "workers", c.cfg.Size, "startup_concurrency", c.cfg.StartupConcurrency)
	c.publish(&PoolInitStarted{Pool: c.cfg.Name, Size: c.cfg.Size})
	c.startSlots()
}

// Stopping is the pool's stop: nothing new starts, queued requests and
// awaiters are answered with shutdown, and executors answer their calls
// themselves (the pool cannot retry them once gone).
func (c *core) Stopping(now time.Time) {
	c.state = StateStopping
	for _, id := range c.order {
		if s := c.slots[id]; s.live {
			c.emit(Effect{Kind: EffStopRetries, Worker: id, Exec: s.exec})
		}
	}
	for _, r := range c.sched.Drain() {
		c.fail(r.ID, now, c.poolErr(sperr.CodeShutdown, "pool %s is stopping", c.cfg.Name))
	}
	c.answerAwaiters(now)
	// Dispatched calls are answered by their workers, which stop after the
	// pool (the worker supervisor comes earlier in the runtime's order).
	if len(c.pending) > 0 {
		c.log.Debug("pool stopping with calls running on workers", "calls", len(c.pending))
	}
}

// Tick handles the timer: queue deadlines, awaiter deadlines, taints that
// ran out, slots due for a retry, drains past their deadline.
func (c *core) Tick(now time.Time) {
	c.timerAt = time.Time{}
	for _, r := range c.sched.Expire(now) {
		c.stats.QueueTimeouts++
		c.fail(r.ID, now, c.poolErr(sperr.CodeQueueTimeout, "no worker was free within the queue timeout"))
	}
	c.answerAwaiters(now)
	c.untaint(now)
	c.retryDead(now)
	c.checkDrain(now)
	c.rearm()
}

// AwaitReady registers an AwaitReady request, answered when its condition
// holds, its deadline passes or it can never be met.
func (c *core) AwaitReady(replyTo any, all bool, deadline time.Time, now time.Time) {
	c.awaiters = append(c.awaiters, awaiter{replyTo: replyTo, all: all, deadline: deadline})
	c.answerAwaiters(now)
	c.rearm()
}

// EndSession drops a session's worker binding.
func (c *core) EndSession(id string) { c.dispatchAll(c.sched.UnbindSession(id)) }

// answerAwaiters answers every AwaitReady whose condition holds, whose
// deadline passed, or that can never be met.
func (c *core) answerAwaiters(now time.Time) {
	if len(c.awaiters) == 0 {
		return
	}
	ready, settled := 0, 0
	for _, s := range c.slots {
		if s.live {
			ready++
		}
		if s.startedOK || s.failed {
			settled++
		}
	}
	keep := c.awaiters[:0]
	for _, a := range c.awaiters {
		reply := &poolpb.ReadyReply{Pool: c.cfg.Name, Ready: uint64(ready), Workers: uint64(len(c.slots))}
		switch {
		case c.state == StateInitFailed:
			reply.Error = sperr.ToProto(c.initFailedErr())
		case c.state == StateStopping:
			reply.Error = sperr.ToProto(c.poolErr(sperr.CodeShutdown, "pool %s is stopping", c.cfg.Name))
		case !a.all && ready > 0, a.all && settled == len(c.slots):
		case !a.deadline.IsZero() && !now.Before(a.deadline):
			reply.Error = sperr.ToProto(c.poolErr(sperr.CodeDeadlineExceeded,
				"pool %s: %d of %d workers ready at the deadline", c.cfg.Name, ready, len(c.slots)))
		default:
			keep = append(keep, a)
			continue
		}
		c.emit(Effect{Kind: EffReadyReply, ReplyTo: a.replyTo, ReadyReply: reply})
	}
	c.awaiters = keep
}

// rearm points the timer at the earliest deadline of all: queue, slots
// (taints, retries), the running drain and the awaiters. It walks every
// slot, so the call path uses rearmQueue instead.
func (c *core) rearm() {
	next, ok := c.sched.NextDeadline()
	consider := func(t time.Time) {
		if !t.IsZero() && (!ok || t.Before(next)) {
			next, ok = t, true
		}
	}
	for _, s := range c.slots {
		consider(s.wakeAt())
	}
	if j := c.recycling; j != nil && j.phase == recycleDraining {
		consider(j.deadline)
	}
	for _, a := range c.awaiters {
		consider(a.deadline)
	}
	c.armAt(next, ok)
}

// rearmQueue is rearm for the call path, where only queue deadlines can
// have changed: it costs nothing per worker. The timer only ever moves
// earlier, so the other deadlines it already covers stay covered.
func (c *core) rearmQueue() {
	next, ok := c.sched.NextDeadline()
	c.armAt(next, ok)
}

func (c *core) armAt(next time.Time, ok bool) {
	if !ok || c.state == StateStopping || (!c.timerAt.IsZero() && !next.Before(c.timerAt)) {
		return
	}
	c.timerAt = next
	c.emit(Effect{Kind: EffArm, At: next})
}

func (c *core) publish(evt any) { c.emit(Effect{Kind: EffPublish, Event: evt}) }

// callEvents reports whether call events are wanted now.
func (c *core) callEvents() bool { return c.cfg.CallEvents != nil && c.cfg.CallEvents() }

// checkInitComplete publishes PoolInitComplete once every slot of the
// first start has settled.
func (c *core) checkInitComplete() {
	if c.initDone {
		return
	}
	ready, failed := 0, 0
	for _, s := range c.slots {
		switch {
		case s.startedOK:
			ready++
		case s.failed:
			failed++
		default:
			return
		}
	}
	c.initDone = true
	c.publish(&PoolInitComplete{Pool: c.cfg.Name, Ready: ready, Failed: failed})
}

func (c *core) initFailedErr() *sperr.Error {
	e := c.poolErr(sperr.CodePoolNotInitialized, "pool %s failed to initialise: no worker started", c.cfg.Name)
	if c.lastStartErr != nil {
		e.Message += ": " + c.lastStartErr.Error()
	}
	return e
}

func (c *core) poolErr(code, format string, args ...any) *sperr.Error {
	e := sperr.New(code, format, args...)
	e.Pool = c.cfg.Name
	return e
}

// Snapshot is the pool's counters.
func (c *core) Snapshot(now time.Time) *poolpb.Stats {
	st := c.sched.Stats()
	s := &poolpb.Stats{
		Pool: c.cfg.Name, Requests: c.stats.Requests, Errors: c.stats.Errors,
		QueueTimeouts: c.stats.QueueTimeouts, PoolSaturated: c.stats.PoolSaturated,
		Completed: c.stats.Completed, Cancelled: c.stats.Cancelled, WorkerRestarts: c.stats.WorkerRestarts,
		Queued: uint64(st.Queued), Workers: uint64(len(c.slots)), Ready: uint64(st.Ready),
		Available: uint64(st.Available), Busy: uint64(st.Busy), InFlight: uint64(st.InFlight), State: c.state,
		Recycled: c.stats.Recycled, CircuitRejected: c.stats.CircuitRejected, Retried: c.stats.Retried,
	}
	if c.breaker != nil {
		s.Circuit = string(c.breaker.State(now))
	}
	for _, sl := range c.slots {
		if sl.tainted(now) {
			s.Tainted++
		}
	}
	return s
}

// Workers lists the worker ids in start order.
func (c *core) Workers() []string {
	ids := make([]string, 0, len(c.order))
	for _, id := range c.order {
		ids = append(ids, string(id))
	}
	return ids
}

func (c *core) stopTimeout() time.Duration { return c.cfg.Worker.ShutdownTimeout() + wk.ReplyMargin }
