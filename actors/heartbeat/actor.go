package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// stopGrace is how much longer than Timeout a stopping monitor waits for
// its ping loop before giving up on a Pinger that ignores its context.
const stopGrace = time.Second

// Pinger pings the worker once; it must honour ctx (the monitor gives it
// Timeout, and cancels it when the monitor stops). A Pinger that ignores
// ctx stalls the monitor: the next ping only starts once it returns.
type Pinger func(ctx context.Context) error

// EventKind is the kind of an Event.
type EventKind string

// Event kinds reported to Options.OnEvent.
const (
	// EventMissed: one ping failed or timed out (Missed is the consecutive
	// count, this one included).
	EventMissed EventKind = "heartbeat_missed"
	// EventLost: MaxMissed consecutive pings were missed (reported once per
	// loss).
	EventLost EventKind = "heartbeat_lost"
	// EventRecovered: a ping succeeded after at least one miss.
	EventRecovered EventKind = "heartbeat_recovered"
)

// Event is what a monitor reports to Options.OnEvent.
type Event struct {
	Kind     EventKind
	WorkerID string
	// Missed is the number of consecutive misses at the time of the event;
	// for EventRecovered, the number of consecutive misses the successful
	// ping ended.
	Missed int
	// Err is the last ping's error (nil for EventRecovered).
	Err error
	// Dependent: the monitor tells the worker to stop when lost.
	Dependent bool
	// At is when the ping that caused the event ended.
	At time.Time
}

// Lost is sent to Options.Notify (the worker actor) when a dependent
// monitor reaches MaxMissed; it is sent once per loss.
type Lost struct {
	WorkerID string
	Missed   int
	Err      error
}

// Options of one monitor.
type Options struct {
	Config   Config
	WorkerID string
	// Ping pings the worker; required (a monitor without one logs an error
	// and stops itself).
	Ping Pinger
	// Notify receives Lost in dependent mode; may be nil.
	Notify *actor.PID
	// OnEvent is called for every event, from the actor's goroutine; it
	// must not block. May be nil.
	OnEvent func(Event)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// GetStatus asks a monitor for its counters; answered with *Status.
type GetStatus struct{}

// Status answers GetStatus.
type Status struct {
	// Sent counts the pings that ended (succeeded or missed); a ping in
	// flight is not counted yet.
	Sent int
	// Missed counts all missed pings.
	Missed int
	// Consecutive counts the misses since the last successful ping.
	Consecutive int
	// Lost: MaxMissed was reached and no ping succeeded since.
	Lost bool
	// LastOK is when the last successful ping ended (zero if none).
	LastOK time.Time
}

// pingResult is the ping loop's report of one ping to the actor.
type pingResult struct {
	err error
	at  time.Time
}

// Props returns the props of a heartbeat monitor, to be spawned by the
// worker actor as its child once the worker is ready. Zero Config fields
// take the defaults; an invalid Config or a nil Ping makes the monitor log
// an error and stop itself at once. Props does not look at Config.Disabled.
func Props(o Options) *actor.Props {
	o.Config = o.Config.WithDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &monitor{
			opts: o,
			cfg:  o.Config,
			log:  o.Logger.With("actor", "heartbeat", "worker_id", o.WorkerID),
		}
	})
}

type monitor struct {
	opts Options
	cfg  Config
	log  *slog.Logger

	cancel context.CancelFunc // stops the ping loop; nil when none runs
	done   chan struct{}      // closed when the ping loop has ended
	closed bool               // stopping: ping results are ignored

	sent, missed, consecutive int
	lost                      bool
	lastOK                    time.Time
}

func (a *monitor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.start(ctx)
	case *pingResult:
		if !a.closed {
			a.record(ctx, m)
		}
	case *GetStatus:
		ctx.Respond(&Status{
			Sent: a.sent, Missed: a.missed, Consecutive: a.consecutive,
			Lost: a.lost, LastOK: a.lastOK,
		})
	case *actor.Stopping, *actor.Restarting:
		a.stopLoop()
	}
}

