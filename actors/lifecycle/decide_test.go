package lifecycle

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	const mib = 1 << 20
	all := Limits{
		TTL:               time.Hour,
		IdleTTL:           10 * time.Minute,
		MaxRequests:       100,
		MemoryThresholdMB: 512,
	}
	// fresh is a worker that trips nothing under all at t0+1m.
	fresh := WorkerState{
		WorkerID:   "w1",
		StartedAt:  t0,
		LastActive: t0.Add(time.Minute),
		Requests:   1,
		RSSBytes:   100 * mib,
	}
	now := t0.Add(time.Minute)
	with := func(f func(*WorkerState)) WorkerState {
		w := fresh
		f(&w)
		return w
	}

	tests := []struct {
		name string
		w    WorkerState
		l    Limits
		now  time.Time
		want Reason
	}{
		{"nothing tripped", fresh, all, now, ReasonNone},
		{"zero limits recycle nothing", with(func(w *WorkerState) {
			w.Requests = 1e6
			w.RSSBytes = math.MaxUint64
		}), Limits{}, t0.Add(1000 * time.Hour), ReasonNone},

		// TTL.
		{"ttl passed", fresh, all, t0.Add(2 * time.Hour), ReasonTTL},
		{"ttl exactly reached counts", fresh, all, t0.Add(time.Hour), ReasonTTL},
		{"ttl one ns short", fresh, Limits{TTL: time.Hour}, t0.Add(time.Hour - 1), ReasonNone},
		{"ttl off", fresh, Limits{}, t0.Add(1000 * time.Hour), ReasonNone},
		{"ttl with unknown start skipped", with(func(w *WorkerState) {
			w.StartedAt = time.Time{}
		}), Limits{TTL: time.Hour}, now, ReasonNone},

		// Max requests.
		{"requests over pool limit", with(func(w *WorkerState) { w.Requests = 101 }), all, now, ReasonMaxRequests},
		{"requests exactly at pool limit", with(func(w *WorkerState) { w.Requests = 100 }), all, now, ReasonMaxRequests},
		{"requests one short", with(func(w *WorkerState) { w.Requests = 99 }), all, now, ReasonNone},
		{"generation limit overrides pool limit (higher)", with(func(w *WorkerState) {
			w.Requests = 100
			w.MaxRequests = 107
		}), all, now, ReasonNone},
		{"generation limit reached", with(func(w *WorkerState) {
			w.Requests = 107
			w.MaxRequests = 107
		}), all, now, ReasonMaxRequests},
		{"generation limit overrides pool limit (lower)", with(func(w *WorkerState) {
			w.Requests = 50
			w.MaxRequests = 50
		}), all, now, ReasonMaxRequests},
		{"generation limit applies with pool limit off", with(func(w *WorkerState) {
			w.Requests = 5
			w.MaxRequests = 5
		}), Limits{}, now, ReasonMaxRequests},
		{"zero limit is off", with(func(w *WorkerState) { w.Requests = 1e6 }), Limits{TTL: time.Hour}, now, ReasonNone},
		{"zero requests with zero limit", with(func(w *WorkerState) { w.Requests = 0 }), Limits{}, now, ReasonNone},

		// Memory.
		{"memory over", with(func(w *WorkerState) { w.RSSBytes = 600 * mib }), all, now, ReasonMemory},
		{"memory one byte over", with(func(w *WorkerState) { w.RSSBytes = 512*mib + 1 }), all, now, ReasonMemory},
		{"memory exactly at threshold is not over", with(func(w *WorkerState) { w.RSSBytes = 512 * mib }), all, now, ReasonNone},
		{"unknown rss never memory", with(func(w *WorkerState) { w.RSSBytes = 0 }), Limits{MemoryThresholdMB: 1}, now, ReasonNone},
		{"memory off", with(func(w *WorkerState) { w.RSSBytes = math.MaxUint64 }), Limits{}, now, ReasonNone},
		{"huge threshold never reached", with(func(w *WorkerState) { w.RSSBytes = math.MaxUint64 }),
			Limits{MemoryThresholdMB: math.MaxInt}, now, ReasonNone},

		// Idle.
		{"idle passed", fresh, Limits{IdleTTL: 10 * time.Minute}, t0.Add(time.Hour), ReasonIdle},
		{"idle exactly reached counts", fresh, Limits{IdleTTL: 10 * time.Minute}, t0.Add(11 * time.Minute), ReasonIdle},
		{"idle one ns short", fresh, Limits{IdleTTL: 10 * time.Minute}, t0.Add(11*time.Minute - 1), ReasonNone},
		{"idle with calls in flight not chosen", with(func(w *WorkerState) { w.InFlight = 1 }),
			Limits{IdleTTL: 10 * time.Minute}, t0.Add(time.Hour), ReasonNone},
		{"idle measured from last activity, not start", with(func(w *WorkerState) { w.LastActive = t0.Add(55 * time.Minute) }),
			Limits{IdleTTL: 10 * time.Minute}, t0.Add(time.Hour), ReasonNone},
		{"idle falls back to start without activity", with(func(w *WorkerState) { w.LastActive = time.Time{} }),
			Limits{IdleTTL: 10 * time.Minute}, t0.Add(10 * time.Minute), ReasonIdle},
		{"idle unknown times skipped", with(func(w *WorkerState) {
			w.LastActive = time.Time{}
			w.StartedAt = time.Time{}
		}), Limits{IdleTTL: time.Minute}, now, ReasonNone},
		{"idle off", fresh, Limits{}, t0.Add(1000 * time.Hour), ReasonNone},

		// Order: TTL, max requests, memory, idle.
		{"ttl before memory", with(func(w *WorkerState) { w.RSSBytes = 600 * mib }), all, t0.Add(time.Hour), ReasonTTL},
		{"ttl before everything", with(func(w *WorkerState) {
			w.Requests = 100
			w.RSSBytes = 600 * mib
		}), all, t0.Add(2 * time.Hour), ReasonTTL},
		{"max requests before memory and idle", with(func(w *WorkerState) {
			w.Requests = 100
			w.RSSBytes = 600 * mib
		}), all, t0.Add(50 * time.Minute), ReasonMaxRequests},
		{"memory before idle", with(func(w *WorkerState) { w.RSSBytes = 600 * mib }), all, t0.Add(50 * time.Minute), ReasonMemory},

		// Draining.
		{"draining never chosen", with(func(w *WorkerState) {
			w.Draining = true
			w.Requests = 1000
			w.RSSBytes = 600 * mib
		}), all, t0.Add(100 * time.Hour), ReasonNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Decide(tc.w, tc.l, tc.now))
		})
	}
}

