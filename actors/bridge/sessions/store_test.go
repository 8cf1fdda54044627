package sessions

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// waitFor bounds every wait on a condition in these tests.
const waitFor = 2 * time.Second

var discard = slog.New(slog.DiscardHandler)

// fakeClock is a clock the tests advance by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// removal is one call of Config.OnRemoved.
type removal struct{ id, reason string }

// removals records the calls of Config.OnRemoved.
type removals struct {
	mu  sync.Mutex
	got []removal
}

func (r *removals) record(id, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, removal{id, reason})
}

func (r *removals) list() []removal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]removal(nil), r.got...)
}

// store is a running session store with its fake clock and removal record.
type store struct {
	*Client
	clock   *fakeClock
	removed *removals
}

// startStore spawns a session store with a fake clock (unless c sets Now) and an OnRemoved recorder
// (unless c sets OnRemoved), and returns a client for it.
func startStore(t *testing.T, c Config) *store {
	t.Helper()
	sys := testutil.NewSystem(t)
	st := &store{clock: newFakeClock(), removed: &removals{}}
	if c.Now == nil {
		c.Now = st.clock.Now
	}
	if c.OnRemoved == nil {
		c.OnRemoved = st.removed.record
	}
	if c.Logger == nil {
		c.Logger = discard
	}
	pid := testutil.Spawn(t, sys, Props(c))
	st.Client = &Client{Root: sys.Root, PID: pid, Timeout: waitFor}
	return st
}

func ids(ss []Session) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{})
	t0 := st.clock.Now()

	s, created, err := st.Create(ctx, "s1", map[string]string{"user": "ada"}, 0)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, Session{
		ID: "s1", Metadata: map[string]string{"user": "ada"}, Data: map[string][]byte{},
		CreatedAt: t0, LastAccess: t0, TTL: DefaultTTL,
	}, s)

	st.clock.Advance(time.Minute)
	got, err := st.Get(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, t0.Add(time.Minute), got.LastAccess, "Get touches")
	require.Equal(t, t0, got.CreatedAt)

	st.clock.Advance(time.Minute)
	got, err = st.Update(ctx, "s1", Update{
		Metadata: map[string]string{"lang": "py"},
		Data:     map[string][]byte{"a": []byte("1"), "b": []byte("2")},
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"user": "ada", "lang": "py"}, got.Metadata)
	require.Equal(t, map[string][]byte{"a": []byte("1"), "b": []byte("2")}, got.Data)
	require.Equal(t, t0.Add(2*time.Minute), got.LastAccess, "Update touches")

	got, err = st.Update(ctx, "s1", Update{
		Metadata:   map[string]string{"user": "grace"},
		Data:       map[string][]byte{"c": []byte("3")},
		DeleteData: []string{"a", "missing"},
	})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"user": "grace", "lang": "py"}, got.Metadata)
	require.Equal(t, map[string][]byte{"b": []byte("2"), "c": []byte("3")}, got.Data)

	_, _, err = st.Create(ctx, "s0", nil, 0)
	require.NoError(t, err)
	list, err := st.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"s0", "s1"}, ids(list))
	require.Equal(t, got, list[1])

	found, err := st.Delete(ctx, "s1")
	require.NoError(t, err)
	require.True(t, found)
	found, err = st.Delete(ctx, "s1")
	require.NoError(t, err)
	require.False(t, found)
	_, err = st.Get(ctx, "s1")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `"s1"`)
	_, err = st.Update(ctx, "s1", Update{})
	require.ErrorIs(t, err, ErrNotFound)

	list, err = st.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"s0"}, ids(list))

	stats, err := st.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, Stats{Active: 1, Created: 2, Deleted: 1, MaxSessions: DefaultMaxSessions}, stats)
	require.Equal(t, []removal{{"s1", ReasonDeleted}}, st.removed.list())
}

func TestReturnedSessionsAreCopies(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{})
	meta := map[string]string{"k": "v"}
	_, _, err := st.Create(ctx, "s", meta, 0)
	require.NoError(t, err)
	meta["k"] = "changed by caller" // the store copied the request's map
	data := map[string][]byte{"d": []byte("abc")}
	_, err = st.Update(ctx, "s", Update{Data: data})
	require.NoError(t, err)
	data["d"][0] = 'X'

	mutate := func(s Session) {
		s.Metadata["k"] = "mutated"
		s.Metadata["new"] = "x"
		s.Data["d"][0] = 'Z'
		s.Data["new"] = []byte("x")
	}
	s, err := st.Get(ctx, "s")
	require.NoError(t, err)
	mutate(s)
	list, err := st.List(ctx)
	require.NoError(t, err)
	mutate(list[0])
	u, err := st.Update(ctx, "s", Update{})
	require.NoError(t, err)
	mutate(u)
	c, created, err := st.Create(ctx, "s", nil, 0)
	require.NoError(t, err)
	require.False(t, created)
	mutate(c)

	s, err = st.Get(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k": "v"}, s.Metadata)
	require.Equal(t, map[string][]byte{"d": []byte("abc")}, s.Data)
}

