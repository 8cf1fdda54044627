package snakepit

import (
	"fmt"
	"time"
)

// TimeoutProfile names a set of call budgets, as upstream Snakepit's
// timeout_profile does: one budget for a unary call, one for a stream, and
// the longest a call may wait in a pool's queue. A call's deadline is its
// context's, else WithTimeout's, else its profile's budget from the moment
// it is made; its queue wait is bounded by the profile's queue budget and
// by that deadline; its worker's gRPC call carries what remains of it.
type TimeoutProfile string

// The timeout profiles. Balanced, production_strict, ml_inference and
// batch carry upstream's budgets; upstream names production and
// development without their figures in our reference, so production is
// balanced's budgets and development ml_inference's (generous, for
// stepping through a tool).
const (
	TimeoutBalanced         TimeoutProfile = "balanced"          // 300 s, stream 900 s, queue 10 s (the default)
	TimeoutProduction       TimeoutProfile = "production"        // as balanced
	TimeoutProductionStrict TimeoutProfile = "production_strict" // 60 s, stream 300 s, queue 5 s
	TimeoutDevelopment      TimeoutProfile = "development"       // 900 s, stream 3600 s, queue 60 s
	TimeoutMLInference      TimeoutProfile = "ml_inference"      // 900 s, stream 3600 s, queue 60 s
	TimeoutBatch            TimeoutProfile = "batch"             // 3600 s, stream unbounded, queue 300 s
)

// Budgets are a profile's figures. Stream 0 means a stream has no budget
// of its own (it ends when its caller's context does).
type Budgets struct {
	Execute time.Duration
	Stream  time.Duration
	Queue   time.Duration
}

var profiles = map[TimeoutProfile]Budgets{
	TimeoutBalanced:         {300 * time.Second, 900 * time.Second, 10 * time.Second},
	TimeoutProduction:       {300 * time.Second, 900 * time.Second, 10 * time.Second},
	TimeoutProductionStrict: {60 * time.Second, 300 * time.Second, 5 * time.Second},
	TimeoutDevelopment:      {900 * time.Second, 3600 * time.Second, 60 * time.Second},
	TimeoutMLInference:      {900 * time.Second, 3600 * time.Second, 60 * time.Second},
	TimeoutBatch:            {3600 * time.Second, 0, 300 * time.Second},
}

// TimeoutProfiles lists the profiles.
func TimeoutProfiles() []TimeoutProfile {
	return []TimeoutProfile{TimeoutBalanced, TimeoutProduction, TimeoutProductionStrict, TimeoutDevelopment,
		TimeoutMLInference, TimeoutBatch}
}

// Budgets returns the profile's budgets; an unknown profile is an error.
func (p TimeoutProfile) Budgets() (Budgets, error) {
	b, ok := profiles[p]
	if !ok {
		return Budgets{}, fmt.Errorf("unknown timeout profile %q (balanced, production, production_strict, development, ml_inference or batch)", p)
	}
	return b, nil
}

// unboundedStream is the budget of a stream whose profile has none: far
// enough to be never, near enough for a timer and a deadline in
// nanoseconds.
const unboundedStream = 100 * 365 * 24 * time.Hour

// callBudget is the budget of a call without a deadline of its own: the
// stream or unary budget of b.
func (b Budgets) callBudget(stream bool) time.Duration {
	if !stream {
		return b.Execute
	}
	if b.Stream <= 0 {
		return unboundedStream
	}
	return b.Stream
}

// applyProfile fills the pool's unset timeouts from its profile (the
// pool's own, else the App's default, else balanced).
func (p *PoolConfig) applyProfile(def TimeoutProfile) error {
	prof := p.TimeoutProfile
	if prof == "" {
		prof = def
	}
	if prof == "" {
		prof = TimeoutBalanced
	}
	b, err := prof.Budgets()
	if err != nil {
		return err
	}
	p.TimeoutProfile = prof
	if p.ExecuteTimeout == 0 {
		p.ExecuteTimeout = b.Execute
	}
	if p.StreamTimeout == 0 {
		p.StreamTimeout = b.callBudget(true)
	}
	if p.QueueTimeout == 0 {
		p.QueueTimeout = b.Queue
	}
	return nil
}

// WithTimeoutProfile gives the call a profile's budgets instead of its
// pool's: its deadline, when its context has none and no WithTimeout is
// given, is the profile's unary (or stream) budget, and its wait in the
// queue is bounded by the profile's queue budget. An unknown profile makes
// the call fail with invalid_argument.
func WithTimeoutProfile(p TimeoutProfile) ExecuteOption {
	return func(o *callOptions) { o.profile = p }
}