func TestDecideNeverManual(t *testing.T) {
	t0 := time.Unix(0, 0)
	l := Limits{TTL: 1, IdleTTL: 1, MaxRequests: 1, MemoryThresholdMB: 1}
	for _, w := range []WorkerState{
		{StartedAt: t0},
		{StartedAt: t0, Requests: 5},
		{StartedAt: t0, RSSBytes: 1 << 30},
		{StartedAt: t0, InFlight: 3},
		{},
	} {
		require.NotEqual(t, ReasonManual, Decide(w, l, t0.Add(time.Hour)))
	}
}

func TestLimitsValidate(t *testing.T) {
	tests := []struct {
		name  string
		l     Limits
		wants []string // substrings of the error; nil = valid
	}{
		{"zero", Limits{}, nil},
		{"all set", Limits{TTL: time.Hour, IdleTTL: time.Minute, MaxRequests: 10, MaxRequestsJitter: 3, MemoryThresholdMB: 512}, nil},
		{"negative ttl", Limits{TTL: -1}, []string{"TTL"}},
		{"negative idle", Limits{IdleTTL: -time.Second}, []string{"IdleTTL"}},
		{"negative max requests", Limits{MaxRequests: -1}, []string{"MaxRequests is negative"}},
		{"negative jitter", Limits{MaxRequestsJitter: -2}, []string{"MaxRequestsJitter"}},
		{"negative memory", Limits{MemoryThresholdMB: -512}, []string{"MemoryThresholdMB"}},
		{"all negative reported together", Limits{TTL: -1, IdleTTL: -1, MaxRequests: -1, MaxRequestsJitter: -1, MemoryThresholdMB: -1},
			[]string{"TTL", "IdleTTL", "MaxRequests is negative", "MaxRequestsJitter", "MemoryThresholdMB"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Validate()
			if tc.wants == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, s := range tc.wants {
				require.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestLimitsEnabled(t *testing.T) {
	tests := []struct {
		l    Limits
		want bool
	}{
		{Limits{}, false},
		{Limits{MaxRequestsJitter: 5}, false},
		{Limits{TTL: time.Second}, true},
		{Limits{IdleTTL: time.Second}, true},
		{Limits{MaxRequests: 1}, true},
		{Limits{MemoryThresholdMB: 1}, true},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, tc.l.Enabled(), "%+v", tc.l)
	}
}

func TestRequestLimit(t *testing.T) {
	fixed := func(v int) func(int) int { return func(int) int { return v } }
	top := func(n int) int { return n - 1 }
	tests := []struct {
		name        string
		max, jitter int
		rnd         func(int) int
		want        int
	}{
		{"off", 0, 0, nil, 0},
		{"off ignores jitter", 0, 10, top, 0},
		{"negative max is off", -5, 10, top, 0},
		{"no jitter is exactly max", 100, 0, top, 100},
		{"negative jitter is exactly max", 100, -3, top, 100},
		{"no jitter with real rnd", 100, 0, nil, 100},
		{"lowest draw", 100, 10, fixed(0), 100},
		{"middle draw", 100, 10, fixed(4), 104},
		{"highest draw is inclusive", 100, 10, top, 110},
		{"out of range high clamped", 100, 10, fixed(99), 110},
		{"out of range low clamped", 100, 10, fixed(-7), 100},
		{"sum saturates", math.MaxInt - 1, 10, top, math.MaxInt},
		{"max jitter saturates", 1, math.MaxInt, top, math.MaxInt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, RequestLimit(tc.max, tc.jitter, tc.rnd))
		})
	}
}

func TestRequestLimitAsksForInclusiveRange(t *testing.T) {
	var asked []int
	rnd := func(n int) int {
		asked = append(asked, n)
		return 0
	}
	RequestLimit(100, 7, rnd)
	require.Equal(t, []int{8}, asked)
}

func TestRequestLimitRealRandom(t *testing.T) {
	for _, jitter := range []int{1, 3, 10, 250} {
		seen := map[int]bool{}
		for range 1000 {
			got := RequestLimit(1000, jitter, nil)
			require.GreaterOrEqual(t, got, 1000)
			require.LessOrEqual(t, got, 1000+jitter)
			seen[got] = true
		}
		if jitter >= 3 {
			// The chance of 1000 uniform draws over >= 4 values all being
			// equal is < 4^-999.
			require.Greater(t, len(seen), 1, "jitter %d", jitter)
		}
		if jitter <= 10 {
			// Every value of a small range shows up in 1000 draws (the
			// chance one of 11 values is missed is < 11*(10/11)^1000).
			require.Len(t, seen, jitter+1, "jitter %d", jitter)
		}
	}
}