func TestCreateIsIdempotent(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{MaxSessions: 1})
	t0 := st.clock.Now()
	_, created, err := st.Create(ctx, "s", map[string]string{"a": "1", "b": "1"}, time.Minute)
	require.NoError(t, err)
	require.True(t, created)

	st.clock.Advance(30 * time.Second)
	s, created, err := st.Create(ctx, "s", map[string]string{"b": "2", "c": "2"}, time.Hour)
	require.NoError(t, err, "quota of 1 is not consumed again")
	require.False(t, created)
	require.Equal(t, map[string]string{"a": "1", "b": "2", "c": "2"}, s.Metadata)
	require.Equal(t, t0, s.CreatedAt)
	require.Equal(t, t0.Add(30*time.Second), s.LastAccess, "re-create touches")
	require.Equal(t, time.Minute, s.TTL, "re-create keeps the TTL")

	stats, err := st.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, Stats{Active: 1, Created: 1, MaxSessions: 1}, stats)
}

func TestQuota(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{MaxSessions: 3})
	for _, id := range []string{"a", "b", "c"} {
		_, created, err := st.Create(ctx, id, nil, 0)
		require.NoError(t, err)
		require.True(t, created)
	}

	_, created, err := st.Create(ctx, "d", nil, 0)
	require.ErrorIs(t, err, ErrQuotaExceeded)
	require.False(t, created)
	require.Contains(t, err.Error(), "quota of 3 sessions reached")

	list, err := st.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, ids(list), "nothing is evicted")

	_, created, err = st.Create(ctx, "a", map[string]string{"x": "y"}, 0)
	require.NoError(t, err, "an existing session can be re-created at the quota")
	require.False(t, created)

	found, err := st.Delete(ctx, "b")
	require.NoError(t, err)
	require.True(t, found)
	_, created, err = st.Create(ctx, "d", nil, 0)
	require.NoError(t, err)
	require.True(t, created)

	stats, err := st.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, Stats{Active: 3, Created: 4, Deleted: 1, RejectedQuota: 1, MaxSessions: 3}, stats)
}

func TestQuotaMakesRoomFromExpiredSessionsOnly(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{MaxSessions: 2, DefaultTTL: time.Minute})
	_, _, err := st.Create(ctx, "short", nil, 0)
	require.NoError(t, err)
	_, _, err = st.Create(ctx, "long", nil, time.Hour)
	require.NoError(t, err)

	st.clock.Advance(2 * time.Minute) // "short" has expired but is not swept yet
	_, created, err := st.Create(ctx, "new", nil, 0)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, []removal{{"short", ReasonExpired}}, st.removed.list())

	_, _, err = st.Create(ctx, "more", nil, 0)
	require.ErrorIs(t, err, ErrQuotaExceeded, "live sessions are never evicted")
}

