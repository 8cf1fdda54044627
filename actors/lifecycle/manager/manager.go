// Package manager is the lifecycle manager actor: every Interval it asks
// each pool for its workers' state, measures the memory of their Python
// process trees (bounded concurrency), decides with lifecycle.Decide and
// asks the pool to recycle the workers that must go. Its mailbox never
// waits on a pool or on /proc: each round runs in a goroutine.
package manager

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
)

// Pool is one pool the manager watches.
type Pool struct {
	Name   string
	PID    *actor.PID
	Limits lifecycle.Limits
}

// Config configures the manager.
type Config struct {
	Pools []Pool
	// Interval between rounds (default 60s, upstream's).
	Interval time.Duration
	// Concurrency bounds the memory measurements running at once (default 8).
	Concurrency int
	// MeasureTimeout bounds one worker's measurement (default 2s).
	MeasureTimeout time.Duration
	// RSS measures a process tree (default lifecycle.TreeRSS).
	RSS    func(ctx context.Context, pid int) (uint64, error)
	Logger *slog.Logger
}

// CheckNow runs a round at once (or joins the running one); answered with
// *Round when it ends.
type CheckNow struct{}

// Round reports one round: the recycles it asked for.
type Round struct {
	Recycled []pool.Recycle
	At       time.Time
}

type tick struct{}
type roundDone struct{ round *Round }

// Props returns the manager's props. With no pool limits at all it still
// runs (it costs one cheap request per pool per interval).
func Props(c Config) *actor.Props {
	if c.Interval <= 0 {
		c.Interval = 60 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.MeasureTimeout <= 0 {
		c.MeasureTimeout = 2 * time.Second
	}
	if c.RSS == nil {
		c.RSS = lifecycle.TreeRSS
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return actor.PropsFromProducer(func() actor.Actor { return &managerActor{cfg: c} })
}

type managerActor struct {
	cfg     Config
	timer   *time.Timer
	running bool
	waiters []*actor.PID
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func (m *managerActor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		m.arm(ctx)
	case *tick:
		m.timer = nil
		m.startRound(ctx)
	case *CheckNow:
		if ctx.Sender() != nil {
			m.waiters = append(m.waiters, ctx.Sender())
		}
		m.startRound(ctx)
	case *roundDone:
		m.running = false
		for _, w := range m.waiters {
			ctx.Send(w, msg.round)
		}
		m.waiters = nil
		m.arm(ctx)
	case *actor.Stopping:
		if m.timer != nil {
			m.timer.Stop()
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
	}
}

func (m *managerActor) arm(ctx actor.Context) {
	if m.timer != nil {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	m.timer = time.AfterFunc(m.cfg.Interval, func() { root.Send(self, &tick{}) })
}

func (m *managerActor) startRound(ctx actor.Context) {
	if m.running {
		return
	}
	m.running = true
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	rctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	self, root := ctx.Self(), ctx.ActorSystem().Root
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer cancel()
		r := m.round(rctx, root)
		root.Send(self, &roundDone{round: r})
	}()
}

// round checks every pool once.
func (m *managerActor) round(ctx context.Context, root *actor.RootContext) *Round {
	r := &Round{At: time.Now()}
	sem := make(chan struct{}, m.cfg.Concurrency)
	var mu sync.Mutex
	for _, p := range m.cfg.Pools {
		res, err := root.RequestFuture(p.PID, &pool.GetWorkerStates{}, 5*time.Second).Result()
		if err != nil {
			m.cfg.Logger.Debug("lifecycle: pool did not answer", "pool", p.Name, "error", err)
			continue
		}
		states, _ := res.(*pool.WorkerStates)
		if states == nil {
			continue
		}
		var wg sync.WaitGroup
		for _, w := range states.Workers {
			if w.Draining {
				continue
			}
			wg.Add(1)
			go func(w pool.WorkerState) {
				defer wg.Done()
				if p.Limits.MemoryThresholdMB > 0 && w.OSPid > 0 {
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						return
					}
					mctx, cancel := context.WithTimeout(ctx, m.cfg.MeasureTimeout)
					rss, err := m.cfg.RSS(mctx, w.OSPid)
					cancel()
					<-sem
					if err == nil {
						w.RSSBytes = rss
					}
				}
				reason := lifecycle.Decide(w.WorkerState, p.Limits, time.Now())
				if reason == lifecycle.ReasonNone {
					return
				}
				rec := pool.Recycle{WorkerID: w.WorkerID, Reason: reason, RSSBytes: w.RSSBytes}
				m.cfg.Logger.Info("lifecycle: recycling", "pool", p.Name, "worker", w.WorkerID, "reason", reason,
					"uptime", time.Since(w.StartedAt).Round(time.Millisecond), "requests", w.Requests, "rss_mb", w.RSSBytes>>20)
				root.Send(p.PID, &rec)
				mu.Lock()
				r.Recycled = append(r.Recycled, rec)
				mu.Unlock()
			}(w)
		}
		wg.Wait()
	}
	return r
}
