package pool

import "time"

// stickyDispatcher runs an actor's mailbox on a goroutine that it keeps
// for a while after each run, instead of protoactor's default of a new
// goroutine per run. Under load the pool's mailbox runs thousands of times
// a second; reusing the goroutine saves its start and, above all, growing
// its stack again every time (the pool's call path is deeper than a new
// goroutine's first stack). An idle runner exits after idleFor, so nothing
// outlives a stopped pool for long.
type stickyDispatcher struct {
	throughput int
	idleFor    time.Duration
	work       chan func() // hands a run to a runner waiting for one
}

func newStickyDispatcher(throughput int, idleFor time.Duration) *stickyDispatcher {
	return &stickyDispatcher{throughput: throughput, idleFor: idleFor, work: make(chan func())}
}

// Schedule runs fn on a waiting runner, or on a new one.
func (d *stickyDispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
		return
	default:
	}
	go d.run(fn)
}

// Throughput is how many messages a mailbox run handles before yielding.
func (d *stickyDispatcher) Throughput() int { return d.throughput }

func (d *stickyDispatcher) run(fn func()) {
	t := time.NewTimer(d.idleFor)
	defer t.Stop()
	for {
		fn()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(d.idleFor)
		select {
		case fn = <-d.work:
		case <-t.C:
			return
		}
	}
}
