package sessions

import "time"

// Every request below is answered with its result type when it has a sender (ctx.Request, RequestFuture,
// Client); sent without one (ctx.Send, Root.Send) it is carried out and gets no reply.

// Create creates session ID with Metadata and TTL (Config.DefaultTTL when zero or negative); answered with
// *CreateResult. It is idempotent: when ID already exists and has not expired, that session is touched,
// Metadata is merged into its metadata (its TTL is kept) and it is returned with Created false. The quota
// (Config.MaxSessions) is only checked for a new session; expired sessions are removed before a Create is
// refused for it.
type Create struct {
	ID       string
	Metadata map[string]string
	TTL      time.Duration
}

// CreateResult answers Create. Err wraps ErrInvalidID or ErrQuotaExceeded when the store refuses.
type CreateResult struct {
	Session Session
	Created bool // false when the session already existed
	Err     error
}

// Get asks for session ID and touches it; answered with *GetResult. An expired session found by Get is
// removed (and counted as expired) and reported as not found.
type Get struct{ ID string }

// GetResult answers Get. Err wraps ErrNotFound or ErrInvalidID.
type GetResult struct {
	Session Session
	Err     error
}

// Touch marks session ID as used now. It is usually sent without a sender (once per call); with one it is
// answered with *TouchResult. An expired session is removed as by Get.
type Touch struct{ ID string }

// TouchResult answers Touch; Valid tells whether the session exists and has not expired.
type TouchResult struct{ Valid bool }

// Update changes session ID and touches it; answered with *UpdateResult. Metadata is merged into the
// session's metadata (an empty value is stored, not deleted), Data's keys are set, then the keys in
// DeleteData are deleted (so a key in both ends deleted).
type Update struct {
	ID         string
	Metadata   map[string]string
	Data       map[string][]byte
	DeleteData []string
}

// UpdateResult answers Update with the updated session. Err wraps ErrNotFound or ErrInvalidID.
type UpdateResult struct {
	Session Session
	Err     error
}

// Delete removes session ID; answered with *DeleteResult. Config.OnRemoved is called with ReasonDeleted
// when it was found. A session that had already expired is removed as expired and not reported found.
type Delete struct{ ID string }

// DeleteResult answers Delete; Found tells whether a live session was deleted.
type DeleteResult struct{ Found bool }

// List asks for the live sessions; answered with *ListResult. Expired sessions not yet swept are left out
// (and left for the sweep).
type List struct{}

// ListResult answers List with the live sessions, sorted by ID.
type ListResult struct{ Sessions []Session }

// GetStats asks for the store's counters; answered with *Stats.
type GetStats struct{}

// Stats answers GetStats. Active counts the live sessions (expired ones not yet swept are left out);
// the other counters count since the store started.
type Stats struct {
	Active        int
	Created       uint64 // sessions created (idempotent re-creates not counted)
	Expired       uint64 // sessions removed because they expired
	Deleted       uint64 // sessions removed by Delete
	RejectedQuota uint64 // Creates refused with ErrQuotaExceeded
	MaxSessions   int
}

// Sweep removes every expired session at once, as the periodic sweep does; answered with *SweepResult.
type Sweep struct{}

// SweepResult answers Sweep with the number of sessions it removed.
type SweepResult struct{ Expired int }

// sweepTick is the periodic sweep's message to the store itself.
type sweepTick struct{}