func TestTTL(t *testing.T) {
	const ttl = time.Minute
	touches := []struct {
		name  string
		touch func(t *testing.T, st *store)
	}{
		{"Touch", func(t *testing.T, st *store) {
			st.Touch("s")
			st.sync(t) // Touch is fire-and-forget: wait until the store has handled it
		}},
		{"Valid", func(t *testing.T, st *store) {
			ok, err := st.Valid(context.Background(), "s")
			require.NoError(t, err)
			require.True(t, ok)
		}},
		{"Get", func(t *testing.T, st *store) {
			_, err := st.Get(context.Background(), "s")
			require.NoError(t, err)
		}},
		{"Update", func(t *testing.T, st *store) {
			_, err := st.Update(context.Background(), "s", Update{})
			require.NoError(t, err)
		}},
		{"Create", func(t *testing.T, st *store) {
			_, created, err := st.Create(context.Background(), "s", nil, 0)
			require.NoError(t, err)
			require.False(t, created)
		}},
	}
	for _, tc := range touches {
		t.Run("touched by "+tc.name+" survives", func(t *testing.T) {
			ctx := context.Background()
			st := startStore(t, Config{DefaultTTL: ttl})
			_, _, err := st.Create(ctx, "s", nil, 0)
			require.NoError(t, err)
			_, _, err = st.Create(ctx, "idle", nil, 0)
			require.NoError(t, err)

			st.clock.Advance(ttl - time.Second)
			tc.touch(t, st)
			st.clock.Advance(ttl - time.Second) // 2*ttl-2s since create, ttl-1s since the touch

			n, err := st.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			list, err := st.List(ctx)
			require.NoError(t, err)
			require.Equal(t, []string{"s"}, ids(list))
			require.Equal(t, []removal{{"idle", ReasonExpired}}, st.removed.list())

			st.clock.Advance(time.Second) // exactly ttl since the touch: expired
			n, err = st.Sweep(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			_, err = st.Get(ctx, "s")
			require.ErrorIs(t, err, ErrNotFound)
			require.Equal(t, []removal{{"idle", ReasonExpired}, {"s", ReasonExpired}}, st.removed.list())
		})
	}

	t.Run("per-session TTL overrides the default", func(t *testing.T) {
		ctx := context.Background()
		st := startStore(t, Config{DefaultTTL: ttl})
		s, _, err := st.Create(ctx, "long", nil, 10*ttl)
		require.NoError(t, err)
		require.Equal(t, 10*ttl, s.TTL)
		_, _, err = st.Create(ctx, "default", nil, 0)
		require.NoError(t, err)
		_, _, err = st.Create(ctx, "short", nil, ttl/2)
		require.NoError(t, err)

		st.clock.Advance(ttl / 2)
		n, err := st.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		st.clock.Advance(ttl / 2)
		n, err = st.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		list, err := st.List(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"long"}, ids(list))
		require.Equal(t, []removal{{"short", ReasonExpired}, {"default", ReasonExpired}}, st.removed.list())
	})

	t.Run("expired but not swept", func(t *testing.T) {
		ctx := context.Background()
		st := startStore(t, Config{DefaultTTL: ttl})
		for _, id := range []string{"get", "valid", "update", "delete", "create", "listed"} {
			_, _, err := st.Create(ctx, id, map[string]string{"old": "yes"}, 0)
			require.NoError(t, err)
		}
		st.clock.Advance(ttl)

		list, err := st.List(ctx)
		require.NoError(t, err)
		require.Empty(t, list, "List leaves expired sessions out")
		stats, err := st.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, Stats{Active: 0, Created: 6, MaxSessions: DefaultMaxSessions}, stats)

		_, err = st.Get(ctx, "get")
		require.ErrorIs(t, err, ErrNotFound)
		ok, err := st.Valid(ctx, "valid")
		require.NoError(t, err)
		require.False(t, ok)
		_, err = st.Update(ctx, "update", Update{})
		require.ErrorIs(t, err, ErrNotFound)
		found, err := st.Delete(ctx, "delete")
		require.NoError(t, err)
		require.False(t, found)
		s, created, err := st.Create(ctx, "create", nil, 0)
		require.NoError(t, err)
		require.True(t, created, "an expired session is replaced by a new one")
		require.Empty(t, s.Metadata)

		require.Equal(t, []removal{
			{"get", ReasonExpired}, {"valid", ReasonExpired}, {"update", ReasonExpired},
			{"delete", ReasonExpired}, {"create", ReasonExpired},
		}, st.removed.list())
		stats, err = st.Stats(ctx)
		require.NoError(t, err)
		require.Equal(t, Stats{Active: 1, Created: 7, Expired: 5, MaxSessions: DefaultMaxSessions}, stats)

		n, err := st.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, n, "only the listed one was left to sweep")
	})
}

// sync returns once the store has handled every message this client sent before it.
func (st *store) sync(t *testing.T) {
	t.Helper()
	_, err := st.Stats(context.Background())
	require.NoError(t, err)
}

func TestTouchWithoutSenderTouches(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{})
	_, _, err := st.Create(ctx, "s", nil, 0)
	require.NoError(t, err)
	st.clock.Advance(time.Minute)
	st.Touch("s")
	st.Touch("unknown")
	st.Touch("")
	s, err := st.Get(ctx, "s") // the same sender's messages arrive in order
	require.NoError(t, err)
	require.Equal(t, st.clock.Now(), s.LastAccess)
}

