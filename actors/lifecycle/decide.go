// Package lifecycle holds the pure building blocks of worker recycling: the
// decision whether a worker must be recycled now (Decide), the per-generation
// request limit with jitter (RequestLimit), and the measurement of a Python
// worker's real memory, its whole process tree (TreeRSS).
//
// Decide and RequestLimit have no goroutines, no I/O and no clock: time and
// randomness are passed in. TreeRSS reads the process table.
package lifecycle

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Reason is why a worker is recycled; ReasonNone means it is not.
type Reason string

// The reasons a worker is recycled.
const (
	// ReasonNone: the worker is not recycled.
	ReasonNone Reason = ""
	// ReasonTTL: the worker has been alive longer than Limits.TTL.
	ReasonTTL Reason = "ttl"
	// ReasonMaxRequests: the worker has served its request limit.
	ReasonMaxRequests Reason = "max_requests"
	// ReasonMemory: the Python process tree's RSS is over the threshold.
	ReasonMemory Reason = "memory"
	// ReasonIdle: no call started or finished for Limits.IdleTTL.
	ReasonIdle Reason = "idle_ttl"
	// ReasonManual: recycled on request (App.RecycleWorker); Decide never
	// returns it.
	ReasonManual Reason = "manual"
)

// Limits are a pool's recycling settings. A zero value turns its check off;
// the zero Limits recycles nothing.
type Limits struct {
	// TTL recycles a worker alive at least this long.
	TTL time.Duration
	// IdleTTL recycles a worker with no calls in flight and no call started
	// or finished for at least this long.
	IdleTTL time.Duration
	// MaxRequests recycles a worker after this many successful calls.
	MaxRequests int
	// MaxRequestsJitter adds a uniform random 0..MaxRequestsJitter to
	// MaxRequests for each generation (see RequestLimit), so the workers of
	// a pool started together do not all recycle at once.
	MaxRequestsJitter int
	// MemoryThresholdMB recycles a worker whose Python process tree's
	// resident set is over this many MiB.
	MemoryThresholdMB int
}

// Enabled reports whether any recycling check is on (jitter alone is not a
// check).
func (l Limits) Enabled() bool {
	return l.TTL > 0 || l.IdleTTL > 0 || l.MaxRequests > 0 || l.MemoryThresholdMB > 0
}

// Validate reports negative values, all of them in one error.
func (l Limits) Validate() error {
	var errs []error
	if l.TTL < 0 {
		errs = append(errs, fmt.Errorf("lifecycle: TTL is negative (%s)", l.TTL))
	}
	if l.IdleTTL < 0 {
		errs = append(errs, fmt.Errorf("lifecycle: IdleTTL is negative (%s)", l.IdleTTL))
	}
	if l.MaxRequests < 0 {
		errs = append(errs, fmt.Errorf("lifecycle: MaxRequests is negative (%d)", l.MaxRequests))
	}
	if l.MaxRequestsJitter < 0 {
		errs = append(errs, fmt.Errorf("lifecycle: MaxRequestsJitter is negative (%d)", l.MaxRequestsJitter))
	}
	if l.MemoryThresholdMB < 0 {
		errs = append(errs, fmt.Errorf("lifecycle: MemoryThresholdMB is negative (%d)", l.MemoryThresholdMB))
	}
	return errors.Join(errs...)
}

// WorkerState is what is known about one worker at check time.
type WorkerState struct {
	// WorkerID names the worker (not used by Decide; for the caller's
	// bookkeeping).
	WorkerID string
	// StartedAt is when this generation became ready. Zero means unknown:
	// the TTL check is skipped.
	StartedAt time.Time
	// LastActive is the last call start or end (StartedAt if none). Zero
	// falls back to StartedAt; both zero skips the idle check.
	LastActive time.Time
	// Requests counts the successful calls of this generation.
	Requests int
	// MaxRequests is this generation's limit including jitter (0 = use
	// Limits.MaxRequests).
	MaxRequests int
	// InFlight counts the calls running on the worker now.
	InFlight int
	// RSSBytes is the Python process tree's RSS; 0 = unknown (not measured).
	RSSBytes uint64
	// Draining is true for a worker already being recycled or removed.
	Draining bool
}

// Decide returns why w must be recycled now, or ReasonNone.
//
// The checks, in order (the first match wins):
//
//   - ReasonTTL: Limits.TTL > 0 and now.Sub(StartedAt) >= TTL;
//   - ReasonMaxRequests: the limit is w.MaxRequests when > 0, else
//     Limits.MaxRequests; a zero limit is off; Requests >= limit;
//   - ReasonMemory: Limits.MemoryThresholdMB > 0, RSSBytes > 0 (measured)
//     and RSSBytes > MemoryThresholdMB*1024*1024 (strictly);
//   - ReasonIdle: Limits.IdleTTL > 0, InFlight == 0 and
//     now.Sub(LastActive) >= IdleTTL.
//
// A draining worker is never chosen.
func Decide(w WorkerState, l Limits, now time.Time) Reason {
	if w.Draining {
		return ReasonNone
	}
	if l.TTL > 0 && !w.StartedAt.IsZero() && now.Sub(w.StartedAt) >= l.TTL {
		return ReasonTTL
	}
	limit := l.MaxRequests
	if w.MaxRequests > 0 {
		limit = w.MaxRequests
	}
	if limit > 0 && w.Requests >= limit {
		return ReasonMaxRequests
	}
	if overMemory(w.RSSBytes, l.MemoryThresholdMB) {
		return ReasonMemory
	}
	if l.IdleTTL > 0 && w.InFlight == 0 {
		last := w.LastActive
		if last.IsZero() {
			last = w.StartedAt
		}
		if !last.IsZero() && now.Sub(last) >= l.IdleTTL {
			return ReasonIdle
		}
	}
	return ReasonNone
}

// overMemory reports rss > thresholdMB MiB; an unknown rss (0) or a zero
// threshold is never over, and a threshold too large for uint64 bytes is
// never reached.
func overMemory(rss uint64, thresholdMB int) bool {
	if rss == 0 || thresholdMB <= 0 {
		return false
	}
	if uint64(thresholdMB) > math.MaxUint64>>20 {
		return false
	}
	return rss > uint64(thresholdMB)<<20
}

// RequestLimit is one generation's max-requests limit: maxRequests plus a
// uniform random integer in [0, jitter] (inclusive); 0 when maxRequests is 0
// or negative (off), exactly maxRequests when jitter is 0 or negative.
//
// rnd(n) must return an integer in [0, n) and be safe to call from the
// caller's goroutine; nil uses math/rand/v2's IntN. A value out of range is
// clamped into [0, jitter]. The sum saturates at math.MaxInt.
func RequestLimit(maxRequests, jitter int, rnd func(n int) int) int {
	if maxRequests <= 0 {
		return 0
	}
	if jitter <= 0 {
		return maxRequests
	}
	if rnd == nil {
		rnd = rand.IntN
	}
	var extra int
	if jitter == math.MaxInt {
		// jitter+1 would overflow; the sum saturates anyway.
		extra = max(rnd(jitter), 0)
	} else {
		extra = min(max(rnd(jitter+1), 0), jitter)
	}
	if maxRequests > math.MaxInt-extra {
		return math.MaxInt
	}
	return maxRequests + extra
}
