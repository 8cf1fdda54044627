package pool

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// A breaker step: at a time (offset from t0) do op and check its result.
type brStep struct {
	at   time.Duration
	op   string // allow, fail, ok, abandon, state, retry, opened, failures
	want any    // allow: bool; state: BreakerState; retry: time.Duration; opened, failures: int
}

func brAllow(at time.Duration, want bool) brStep { return brStep{at, "allow", want} }
func brFail(at time.Duration) brStep             { return brStep{at: at, op: "fail"} }
func brOk(at time.Duration) brStep               { return brStep{at: at, op: "ok"} }
func brAbandon(at time.Duration) brStep          { return brStep{at: at, op: "abandon"} }
func brState(at time.Duration, s BreakerState) brStep {
	return brStep{at, "state", s}
}
func brRetry(at, want time.Duration) brStep { return brStep{at, "retry", want} }
func brOpened(n int) brStep                 { return brStep{op: "opened", want: n} }
func brFailures(at time.Duration, n int) brStep {
	return brStep{at, "failures", n}
}

func runBreakerSteps(t *testing.T, b *Breaker, steps []brStep) {
	t.Helper()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range steps {
		now := t0.Add(s.at)
		msg := fmt.Sprintf("step %d: %s at %s", i, s.op, s.at)
		switch s.op {
		case "allow":
			require.Equal(t, s.want, b.Allow(now), msg)
		case "fail":
			b.Failure(now)
		case "ok":
			b.Success(now)
		case "abandon":
			b.Abandon(now)
		case "state":
			require.Equal(t, s.want, b.State(now), msg)
		case "retry":
			require.Equal(t, s.want, b.RetryAfter(now), msg)
		case "opened":
			require.Equal(t, s.want, b.Opened(), msg)
		case "failures":
			require.Equal(t, s.want, b.Failures(now), msg)
		default:
			t.Fatalf("unknown op %q", s.op)
		}
	}
}

