package snakepit

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/internal/sperr"
)

// SessionConfig configures the session store.
type SessionConfig struct {
	TTL           time.Duration // idle time until a session expires (default 1h)
	SweepInterval time.Duration // how often expired sessions are removed (default 60s)
	MaxSessions   int           // quota (default 10000); creating one more fails with session_quota_exceeded
}

// Session returns a handle on session id, creating the session when it does
// not exist (which fails with session_quota_exceeded over the quota).
// Calls through the handle carry the session (so they keep to its worker,
// see Affinity) and opts; they fail with session_not_found once the session
// was closed or expired.
func (a *App) Session(ctx context.Context, id string, opts ...ExecuteOption) (_ *Session, err error) {
	defer func() { err = public(err) }()
	if _, _, err := a.sessions.Create(ctx, id, nil, 0); err != nil {
		return nil, sessionErr(err)
	}
	return &Session{app: a, id: id, opts: opts}, nil
}

// Session is a handle on one session.
type Session struct {
	app  *App
	id   string
	opts []ExecuteOption
}

// ID is the session id.
func (s *Session) ID() string { return s.id }

func (s *Session) callOpts(opts []ExecuteOption) []ExecuteOption {
	out := append(append([]ExecuteOption{}, s.opts...), opts...)
	return append(out, WithSession(s.id))
}

func (s *Session) live(ctx context.Context) error {
	ok, err := s.app.sessions.Valid(ctx, s.id) // touches it
	if err != nil {
		return sessionErr(err)
	}
	if !ok {
		return sperr.New(sperr.CodeSessionNotFound, "session %q was closed or has expired", s.id)
	}
	return nil
}

// Execute runs a tool in the session.
func (s *Session) Execute(ctx context.Context, tool string, args any, opts ...ExecuteOption) (_ *Result, err error) {
	defer func() { err = public(err) }()
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	return s.app.Execute(ctx, tool, args, s.callOpts(opts)...)
}

// ExecuteStream runs a streaming tool in the session.
func (s *Session) ExecuteStream(ctx context.Context, tool string, args any, opts ...ExecuteOption) (_ *Stream, err error) {
	defer func() { err = public(err) }()
	if err := s.live(ctx); err != nil {
		return nil, err
	}
	return s.app.ExecuteStream(ctx, tool, args, s.callOpts(opts)...)
}

// State returns the session's metadata and data (and touches it).
func (s *Session) State(ctx context.Context) (_ SessionState, err error) {
	defer func() { err = public(err) }()
	st, err := s.app.sessions.Get(ctx, s.id)
	return sessionState(st), sessionErr(err)
}

// Update changes the session's metadata and data.
func (s *Session) Update(ctx context.Context, u SessionUpdate) (_ SessionState, err error) {
	defer func() { err = public(err) }()
	st, err := s.app.sessions.Update(ctx, s.id, u.internal(s.id))
	return sessionState(st), sessionErr(err)
}

// Close deletes the session; its worker binding goes with it.
func (s *Session) Close(ctx context.Context) (err error) {
	defer func() { err = public(err) }()
	_, err = s.app.sessions.Delete(ctx, s.id)
	return sessionErr(err)
}

// sessionErr maps the store's errors to structured ones.
func sessionErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sessions.ErrNotFound):
		return sperr.Wrap(sperr.CodeSessionNotFound, err, "%v", err)
	case errors.Is(err, sessions.ErrQuotaExceeded):
		return sperr.Wrap(sperr.CodeSessionQuotaExceeded, err, "%v", err)
	case errors.Is(err, sessions.ErrInvalidID):
		return sperr.Wrap(sperr.CodeInvalidArgument, err, "%v", err)
	}
	return err
}

// sessionStore adapts the session store's client to the bridge server.

// SessionState is a session as the store keeps it.
type SessionState struct {
	ID       string
	Metadata map[string]string // free-form; set at create and by Update
	// Data is the state host tools keep per session; Update sets and
	// deletes keys.
	Data       map[string][]byte
	CreatedAt  time.Time
	LastAccess time.Time     // set when created, read and updated
	TTL        time.Duration // idle time after which the session expires
}

// SessionUpdate changes a session: Metadata and Data keys are set,
// DeleteData keys removed.
type SessionUpdate struct {
	Metadata   map[string]string
	Data       map[string][]byte
	DeleteData []string
}

func sessionState(s sessions.Session) SessionState {
	return SessionState{ID: s.ID, Metadata: s.Metadata, Data: s.Data, CreatedAt: s.CreatedAt, LastAccess: s.LastAccess, TTL: s.TTL}
}

func (u SessionUpdate) internal(id string) sessions.Update {
	return sessions.Update{ID: id, Metadata: maps.Clone(u.Metadata), Data: maps.Clone(u.Data), DeleteData: u.DeleteData}
}
