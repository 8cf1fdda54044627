package procreg

import (
	"context"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	actorask "github.com/snakepit-go/snakepit/internal/ask"
)

// Config configures the process registry actor.
type Config struct {
	Store     *Store
	RunID     string // this App start
	HostPID   int    // this process
	HostStart int64  // its create time, ms since the epoch
	// FlushDelay batches writes: the first change after a flush is written
	// at most this much later (default 10ms). Read flushes at once.
	FlushDelay time.Duration
	// SyncDelay is a group commit: a Sync with changes still unwritten is
	// answered by the next write, at most this much later (default 2ms), so
	// that workers starting together share one transaction (and one fsync)
	// instead of paying one each.
	SyncDelay time.Duration
	Logger    *slog.Logger
}

// Reserve records a process about to be spawned (sent, not answered).
// RunID, HostPID and HostStart default to the registry's.
type Reserve struct{ Entry Entry }

// Activate records the OS pid and process group of a reserved entry (sent).
type Activate struct {
	Key         string
	OSPid, PGID int
}

// Remove forgets a reaped process (sent).
type Remove struct{ Key string }

// Sync asks for every change sent before it to be on disk; answered with
// *SyncResult once it is (Err: the last write failed).
type Sync struct{}

// SyncResult answers Sync and Forget.
type SyncResult struct{ Err error }

// Read asks for the registry's content (after flushing); answered with
// *ReadResult.
type Read struct{}

// ReadResult answers Read.
type ReadResult struct {
	Snapshot Snapshot
	Err      error
}

// Forget removes entries and whole runs (with their entries) durably;
// answered with *SyncResult.
type Forget struct {
	Keys []string
	Runs []string
}

type flushNow struct{}

// Props returns the process registry actor's props. On start it records the
// run durably; on stop it flushes what is pending.
func Props(c Config) *actor.Props {
	if c.FlushDelay <= 0 {
		c.FlushDelay = 10 * time.Millisecond
	}
	if c.SyncDelay <= 0 {
		c.SyncDelay = 2 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &registryActor{cfg: c, log: c.Logger.With("actor", "process_registry")}
	})
}

type registryActor struct {
	cfg     Config
	log     *slog.Logger
	pending []Op
	lastErr error // of the last write; reported to Sync until a write succeeds
	timer   *time.Timer
	// syncers wait for the next write (Sync with changes unwritten).
	syncers   []*actor.PID
	syncTimer *time.Timer
}

func (a *registryActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		run := &Run{RunID: a.cfg.RunID, HostPID: a.cfg.HostPID, HostStart: a.cfg.HostStart, StartedAt: time.Now()}
		if err := a.cfg.Store.Apply([]Op{{PutRun: run}}); err != nil {
			a.log.Error("process registry: cannot record the run", "error", err)
		}
	case *Reserve:
		e := m.Entry
		if e.RunID == "" {
			e.RunID = a.cfg.RunID
		}
		if e.HostPID == 0 {
			e.HostPID, e.HostStart = a.cfg.HostPID, a.cfg.HostStart
		}
		if e.Key == "" {
			e.Key = EntryKey(e.RunID, e.WorkerID, e.Generation)
		}
		if e.ReservedAt.IsZero() {
			e.ReservedAt = time.Now()
		}
		e.Status = Reserved
		a.add(ctx, Op{Put: &e})
	case *Activate:
		a.add(ctx, Op{Activate: &Entry{
			Key: m.Key, RunID: a.cfg.RunID, OSPid: m.OSPid, PGID: m.PGID, ActiveAt: time.Now(),
			HostPID: a.cfg.HostPID, HostStart: a.cfg.HostStart,
		}})
	case *Remove:
		a.add(ctx, Op{Delete: m.Key})
	case *Sync:
		// A group commit: a Sync with changes unwritten waits (SyncDelay at
		// most) for the next write, which answers every Sync gathered by
		// then. Workers reserving and syncing one after another thus share
		// one transaction.
		switch {
		case ctx.Sender() == nil:
			a.flush(ctx)
			return
		case len(a.pending) == 0:
			ctx.Respond(&SyncResult{Err: a.lastErr}) // everything sent before is written (or failed)
			return
		}
		a.syncers = append(a.syncers, ctx.Sender())
		if a.syncTimer == nil {
			self, root := ctx.Self(), ctx.ActorSystem().Root
			a.syncTimer = time.AfterFunc(a.cfg.SyncDelay, func() { root.Send(self, &flushNow{}) })
		}
	case *flushNow:
		a.flush(ctx)
	case *Read:
		a.flush(ctx)
		snap, err := a.cfg.Store.Read()
		ctx.Respond(&ReadResult{Snapshot: snap, Err: err})
	case *Forget:
		a.flush(ctx)
		ctx.Respond(&SyncResult{Err: a.cfg.Store.Apply(forgetOps(m.Keys, m.Runs))})
	case *actor.Stopping:
		a.flush(ctx)
	}
}