func TestBreaker(t *testing.T) {
	const s = time.Second
	std := BreakerConfig{Threshold: 3, Window: 10 * s, OpenFor: 5 * s}
	tests := []struct {
		name  string
		cfg   BreakerConfig
		steps []brStep
	}{
		{"new breaker is closed and allows", std, []brStep{
			brState(0, BreakerClosed), brAllow(0, true), brAllow(0, true), brRetry(0, 0), brOpened(0), brFailures(0, 0),
		}},
		{"threshold within window opens", std, []brStep{
			brFail(0), brFail(1 * s), brState(2*s, BreakerClosed), brFailures(2*s, 2), brAllow(2*s, true),
			brFail(9 * s), brState(9*s, BreakerOpen), brOpened(1), brFailures(9*s, 0),
			brAllow(9*s, false), brRetry(9*s, 5*s), brRetry(12*s, 2*s),
		}},
		{"same instant counts", std, []brStep{
			brFail(s), brFail(s), brFail(s), brState(s, BreakerOpen),
		}},
		{"failures spread wider than the window do not open", std, []brStep{
			brFail(0), brFail(6 * s), brFail(12 * s), brState(12*s, BreakerClosed), brFailures(12*s, 2),
			brFail(18 * s), brState(18*s, BreakerClosed), brFailures(18*s, 2),
			brFail(19 * s), brState(19*s, BreakerOpen),
		}},
		{"a failure exactly window old is forgotten", std, []brStep{
			brFail(0), brFail(1 * s), brFail(10 * s), brState(10*s, BreakerClosed), brFailures(10*s, 2),
			brFailures(11*s, 1),
		}},
		{"a failure just inside the window counts", std, []brStep{
			brFail(0), brFail(1 * s), brFail(10*s - 1), brState(10*s, BreakerOpen),
		}},
		{"open rejects until open-for passed", std, []brStep{
			brFail(0), brFail(0), brFail(0),
			brAllow(0, false), brAllow(4*s, false), brAllow(5*s-1, false), brState(5*s-1, BreakerOpen), brRetry(5*s-1, 1),
			brState(5*s, BreakerHalfOpen), brRetry(5*s, 0),
		}},
		{"failure while open extends nothing", std, []brStep{
			brFail(0), brFail(0), brFail(0), brFail(2 * s), brFail(4 * s), brOpened(1),
			brRetry(4*s, s), brState(5*s, BreakerHalfOpen),
		}},
		{"success while open changes nothing", std, []brStep{
			brFail(0), brFail(0), brFail(0), brOk(2 * s), brState(2*s, BreakerOpen), brAllow(2*s, false),
		}},
		{"after open-for exactly one trial", std, []brStep{
			brFail(0), brFail(0), brFail(0),
			brAllow(5*s, true), brAllow(5*s, false), brAllow(6*s, false), brAllow(60*s, false),
			brState(60*s, BreakerHalfOpen),
		}},
		{"trial success closes and forgets failures", std, []brStep{
			brFail(0), brFail(0), brFail(0),
			brAllow(6*s, true), brOk(7 * s), brState(7*s, BreakerClosed), brAllow(7*s, true), brAllow(7*s, true),
			brFailures(7*s, 0), brFail(8 * s), brFail(8 * s), brState(8*s, BreakerClosed), brOpened(1),
		}},
		{"trial failure reopens and open-for restarts", std, []brStep{
			brFail(0), brFail(0), brFail(0),
			brAllow(6*s, true), brFail(7 * s), brState(7*s, BreakerOpen), brOpened(2),
			brAllow(7*s, false), brRetry(7*s, 5*s), brAllow(11*s, false), brState(12*s-1, BreakerOpen),
			brState(12*s, BreakerHalfOpen), brAllow(12*s, true), brAllow(12*s, false),
		}},
		{"half-open failure without trial reopens", std, []brStep{
			brFail(0), brFail(0), brFail(0), brFail(5 * s), brState(5*s, BreakerOpen), brRetry(5*s, 5*s), brOpened(2),
		}},
		{"half-open success without trial closes", std, []brStep{
			brFail(0), brFail(0), brFail(0), brOk(5 * s), brState(5*s, BreakerClosed), brAllow(5*s, true),
		}},
		{"abandoned trial lets another through", std, []brStep{
			brFail(0), brFail(0), brFail(0),
			brAllow(5*s, true), brAllow(5*s, false), brAbandon(6 * s), brState(6*s, BreakerHalfOpen),
			brAllow(6*s, true), brAllow(6*s, false), brOk(7 * s), brState(7*s, BreakerClosed),
		}},
		{"abandon outside half-open does nothing", std, []brStep{
			brAbandon(0), brState(0, BreakerClosed), brFail(0), brFail(0), brFail(0),
			brAbandon(s), brState(s, BreakerOpen), brAllow(s, false),
		}},
		{"threshold one opens at the first failure", BreakerConfig{Threshold: 1, Window: s, OpenFor: s}, []brStep{
			brFail(0), brState(0, BreakerOpen), brAllow(s, true), brFail(s), brState(s, BreakerOpen), brOpened(2),
		}},
		{"threshold 0 never opens", BreakerConfig{Window: s, OpenFor: s}, []brStep{
			brFail(0), brFail(0), brFail(0), brFail(0), brFail(0), brFail(0), brFail(0),
			brState(0, BreakerClosed), brAllow(0, true), brAllow(0, true), brRetry(0, 0), brOpened(0), brFailures(0, 0),
		}},
		{"negative threshold never opens", BreakerConfig{Threshold: -1}, []brStep{
			brFail(0), brFail(0), brState(0, BreakerClosed), brAllow(0, true),
		}},
		{"zero window and open-for take the defaults", BreakerConfig{Threshold: 2}, []brStep{
			brFail(0), brFail(DefaultBreakerWindow), brState(DefaultBreakerWindow, BreakerClosed),
			brFail(DefaultBreakerWindow + s), brState(DefaultBreakerWindow+s, BreakerOpen),
			brRetry(DefaultBreakerWindow+s, DefaultBreakerOpenFor),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runBreakerSteps(t, NewBreaker(tc.cfg), tc.steps)
		})
	}
}

