package sessions

import (
	"bytes"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Props returns the session store actor's props. Zero (and negative) fields of c take the defaults; call
// c.Validate first to reject negative ones. The store starts its periodic sweep when it starts and stops
// it when it stops.
func Props(c Config) *actor.Props {
	c = c.withDefaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &storeActor{
			cfg:      c,
			log:      c.Logger.With("actor", "session_store"),
			sessions: make(map[string]*Session),
		}
	})
}

type storeActor struct {
	cfg      Config
	log      *slog.Logger
	sessions map[string]*Session
	stats    Stats // counters; Active and MaxSessions are filled in on GetStats
	timer    *time.Timer
	stopped  bool
}

// Receive handles the store's messages.
func (a *storeActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.stopped = false
		a.arm(ctx)
	case *actor.Stopping, *actor.Restarting:
		a.stopped = true
		if a.timer != nil {
			a.timer.Stop()
			a.timer = nil
		}
	case *sweepTick:
		if a.stopped {
			return
		}
		a.sweep()
		a.arm(ctx)
	case *Create:
		s, created, err := a.create(m)
		respond(ctx, &CreateResult{Session: s, Created: created, Err: err})
	case *Get:
		s, err := a.access(m.ID)
		res := &GetResult{Err: err}
		if err == nil {
			res.Session = s.clone()
		}
		respond(ctx, res)
	case *Touch:
		_, err := a.access(m.ID)
		respond(ctx, &TouchResult{Valid: err == nil})
	case *Update:
		s, err := a.access(m.ID)
		res := &UpdateResult{Err: err}
		if err == nil {
			maps.Copy(s.Metadata, m.Metadata)
			for k, v := range m.Data {
				s.Data[k] = bytes.Clone(v)
			}
			for _, k := range m.DeleteData {
				delete(s.Data, k)
			}
			res.Session = s.clone()
		}
		respond(ctx, res)
	case *Delete:
		respond(ctx, &DeleteResult{Found: a.delete(m.ID)})
	case *List:
		respond(ctx, &ListResult{Sessions: a.list()})
	case *GetStats:
		st := a.stats
		st.Active = a.live()
		st.MaxSessions = a.cfg.MaxSessions
		respond(ctx, &st)
	case *Sweep:
		respond(ctx, &SweepResult{Expired: a.sweep()})
	}
}

// respond answers the current message when it has a sender.
func respond(ctx actor.Context, res any) {
	if ctx.Sender() != nil {
		ctx.Respond(res)
	}
}

// arm schedules the next periodic sweep. The timer only sends a message, so a tick that fires after the
// store stopped ends up a dead letter and does nothing.
func (a *storeActor) arm(ctx actor.Context) {
	if a.timer != nil {
		a.timer.Stop()
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	a.timer = time.AfterFunc(a.cfg.SweepInterval, func() { root.Send(self, &sweepTick{}) })
}

func (a *storeActor) create(m *Create) (Session, bool, error) {
	if err := ValidateID(m.ID); err != nil {
		return Session{}, false, err
	}
	now := a.cfg.Now()
	if s, ok := a.lookup(m.ID, now); ok {
		s.LastAccess = now
		maps.Copy(s.Metadata, m.Metadata)
		return s.clone(), false, nil
	}
	if len(a.sessions) >= a.cfg.MaxSessions {
		// Expired sessions are already gone to their callers: drop them before refusing.
		a.sweep()
		if len(a.sessions) >= a.cfg.MaxSessions {
			a.stats.RejectedQuota++
			a.log.Warn("session quota reached", "session", m.ID, "max_sessions", a.cfg.MaxSessions)
			return Session{}, false, quotaExceeded(a.cfg.MaxSessions)
		}
	}
	ttl := m.TTL
	if ttl <= 0 {
		ttl = a.cfg.DefaultTTL
	}
	s := &Session{
		ID:         m.ID,
		Metadata:   make(map[string]string, len(m.Metadata)),
		Data:       make(map[string][]byte),
		CreatedAt:  now,
		LastAccess: now,
		TTL:        ttl,
	}
	maps.Copy(s.Metadata, m.Metadata)
	a.sessions[m.ID] = s
	a.stats.Created++
	a.log.Debug("session created", "session", m.ID, "ttl", ttl)
	return s.clone(), true, nil
}

// access returns live session id touched, or an error wrapping ErrInvalidID or ErrNotFound.
func (a *storeActor) access(id string) (*Session, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	now := a.cfg.Now()
	s, ok := a.lookup(id, now)
	if !ok {
		return nil, notFound(id)
	}
	s.LastAccess = now
	return s, nil
}

// lookup returns live session id. An expired one is removed as expired and not returned.
func (a *storeActor) lookup(id string, now time.Time) (*Session, bool) {
	s, ok := a.sessions[id]
	if !ok {
		return nil, false
	}
	if s.Expired(now) {
		a.remove(id, ReasonExpired)
		return nil, false
	}
	return s, true
}

func (a *storeActor) delete(id string) bool {
	if ValidateID(id) != nil {
		return false
	}
	if _, ok := a.lookup(id, a.cfg.Now()); !ok {
		return false
	}
	a.remove(id, ReasonDeleted)
	a.log.Debug("session deleted", "session", id)
	return true
}

// list returns copies of the live sessions, sorted by ID.
func (a *storeActor) list() []Session {
	now := a.cfg.Now()
	out := make([]Session, 0, len(a.sessions))
	for _, s := range a.sessions {
		if !s.Expired(now) {
			out = append(out, s.clone())
		}
	}
	slices.SortFunc(out, func(x, y Session) int { return strings.Compare(x.ID, y.ID) })
	return out
}

func (a *storeActor) live() int {
	now, n := a.cfg.Now(), 0
	for _, s := range a.sessions {
		if !s.Expired(now) {
			n++
		}
	}
	return n
}

// sweep removes every expired session and returns how many it removed.
func (a *storeActor) sweep() int {
	now := a.cfg.Now()
	var expired []string
	for id, s := range a.sessions {
		if s.Expired(now) {
			expired = append(expired, id)
		}
	}
	slices.Sort(expired)
	for _, id := range expired {
		a.remove(id, ReasonExpired)
	}
	if len(expired) > 0 {
		a.log.Debug("expired sessions swept", "expired", len(expired), "active", len(a.sessions))
	}
	return len(expired)
}

// remove drops session id, counts it and tells Config.OnRemoved.
func (a *storeActor) remove(id, reason string) {
	delete(a.sessions, id)
	switch reason {
	case ReasonExpired:
		a.stats.Expired++
	case ReasonDeleted:
		a.stats.Deleted++
	}
	a.notify(id, reason)
}

// notify calls Config.OnRemoved, recovering a panic so that it cannot restart the store (and lose every
// session).
func (a *storeActor) notify(id, reason string) {
	if a.cfg.OnRemoved == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("session OnRemoved callback panicked", "session", id, "reason", reason, "panic", r)
		}
	}()
	a.cfg.OnRemoved(id, reason)
}