// add queues a change and arms the flush timer.
func (a *registryActor) add(ctx actor.Context, op Op) {
	a.pending = append(a.pending, op)
	a.arm(ctx)
}

func (a *registryActor) arm(ctx actor.Context) {
	if a.timer != nil {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.timer = time.AfterFunc(a.cfg.FlushDelay, func() { root.Send(self, &flushNow{}) })
}

// flush writes what is pending in one transaction. A failed write is
// logged and its changes dropped (the next start's cleanup and rogue sweep
// read the process table itself, so a lost entry costs a sweep, not a
// leak); Sync reports the failure.
func (a *registryActor) flush(ctx actor.Context) {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	if a.syncTimer != nil {
		a.syncTimer.Stop()
		a.syncTimer = nil
	}
	if len(a.pending) > 0 {
		a.lastErr = a.cfg.Store.Apply(a.pending)
		if a.lastErr != nil {
			a.log.Error("process registry: write failed", "changes", len(a.pending), "error", a.lastErr)
		}
		a.pending = nil
	}
	for _, to := range a.syncers {
		ctx.Send(to, &SyncResult{Err: a.lastErr})
	}
	a.syncers = nil
}

// Client sends the process registry's messages. Reserve, Activate and
// Remove are fire-and-forget; Sync, Read and Forget wait for the answer.
type Client struct {
	Root    *actor.RootContext
	PID     *actor.PID
	Timeout time.Duration // per request (default 10s)
}

// Reserve records a process about to be spawned.
func (c *Client) Reserve(e Entry) { c.Root.Send(c.PID, &Reserve{Entry: e}) }

// Activate records a spawned process's pid and group.
func (c *Client) Activate(key string, osPid, pgid int) {
	c.Root.Send(c.PID, &Activate{Key: key, OSPid: osPid, PGID: pgid})
}

// Remove forgets a reaped process.
func (c *Client) Remove(key string) { c.Root.Send(c.PID, &Remove{Key: key}) }

// Sync returns once every change sent before it is on disk.
func (c *Client) Sync(ctx context.Context) error {
	r, err := ask[*SyncResult](ctx, c, &Sync{})
	if err != nil {
		return err
	}
	return r.Err
}

// Read returns the registry's content.
func (c *Client) Read(ctx context.Context) (Snapshot, error) {
	r, err := ask[*ReadResult](ctx, c, &Read{})
	if err != nil {
		return Snapshot{}, err
	}
	return r.Snapshot, r.Err
}

// Forget removes entries and runs durably.
func (c *Client) Forget(ctx context.Context, keys, runs []string) error {
	r, err := ask[*SyncResult](ctx, c, &Forget{Keys: keys, Runs: runs})
	if err != nil {
		return err
	}
	return r.Err
}

func ask[T any](ctx context.Context, c *Client, msg any) (T, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return actorask.Ask[T](ctx, c.Root, c.PID, msg, timeout, "process registry")
}

// Direct is the store used without the actor (by `snakepit cleanup`, for a
// host that is gone). It has the Client's Read and Forget.
type Direct struct{ Store *Store }

// Read returns the file's content.
func (d Direct) Read(context.Context) (Snapshot, error) { return d.Store.Read() }

// Forget removes entries and runs durably.
func (d Direct) Forget(_ context.Context, keys, runs []string) error {
	return d.Store.Apply(forgetOps(keys, runs))
}

func forgetOps(keys, runs []string) []Op {
	ops := make([]Op, 0, len(keys)+len(runs))
	for _, k := range keys {
		ops = append(ops, Op{Delete: k})
	}
	for _, r := range runs {
		ops = append(ops, Op{DeleteRun: r})
	}
	return ops
}