func TestBreakerConfig(t *testing.T) {
	b := NewBreaker(BreakerConfig{Threshold: 5})
	require.Equal(t, BreakerConfig{Threshold: 5, Window: DefaultBreakerWindow, OpenFor: DefaultBreakerOpenFor}, b.Config())
	c := BreakerConfig{Threshold: 7, Window: time.Minute, OpenFor: time.Second}
	require.Equal(t, c, NewBreaker(c).Config())

	tests := []struct {
		cfg   BreakerConfig
		valid bool
	}{
		{BreakerConfig{}, true},
		{BreakerConfig{Threshold: 5, Window: time.Second, OpenFor: time.Second}, true},
		{BreakerConfig{Threshold: -1}, false},
		{BreakerConfig{Window: -1}, false},
		{BreakerConfig{OpenFor: -1}, false},
	}
	for _, tc := range tests {
		if tc.valid {
			require.NoError(t, tc.cfg.Validate(), "%+v", tc.cfg)
		} else {
			require.Error(t, tc.cfg.Validate(), "%+v", tc.cfg)
		}
	}
}

// TestBreakerProperties runs random sequences of Allow, Failure, Success and
// Abandon at non-decreasing times and checks after each one that
//
//   - the state is one of the three;
//   - no two trials are out at once in half-open state (a trial is out from
//     the Allow that let it through in half-open state to the next Failure,
//     Success or Abandon);
//   - closed always allows, open never does, and RetryAfter is positive
//     exactly when open;
//   - Opened never decreases, and grows exactly when a Failure turns the
//     state to open from closed or half-open;
//   - a Success in half-open state closes the breaker;
//   - a disabled breaker (Threshold 0) is always closed.
func TestBreakerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := BreakerConfig{
			Threshold: rapid.IntRange(0, 5).Draw(t, "threshold"),
			Window:    time.Duration(rapid.IntRange(1, 20).Draw(t, "window")) * time.Second,
			OpenFor:   time.Duration(rapid.IntRange(1, 20).Draw(t, "openFor")) * time.Second,
		}
		b := NewBreaker(cfg)
		now := time.Unix(1_700_000_000, 0)
		trialOut := false
		states := []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen}

		steps := rapid.IntRange(1, 200).Draw(t, "steps")
		for range steps {
			now = now.Add(time.Duration(rapid.IntRange(0, 4000).Draw(t, "dtMillis")) * time.Millisecond)
			before := b.State(now)
			openedBefore := b.Opened()
			switch op := rapid.SampledFrom([]string{"allow", "allow", "fail", "ok", "abandon"}).Draw(t, "op"); op {
			case "allow":
				got := b.Allow(now)
				switch before {
				case BreakerClosed:
					if !got {
						t.Fatalf("closed breaker refused a call")
					}
				case BreakerOpen:
					if got {
						t.Fatalf("open breaker allowed a call")
					}
				case BreakerHalfOpen:
					if got {
						if trialOut {
							t.Fatalf("two trials out at once")
						}
						trialOut = true
					}
				}
			case "fail":
				b.Failure(now)
				trialOut = false
				after := b.State(now)
				grew := b.Opened() - openedBefore
				if want := after == BreakerOpen && before != BreakerOpen; (grew == 1) != want || grew > 1 {
					t.Fatalf("failure %s → %s changed Opened by %d", before, after, grew)
				}
				if before == BreakerHalfOpen && after != BreakerOpen {
					t.Fatalf("failure in half-open left it %s", after)
				}
				if before == BreakerOpen && b.RetryAfter(now) <= 0 {
					t.Fatalf("failure while open ended the open period")
				}
			case "ok":
				b.Success(now)
				trialOut = false
				if before == BreakerHalfOpen && b.State(now) != BreakerClosed {
					t.Fatalf("success in half-open left it %s", b.State(now))
				}
				if before != BreakerHalfOpen && b.State(now) != before {
					t.Fatalf("success in %s changed it to %s", before, b.State(now))
				}
			case "abandon":
				b.Abandon(now)
				trialOut = false
				if b.State(now) != before {
					t.Fatalf("abandon changed %s to %s", before, b.State(now))
				}
			}

			st := b.State(now)
			if !slices.Contains(states, st) {
				t.Fatalf("unknown state %q", st)
			}
			if st != BreakerHalfOpen {
				trialOut = false
			}
			if (b.RetryAfter(now) > 0) != (st == BreakerOpen) {
				t.Fatalf("state %s with RetryAfter %s", st, b.RetryAfter(now))
			}
			if b.Opened() < openedBefore {
				t.Fatalf("Opened went down")
			}
			if cfg.Threshold == 0 && (st != BreakerClosed || b.Opened() != 0) {
				t.Fatalf("disabled breaker is %s, opened %d", st, b.Opened())
			}
		}
	})
}
