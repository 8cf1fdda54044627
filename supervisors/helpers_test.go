package supervisors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// wait is the deadline of every condition a test waits for.
const wait = 5 * time.Second

// journal is the shared, ordered record children write their lifecycle into.
type journal struct {
	mu       sync.Mutex
	lines    []string
	attempts map[string]int // Started handlers entered
	starts   map[string]int // Started handlers finished
}

func newJournal() *journal { return &journal{attempts: map[string]int{}, starts: map[string]int{}} }

// attempt records that a Started handler of name began and returns its instance number (1 for the
// first).
func (j *journal) attempt(name string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.attempts[name]++
	return j.attempts[name]
}

func (j *journal) add(line string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, line)
}

// started records that a Started handler of name finished.
func (j *journal) started(name string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.starts[name]++
	j.lines = append(j.lines, "start "+name)
}

func (j *journal) startsOf(name string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.starts[name]
}

func (j *journal) snapshot() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

func (j *journal) reset() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = nil
}

// expect waits until the journal holds as many lines as want, then requires exactly want.
func (j *journal) expect(t *testing.T, want ...string) {
	t.Helper()
	require.Eventually(t, func() bool { return len(j.snapshot()) >= len(want) }, wait, time.Millisecond,
		"journal %v, want %v", j.snapshot(), want)
	require.Equal(t, want, j.snapshot())
}

// Messages the probe understands.
type (
	crashMsg    struct{ reason any }
	exitMsg     struct{ reason any }
	stopSelfMsg struct{}
	pingMsg     struct{}
	pongMsg     struct{ instance int }
)

// probe is a child that writes "start <name>" / "stop <name>" into a journal and obeys the messages
// above. Hooks run inside Started (before the journal line) and Stopping (after it).
type probe struct {
	name       string
	j          *journal
	onStarted  func(instance int)
	onStopping func()
	instance   int
}

type probeOption func(*probe)

func onStarted(f func(instance int)) probeOption { return func(p *probe) { p.onStarted = f } }
func onStopping(f func()) probeOption            { return func(p *probe) { p.onStopping = f } }

func probeProps(name string, j *journal, opts ...probeOption) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		p := &probe{name: name, j: j}
		for _, o := range opts {
			o(p)
		}
		return p
	})
}

func (p *probe) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		p.instance = p.j.attempt(p.name)
		if p.onStarted != nil {
			p.onStarted(p.instance)
		}
		p.j.started(p.name)
	case *actor.Stopping:
		p.j.add("stop " + p.name)
		if p.onStopping != nil {
			p.onStopping()
		}
	case *crashMsg:
		panic(m.reason)
	case *exitMsg:
		Exit(ctx, m.reason)
	case *stopSelfMsg:
		ctx.Stop(ctx.Self())
	case *pingMsg:
		ctx.Respond(&pongMsg{instance: p.instance})
	case *noteMsg:
		p.j.add(m.line)
	case *blockMsg:
		close(m.entered)
		<-m.release
	}
}

// child is a ChildSpec of a probe.
func probeChild(name string, j *journal, restart RestartType, opts ...probeOption) ChildSpec {
	return ChildSpec{Name: name, Props: probeProps(name, j, opts...), Restart: restart}
}

// spawnSupervisor spawns a supervisor from the root and returns once its Started handler (and so every
// initial child's) has finished.
func spawnSupervisor(t *testing.T, sys *actor.ActorSystem, spec Spec) *actor.PID {
	t.Helper()
	if spec.Logger == nil {
		spec.Logger = testutil.QuietLogger(t)
	}
	props, err := New(spec)
	require.NoError(t, err)
	pid := sys.Root.Spawn(props)
	which(t, sys, pid)
	return pid
}

func stopSupervisor(t *testing.T, sys *actor.ActorSystem, pid *actor.PID) {
	t.Helper()
	require.NoError(t, sys.Root.PoisonFuture(pid).Wait())
}

func which(t *testing.T, sys *actor.ActorSystem, sup *actor.PID) []ChildInfo {
	t.Helper()
	items, err := RequestWhichChildren(sys.Root, sup, wait)
	require.NoError(t, err)
	return items
}

func childInfo(t *testing.T, sys *actor.ActorSystem, sup *actor.PID, name string) (ChildInfo, bool) {
	t.Helper()
	for _, c := range which(t, sys, sup) {
		if c.Name == name {
			return c, true
		}
	}
	return ChildInfo{}, false
}

func childPID(t *testing.T, sys *actor.ActorSystem, sup *actor.PID, name string) *actor.PID {
	t.Helper()
	c, ok := childInfo(t, sys, sup, name)
	require.True(t, ok, "child %q", name)
	require.NotNil(t, c.PID)
	return c.PID
}

func ping(t *testing.T, sys *actor.ActorSystem, pid *actor.PID) int {
	t.Helper()
	res, err := sys.Root.RequestFuture(pid, &pingMsg{}, wait).Result()
	require.NoError(t, err)
	pong, ok := res.(*pongMsg)
	require.True(t, ok, "reply %T", res)
	return pong.instance
}

// alive reports whether pid is registered (a stopped actor has left the registry).
func alive(sys *actor.ActorSystem, pid *actor.PID) bool {
	_, ok := sys.ProcessRegistry.Get(pid)
	return ok
}

const millisecond = time.Millisecond

var errBoom = errors.New("boom")

// noteMsg makes a probe write line into the journal.
type noteMsg struct{ line string }

// blockMsg makes a probe signal entered and block until release is closed.
type blockMsg struct{ entered, release chan struct{} }

// logSignal returns a quiet logger that closes the returned channel when a record with message msg is
// logged.
func logSignal(msg string) (*slog.Logger, chan struct{}) {
	ch := make(chan struct{})
	return slog.New(&signalHandler{Handler: slog.NewTextHandler(io.Discard, nil), msg: msg, ch: ch,
		once: &sync.Once{}}), ch
}

type signalHandler struct {
	slog.Handler
	msg  string
	ch   chan struct{}
	once *sync.Once
}

func (h *signalHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return h.Handler.Handle(ctx, r)
}

func (h *signalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &signalHandler{Handler: h.Handler.WithAttrs(attrs), msg: h.msg, ch: h.ch, once: h.once}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