// start validates the options and starts the ping loop.
func (a *monitor) start(ctx actor.Context) {
	if err := a.cfg.Validate(); err != nil {
		a.log.Error("heartbeat: invalid config, monitor not started", "error", err)
		a.closed = true
		ctx.Stop(ctx.Self())
		return
	}
	if a.opts.Ping == nil {
		a.log.Error("heartbeat: no pinger, monitor not started")
		a.closed = true
		ctx.Stop(ctx.Self())
		return
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	a.cancel, a.done = cancel, make(chan struct{})
	root, self := ctx.ActorSystem().Root, ctx.Self()
	go a.loop(loopCtx, a.done, func(r *pingResult) { root.Send(self, r) })
	a.log.Debug("heartbeat: started",
		"interval", a.cfg.Interval, "timeout", a.cfg.Timeout, "max_missed", a.cfg.MaxMissed,
		"initial_delay", a.cfg.InitialDelay, "dependent", !a.cfg.Independent)
}

// stopLoop cancels the ping loop and waits for it to end, at most Timeout
// plus a grace (a Pinger that ignores its context is given up on).
func (a *monitor) stopLoop() {
	a.closed = true
	if a.cancel == nil {
		return
	}
	a.cancel()
	a.cancel = nil
	wait := time.NewTimer(a.cfg.Timeout + stopGrace)
	defer wait.Stop()
	select {
	case <-a.done:
	case <-wait.C:
		a.log.Warn("heartbeat: ping loop did not end after stop; giving up on it (the pinger ignores its context)",
			"waited", a.cfg.Timeout+stopGrace)
	}
}

// loop runs on its own goroutine: InitialDelay, then one ping at a time,
// each followed by Interval, until ctx is cancelled. It sends each result
// with report and closes done when it ends.
func (a *monitor) loop(ctx context.Context, done chan<- struct{}, report func(*pingResult)) {
	defer close(done)
	if !sleep(ctx, a.cfg.InitialDelay) {
		return
	}
	for {
		err := a.pingOnce(ctx)
		if ctx.Err() != nil {
			return // stopping: the result does not count
		}
		report(&pingResult{err: err, at: time.Now()})
		if !sleep(ctx, a.cfg.Interval) {
			return
		}
	}
}

// pingOnce runs the Pinger with a context of Timeout; a panic is a failed
// ping.
func (a *monitor) pingOnce(ctx context.Context) (err error) {
	pctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("heartbeat: ping panicked: %w", e)
			} else {
				err = fmt.Errorf("heartbeat: ping panicked: %v", r)
			}
		}
	}()
	if err := a.opts.Ping(pctx); err != nil {
		if errors.Is(pctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("heartbeat: ping timed out after %v: %w", a.cfg.Timeout, err)
		}
		return fmt.Errorf("heartbeat: ping failed: %w", err)
	}
	return nil
}

// record counts one ping's result and reports what it means.
func (a *monitor) record(ctx actor.Context, r *pingResult) {
	a.sent++
	if r.err == nil {
		if a.consecutive > 0 {
			missed := a.consecutive
			a.log.Info("heartbeat: recovered", "missed", missed, "was_lost", a.lost)
			a.emit(Event{Kind: EventRecovered, Missed: missed, At: r.at})
		}
		a.consecutive, a.lost, a.lastOK = 0, false, r.at
		return
	}
	a.missed++
	a.consecutive++
	a.log.Warn("heartbeat: missed", "consecutive", a.consecutive, "error", r.err)
	a.emit(Event{Kind: EventMissed, Missed: a.consecutive, Err: r.err, At: r.at})
	if a.lost || a.consecutive < a.cfg.MaxMissed {
		return
	}
	a.lost = true
	dependent := !a.cfg.Independent
	a.log.Error("heartbeat: worker lost", "missed", a.consecutive, "dependent", dependent, "error", r.err)
	a.emit(Event{Kind: EventLost, Missed: a.consecutive, Err: r.err, At: r.at})
	if dependent && a.opts.Notify != nil {
		ctx.Send(a.opts.Notify, &Lost{WorkerID: a.opts.WorkerID, Missed: a.consecutive, Err: r.err})
	}
}

// emit calls OnEvent; a panic in it is logged, not let through (it would
// restart the monitor and lose its counters).
func (a *monitor) emit(e Event) {
	if a.opts.OnEvent == nil {
		return
	}
	e.WorkerID, e.Dependent = a.opts.WorkerID, !a.cfg.Independent
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("heartbeat: OnEvent panicked", "event", e.Kind, "panic", r)
		}
	}()
	a.opts.OnEvent(e)
}

// sleep waits d or until ctx is cancelled; it reports whether ctx is still
// live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
