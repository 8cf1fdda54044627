package pool

import (
	"fmt"
	"time"
)

// BreakerState is the state of a circuit breaker.
type BreakerState string

// The states of a circuit breaker.
const (
	// BreakerClosed lets every call through and counts failures.
	BreakerClosed BreakerState = "closed"
	// BreakerOpen refuses calls until its OpenFor has passed.
	BreakerOpen BreakerState = "open"
	// BreakerHalfOpen lets one trial call through; its outcome closes the
	// breaker or opens it again.
	BreakerHalfOpen BreakerState = "half_open"
)

// Defaults callers use for an unset BreakerConfig.
const (
	// DefaultBreakerThreshold is the default BreakerConfig.Threshold.
	DefaultBreakerThreshold = 5
	// DefaultBreakerWindow is the default BreakerConfig.Window.
	DefaultBreakerWindow = 10 * time.Second
	// DefaultBreakerOpenFor is the default BreakerConfig.OpenFor.
	DefaultBreakerOpenFor = 5 * time.Second
)

// BreakerConfig configures a Breaker: Threshold failures within Window open
// the breaker; after OpenFor it lets one trial through (half-open); a success
// closes it, a failure opens it again. Threshold 0 (or negative) disables
// the breaker: it is always closed.
type BreakerConfig struct {
	// Threshold is how many failures within Window open the breaker
	// (callers default it to 5); 0 disables the breaker.
	Threshold int
	// Window is how long a failure counts (callers default it to 10s); a
	// failure exactly Window old no longer counts. NewBreaker uses
	// DefaultBreakerWindow when it is 0 or negative.
	Window time.Duration
	// OpenFor is how long an open breaker refuses calls before its trial
	// (callers default it to 5s). NewBreaker uses DefaultBreakerOpenFor when
	// it is 0 or negative.
	OpenFor time.Duration
}

// Validate reports negative values.
func (c BreakerConfig) Validate() error {
	switch {
	case c.Threshold < 0:
		return fmt.Errorf("pool: breaker threshold is negative (%d)", c.Threshold)
	case c.Window < 0:
		return fmt.Errorf("pool: breaker window is negative (%s)", c.Window)
	case c.OpenFor < 0:
		return fmt.Errorf("pool: breaker open-for is negative (%s)", c.OpenFor)
	}
	return nil
}

// Breaker is a pool's circuit breaker over worker crashes. It is a pure value
// with no clock and no locking: time is passed in, and its owner (the pool
// actor) calls it from one goroutine only.
//
// Every call that Allow let through in half-open state must end in Success,
// Failure or Abandon, or no further trial is ever let through. A call that
// ended with an ordinary error on a live worker (a Python exception) is a
// Success here: the breaker counts crashes, not errors.
type Breaker struct {
	cfg       BreakerConfig
	open      bool        // open or half-open (half-open: now >= openedAt+OpenFor)
	openedAt  time.Time   // when it last opened
	trial     bool        // half-open: the one trial has been let through
	failures  []time.Time // closed: recent failures, oldest first, fewer than Threshold
	openCount int
}

// NewBreaker returns a closed breaker. A zero or negative Window or OpenFor
// is replaced by its default.
func NewBreaker(c BreakerConfig) *Breaker {
	if c.Window <= 0 {
		c.Window = DefaultBreakerWindow
	}
	if c.OpenFor <= 0 {
		c.OpenFor = DefaultBreakerOpenFor
	}
	return &Breaker{cfg: c}
}

// Config returns the breaker's configuration, defaults filled in.
func (b *Breaker) Config() BreakerConfig { return b.cfg }

// disabled reports a breaker that never opens.
func (b *Breaker) disabled() bool { return b.cfg.Threshold <= 0 }

// halfOpen reports an open breaker whose OpenFor has passed at now.
func (b *Breaker) halfOpen(now time.Time) bool {
	return b.open && !now.Before(b.openedAt.Add(b.cfg.OpenFor))
}

// Allow reports whether a new call may proceed at now. Closed: yes. Open: no
// until OpenFor has passed since it opened; then it is half-open and allows
// exactly one trial (returns true once; later calls return false until that
// trial's outcome is recorded with Success or Failure, or it is given up with
// Abandon).
func (b *Breaker) Allow(now time.Time) bool {
	if b.disabled() || !b.open {
		return true
	}
	if !b.halfOpen(now) || b.trial {
		return false
	}
	b.trial = true
	return true
}

// Failure records a failure (a worker crash) at now. Closed: it is counted
// (failures Window old or older are forgotten) and the breaker opens when
// Threshold are counted. Half-open: the breaker opens again and OpenFor
// starts again. Open: nothing changes (the open period is not extended).
func (b *Breaker) Failure(now time.Time) {
	if b.disabled() {
		return
	}
	if b.open {
		if b.halfOpen(now) {
			b.openAt(now)
		}
		return
	}
	b.forget(now)
	b.failures = append(b.failures, now)
	if len(b.failures) >= b.cfg.Threshold {
		b.openAt(now)
	}
}

// Success records a successful call at now. Half-open: the breaker closes and
// its failures are forgotten. Closed or open: nothing changes.
func (b *Breaker) Success(now time.Time) {
	if b.disabled() || !b.halfOpen(now) {
		return
	}
	b.open, b.trial = false, false
	b.failures = b.failures[:0]
}

// Abandon gives up the trial Allow let through in half-open state without an
// outcome (the call was cancelled, or never reached a worker): the next Allow
// may let another trial through. Otherwise it does nothing.
func (b *Breaker) Abandon(now time.Time) {
	if b.halfOpen(now) {
		b.trial = false
	}
}

// State returns the state at now; an open breaker whose OpenFor has passed
// reports BreakerHalfOpen. A disabled breaker is always BreakerClosed.
func (b *Breaker) State(now time.Time) BreakerState {
	switch {
	case b.disabled() || !b.open:
		return BreakerClosed
	case b.halfOpen(now):
		return BreakerHalfOpen
	default:
		return BreakerOpen
	}
}

// RetryAfter is how long from now until an open breaker lets a trial
// through; 0 unless the state at now is BreakerOpen.
func (b *Breaker) RetryAfter(now time.Time) time.Duration {
	if b.State(now) != BreakerOpen {
		return 0
	}
	return b.openedAt.Add(b.cfg.OpenFor).Sub(now)
}

// Failures is how many failures count toward opening at now (0 unless
// closed).
func (b *Breaker) Failures(now time.Time) int {
	if b.disabled() || b.open {
		return 0
	}
	n := 0
	for _, t := range b.failures {
		if now.Sub(t) < b.cfg.Window {
			n++
		}
	}
	return n
}

// Opened counts how many times the breaker opened, reopening from half-open
// included (for stats).
func (b *Breaker) Opened() int { return b.openCount }

// openAt opens the breaker at now.
func (b *Breaker) openAt(now time.Time) {
	b.open, b.trial, b.openedAt = true, false, now
	b.failures = b.failures[:0]
	b.openCount++
}

// forget drops the failures that are Window old or older at now.
func (b *Breaker) forget(now time.Time) {
	i := 0
	for i < len(b.failures) && now.Sub(b.failures[i]) >= b.cfg.Window {
		i++
	}
	b.failures = append(b.failures[:0], b.failures[i:]...)
}