func TestPeriodicSweep(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{DefaultTTL: time.Minute, SweepInterval: 10 * time.Millisecond})
	_, _, err := st.Create(ctx, "s", nil, 0)
	require.NoError(t, err)
	_, _, err = st.Create(ctx, "keep", nil, time.Hour)
	require.NoError(t, err)

	st.clock.Advance(time.Minute)
	// Only the sweep removes it: nothing asks the store about it.
	require.Eventually(t, func() bool { return len(st.removed.list()) > 0 }, waitFor, 5*time.Millisecond)
	require.Equal(t, []removal{{"s", ReasonExpired}}, st.removed.list())

	stats, err := st.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, Stats{Active: 1, Created: 2, Expired: 1, MaxSessions: DefaultMaxSessions}, stats)
}

func TestInvalidIDs(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{})
	long := strings.Repeat("x", MaxIDLen+1)
	_, created, err := st.Create(ctx, strings.Repeat("x", MaxIDLen), nil, 0)
	require.NoError(t, err, "an id of MaxIDLen bytes is valid")
	require.True(t, created)

	ops := []struct {
		name string
		call func(id string) error
	}{
		{"Create", func(id string) error { _, _, err := st.Create(ctx, id, nil, 0); return err }},
		{"Get", func(id string) error { _, err := st.Get(ctx, id); return err }},
		{"Update", func(id string) error { _, err := st.Update(ctx, id, Update{}); return err }},
		{"Delete", func(id string) error { _, err := st.Delete(ctx, id); return err }},
		{"Valid", func(id string) error { _, err := st.Valid(ctx, id); return err }},
	}
	for _, op := range ops {
		for _, id := range []string{"", long} {
			t.Run(op.name+"/"+strings.Repeat("x", min(len(id), 3)), func(t *testing.T) {
				require.ErrorIs(t, op.call(id), ErrInvalidID)
			})
		}
	}

	err = ValidateID(long)
	require.ErrorIs(t, err, ErrInvalidID)
	require.ErrorContains(t, err, "257 bytes")

	// Without the client's own check, the store answers an invalid Touch and Delete as not found.
	res, err := st.Root.RequestFuture(st.PID, &Touch{}, waitFor).Result()
	require.NoError(t, err)
	require.Equal(t, &TouchResult{Valid: false}, res)
	res, err = st.Root.RequestFuture(st.PID, &Delete{ID: long}, waitFor).Result()
	require.NoError(t, err)
	require.Equal(t, &DeleteResult{Found: false}, res)

	stats, err := st.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, stats.Active)
}

func TestOnRemovedReasons(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{DefaultTTL: time.Minute})
	for _, id := range []string{"del", "exp"} {
		_, _, err := st.Create(ctx, id, nil, 0)
		require.NoError(t, err)
	}
	_, err := st.Delete(ctx, "del")
	require.NoError(t, err)
	st.clock.Advance(time.Minute)
	_, err = st.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, []removal{{"del", ReasonDeleted}, {"exp", ReasonExpired}}, st.removed.list())
	require.Equal(t, "deleted", ReasonDeleted)
	require.Equal(t, "expired", ReasonExpired)
}

func TestOnRemovedPanicKeepsTheStore(t *testing.T) {
	ctx := context.Background()
	st := startStore(t, Config{OnRemoved: func(string, string) { panic("boom") }})
	for _, id := range []string{"a", "b"} {
		_, _, err := st.Create(ctx, id, nil, 0)
		require.NoError(t, err)
	}
	found, err := st.Delete(ctx, "a")
	require.NoError(t, err)
	require.True(t, found)
	list, err := st.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, ids(list), "the store was not restarted")
}

func TestWorksWithoutOptionalConfig(t *testing.T) {
	sys := testutil.NewSystem(t)
	pid := testutil.Spawn(t, sys, Props(Config{Logger: discard})) // real clock, no OnRemoved
	c := &Client{Root: sys.Root, PID: pid}
	ctx := context.Background()
	_, _, err := c.Create(ctx, "s", nil, 0)
	require.NoError(t, err)
	found, err := c.Delete(ctx, "s")
	require.NoError(t, err)
	require.True(t, found)
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero means defaults", Config{}, ""},
		{"set", Config{DefaultTTL: time.Second, SweepInterval: time.Second, MaxSessions: 1}, ""},
		{"negative TTL", Config{DefaultTTL: -1}, "DefaultTTL"},
		{"negative sweep interval", Config{SweepInterval: -1}, "SweepInterval"},
		{"negative max sessions", Config{MaxSessions: -1}, "MaxSessions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}

	c := Config{MaxSessions: -1}.withDefaults()
	require.Equal(t, DefaultTTL, c.DefaultTTL)
	require.Equal(t, DefaultSweepInterval, c.SweepInterval)
	require.Equal(t, DefaultMaxSessions, c.MaxSessions)
	require.NotNil(t, c.Now)
	require.NotNil(t, c.Logger)
}
