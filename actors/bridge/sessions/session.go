// Package sessions holds the session store actor.
//
// A session groups a caller's calls: it has an id, free-form metadata, per-session data that host tools
// keep, and an idle time-to-live. The store (Props, Client) is an actor that owns every session of a node:
// it creates them (idempotently, within a quota), touches them on use, updates and deletes them, and
// removes those idle past their TTL, both on access and on a periodic sweep. It never evicts a live
// session to make room; a Create over the quota is refused with ErrQuotaExceeded.
//
// The store's messages are plain Go values exchanged within one actor system. Sessions it returns are deep
// copies: changing one does not change the store.
package sessions

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"
)

// MaxIDLen is the longest session id accepted, in bytes.
const MaxIDLen = 256

// Defaults used for the zero values of Config's fields.
const (
	DefaultTTL           = time.Hour // upstream Snakepit's 3600 s
	DefaultSweepInterval = 60 * time.Second
	DefaultMaxSessions   = 10000
)

// Removal reasons passed to Config.OnRemoved.
const (
	ReasonDeleted = "deleted"
	ReasonExpired = "expired"
)

var (
	// ErrNotFound is wrapped by the error returned for a session that does not exist or has expired.
	ErrNotFound = errors.New("sessions: session not found")
	// ErrQuotaExceeded is wrapped by the error returned when creating a session would exceed
	// Config.MaxSessions.
	ErrQuotaExceeded = errors.New("sessions: quota exceeded")
	// ErrInvalidID is wrapped by the error returned for an empty session id or one longer than MaxIDLen.
	ErrInvalidID = errors.New("sessions: invalid session id")
)

// Session is one session as the store returns it: a deep copy, which the caller may keep and change.
// Metadata and Data are never nil in a returned Session.
type Session struct {
	ID         string
	Metadata   map[string]string // free-form; set at create and by Update
	Data       map[string][]byte // state host tools keep per session; Update sets and deletes keys
	CreatedAt  time.Time
	LastAccess time.Time     // set by create, Get, Touch and Update
	TTL        time.Duration // idle time after which the session expires
}

// Expired reports whether s has been idle for its TTL or longer at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.LastAccess.Add(s.TTL)) }

// clone returns a deep copy of s (maps and byte slices copied, maps never nil).
func (s *Session) clone() Session {
	c := *s
	c.Metadata = make(map[string]string, len(s.Metadata))
	maps.Copy(c.Metadata, s.Metadata)
	c.Data = make(map[string][]byte, len(s.Data))
	for k, v := range s.Data {
		c.Data[k] = bytes.Clone(v)
	}
	return c
}

// ValidateID returns nil for a usable session id, and an error wrapping ErrInvalidID for an empty one or
// one longer than MaxIDLen bytes.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: id is empty", ErrInvalidID)
	case len(id) > MaxIDLen:
		return fmt.Errorf("%w: id is %d bytes long, at most %d allowed", ErrInvalidID, len(id), MaxIDLen)
	}
	return nil
}

func notFound(id string) error {
	return fmt.Errorf("%w: no live session %q (unknown, deleted or expired)", ErrNotFound, id)
}

func quotaExceeded(limit int) error {
	return fmt.Errorf("%w: quota of %d sessions reached; delete or let one expire first", ErrQuotaExceeded, limit)
}

// Config configures the session store actor. Zero values take the defaults.
type Config struct {
	// DefaultTTL is the TTL of a session created without one (default DefaultTTL, 1h).
	DefaultTTL time.Duration
	// SweepInterval is how often expired sessions are removed (default DefaultSweepInterval, 60s).
	SweepInterval time.Duration
	// MaxSessions is the most sessions the store holds at once (default DefaultMaxSessions, 10000).
	MaxSessions int
	// Now is the store's clock (default time.Now); tests inject a fake one.
	Now func() time.Time
	// OnRemoved, when set, is called with the id and the reason (ReasonDeleted or ReasonExpired) whenever
	// a session leaves the store. It runs inside the actor, synchronously, and must not block or call the
	// store and wait for it; a panic in it is recovered and logged. The pool uses it to drop the
	// session's worker binding.
	OnRemoved func(id, reason string)
	// Logger receives the store's logs (default slog.Default()).
	Logger *slog.Logger
}

// Validate reports the first problem with c: a negative DefaultTTL, SweepInterval or MaxSessions. Zero
// values are valid and mean the defaults.
func (c Config) Validate() error {
	switch {
	case c.DefaultTTL < 0:
		return fmt.Errorf("sessions: DefaultTTL must not be negative, got %s", c.DefaultTTL)
	case c.SweepInterval < 0:
		return fmt.Errorf("sessions: SweepInterval must not be negative, got %s", c.SweepInterval)
	case c.MaxSessions < 0:
		return fmt.Errorf("sessions: MaxSessions must not be negative, got %d", c.MaxSessions)
	}
	return nil
}

// withDefaults returns c with its zero (and, for Props, negative) values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
