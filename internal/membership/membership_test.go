package membership

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// watcher records the events one member sees.
type watcher struct {
	mu     sync.Mutex
	events []Event
}

func (w *watcher) on(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, e)
}

// last returns the last event about name, if any.
func (w *watcher) last(name string) (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.events) - 1; i >= 0; i-- {
		if w.events[i].Name == name {
			return w.events[i], true
		}
	}
	return Event{}, false
}

type node struct {
	*Member
	w    *watcher
	mu   sync.Mutex
	meta []byte
}

func (n *node) setMeta(b string) {
	n.mu.Lock()
	n.meta = []byte(b)
	n.mu.Unlock()
}

func start(t *testing.T, cluster, name, secret string, seeds ...string) *node {
	t.Helper()
	n := &node{w: &watcher{}, meta: []byte("meta-of-" + name)}
	m, err := Start(Config{
		Cluster: cluster, Name: name, Bind: "127.0.0.1:0", Seeds: seeds, Secret: secret, Timings: Loopback,
		Meta: func() []byte {
			n.mu.Lock()
			defer n.mu.Unlock()
			return n.meta
		},
		OnChange: n.w.on,
	})
	require.NoError(t, err)
	n.Member = m
	t.Cleanup(func() { _ = m.Stop(time.Second) })
	return n
}

func cluster(t *testing.T) string { return fmt.Sprintf("test-%s-%d", t.Name(), time.Now().UnixNano()) }

func TestMembersJoinSeeMetaAndLeave(t *testing.T) {
	c := cluster(t)
	a := start(t, c, "a", "s3cret")
	b := start(t, c, "b", "s3cret", a.Addr())
	d := start(t, c, "d", "s3cret", b.Addr()) // through b: gossip tells it about a

	for _, n := range []*node{a, b, d} {
		require.Eventually(t, func() bool { return len(n.Members()) == 2 }, 5*time.Second, 10*time.Millisecond, n.Name())
	}
	e, ok := a.w.last("d")
	require.True(t, ok)
	assert.Equal(t, "meta-of-d", string(e.Meta))
	assert.Equal(t, d.Addr(), e.Addr)

	d.setMeta("new")
	require.NoError(t, d.Publish(time.Second))
	require.Eventually(t, func() bool {
		e, _ := a.w.last("d")
		return e.Kind == Updated && string(e.Meta) == "new"
	}, 5*time.Second, 10*time.Millisecond, "a hears d's new metadata")

	// A member that leaves is gone at once, not after a failure detection.
	left := time.Now()
	require.NoError(t, b.Stop(time.Second))
	require.Eventually(t, func() bool {
		e, _ := a.w.last("b")
		return e.Kind == Left
	}, time.Second, 5*time.Millisecond)
	t.Logf("leave heard after %s", time.Since(left))
}

func TestAKilledMemberIsDetected(t *testing.T) {
	c := cluster(t)
	a := start(t, c, "a", "k")
	b := start(t, c, "b", "k", a.Addr())
	d := start(t, c, "d", "k", a.Addr())
	require.Eventually(t, func() bool { return len(a.Members()) == 2 }, 5*time.Second, 10*time.Millisecond)

	// Shutdown without Leave is what a killed process looks like to the
	// others: its packets stop.
	killed := time.Now()
	require.NoError(t, d.shutdown(false, 0))
	window := Loopback.DetectionWindow(3)
	for _, n := range []*node{a, b} {
		require.Eventually(t, func() bool {
			e, _ := n.w.last("d")
			return e.Kind == Left
		}, 3*window, 10*time.Millisecond, "%s declares d dead", n.Name())
	}
	t.Logf("killed member declared dead after %s (window %s)", time.Since(killed), window)
}

func TestTheSecretAndTheClusterKeepStrangersOut(t *testing.T) {
	c := cluster(t)
	a := start(t, c, "a", "right")
	for _, tc := range []struct{ name, cluster, secret string }{
		{"wrong-secret", c, "wrong"},
		{"other-cluster", c + "-other", "right"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Start(Config{Cluster: tc.cluster, Name: tc.name, Bind: "127.0.0.1:0", Secret: tc.secret, Timings: Loopback})
			require.NoError(t, err)
			defer func() { _ = m.Stop(time.Second) }()
			_, err = m.list.Join([]string{a.Addr()})
			require.Error(t, err, "a stranger cannot join")
			assert.Empty(t, a.Members(), "and a does not count it")
		})
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Cluster: "c", Name: "n", Bind: "127.0.0.1:0"},                              // no secret
		{Cluster: "c", Name: "n", Bind: "0.0.0.0", Secret: "s"},                     // no port
		{Cluster: "c", Name: "n", Bind: "localhost:0", Secret: "s"},                 // not an IP
		{Name: "n", Bind: "127.0.0.1:0", Secret: "s"},                               // no cluster
		{Cluster: "c", Name: "n", Bind: "127.0.0.1:99999", Secret: "s"},             // bad port
		{Cluster: "c", Name: "n", Bind: "127.0.0.1:0", Secret: "s", Advertise: "x"}, // bad advertise
	} {
		_, err := Start(cfg)
		assert.ErrorIs(t, err, ErrConfig, "%+v", cfg)
	}
}

func TestDetectionWindow(t *testing.T) {
	assert.Equal(t, 2*200*time.Millisecond+100*time.Millisecond+2*200*time.Millisecond, Loopback.DetectionWindow(3))
	assert.Equal(t, 2*time.Second+500*time.Millisecond+4*2*time.Second, LAN.DetectionWindow(10))
}

func TestLogLinesKeepTheirLevel(t *testing.T) {
	var got []string
	h := &recordHandler{out: &got}
	w := &logWriter{log: slogNew(h)}
	_, _ = w.Write([]byte("[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n"))
	_, _ = w.Write([]byte("[ERR] memberlist: boom\n"))
	_, _ = w.Write([]byte("plain\n"))
	assert.Equal(t, []string{"DEBUG memberlist: Stream connection from=127.0.0.1:1", "ERROR memberlist: boom", "INFO plain"}, got)
}

type recordHandler struct{ out *[]string }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	*h.out = append(*h.out, r.Level.String()+" "+r.Message)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func slogNew(h slog.Handler) *slog.Logger { return slog.New(h) }
