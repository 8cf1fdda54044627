package testutil

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Wait bounds every condition a test waits for with Eventually or a
// Recorder. It is a deadline for a failure report, never a pause.
const Wait = 10 * time.Second

// NewSystem returns a fresh actor system that logs like QuietLogger and is
// shut down when the test ends (unless the test did). Dead letters are
// throttled over a short interval: every dead letter starts protoactor's
// log throttle, a goroutine that sleeps for that interval (1 s by
// default), and it must have ended when goleak looks. Stopping supervisors produces dead letters
// (protoactor sends Stop to children that have already stopped).
func NewSystem(tb testing.TB) *actor.ActorSystem {
	tb.Helper()
	log := QuietLogger(tb)
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	tb.Cleanup(func() {
		if !sys.IsStopped() { // a test may have shut it down itself
			sys.Shutdown()
		}
	})
	return sys
}

// Spawn starts props under the system's root and stops the actor, waiting
// for it, when the test ends (before a NewSystem system is shut down:
// cleanups run last-registered first).
func Spawn(tb testing.TB, sys *actor.ActorSystem, props *actor.Props) *actor.PID {
	tb.Helper()
	pid := sys.Root.Spawn(props)
	tb.Cleanup(func() {
		if err := sys.Root.StopFuture(pid).Wait(); err != nil {
			tb.Errorf("stop %s: %v", pid.Id, err)
		}
	})
	return pid
}

// Eventually polls cond every millisecond until it holds, and fails the
// test naming what it waited for when Wait has passed first. Unlike
// testify's Eventually it calls cond on the test's own goroutine, so cond
// may use require (the pool tests' stats requests do).
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Wait)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for: %s", Wait, what)
		}
		<-tick.C
	}
}

// Recorder keeps values in the order they were added, from any goroutine
// (an event subscriber, a fake sender, a probe actor), and lets a test wait
// for what it expects without polling a sleep. The zero value is ready.
type Recorder[T any] struct {
	mu     sync.Mutex
	list   []T
	change chan struct{} // closed and replaced at every Add; made on first use
}

// NewRecorder returns an empty recorder.
func NewRecorder[T any]() *Recorder[T] { return &Recorder[T]{} }

// changed returns the channel the next Add closes; r.mu is held.
func (r *Recorder[T]) changed() chan struct{} {
	if r.change == nil {
		r.change = make(chan struct{})
	}
	return r.change
}

// Add records v.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	r.list = append(r.list, v)
	close(r.changed())
	r.change = nil
	r.mu.Unlock()
}

// All returns a copy of what was recorded so far.
func (r *Recorder[T]) All() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.list...)
}

// Count returns how many recorded values match.
func (r *Recorder[T]) Count(match func(T) bool) int {
	n := 0
	for _, v := range r.All() {
		if match(v) {
			n++
		}
	}
	return n
}

// WaitUntil waits until cond holds for what was recorded and returns that
// record; it fails the test naming what it waited for after Wait.
func (r *Recorder[T]) WaitUntil(tb testing.TB, what string, cond func([]T) bool) []T {
	tb.Helper()
	timeout := time.NewTimer(Wait)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		list, change := append([]T(nil), r.list...), r.changed()
		r.mu.Unlock()
		if cond(list) {
			return list
		}
		select {
		case <-change:
		case <-timeout.C:
			tb.Fatalf("waited %v for: %s (recorded %d)", Wait, what, len(list))
			return nil
		}
	}
}

// WaitFor waits until at least n values were recorded and returns them.
func (r *Recorder[T]) WaitFor(tb testing.TB, n int) []T {
	tb.Helper()
	return r.WaitUntil(tb, "recorded values", func(l []T) bool { return len(l) >= n })
}
