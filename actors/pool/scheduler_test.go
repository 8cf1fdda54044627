package pool

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The unit tests drive a Scheduler through a script of steps; each step
// performs one call and checks its result. A table row is one script.

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

type step struct {
	name string
	run  func(t *testing.T, s *Scheduler)
}

type pair struct {
	ID     uint64
	Worker WorkerID
}

func pairs(ds []Dispatch) []pair {
	var out []pair
	for _, d := range ds {
		out = append(out, pair{d.Req.ID, d.Worker})
	}
	return out
}

func ids(rs []Request) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func req(id uint64) Request { return Request{ID: id, Payload: fmt.Sprint("payload-", id)} }

func dreq(id uint64, deadline time.Time) Request {
	r := req(id)
	r.Deadline = deadline
	return r
}

func sreq(id uint64, session string, a Affinity) Request {
	r := req(id)
	r.SessionID = session
	r.Affinity = a
	return r
}

func add(id WorkerID, capacity int) step {
	return step{fmt.Sprintf("add %s/%d", id, capacity), func(t *testing.T, s *Scheduler) {
		s.AddWorker(id, capacity)
	}}
}

// ready marks a worker ready and expects these dispatches.
func ready(id WorkerID, want ...pair) step {
	return step{fmt.Sprintf("ready %s", id), func(t *testing.T, s *Scheduler) {
		assert.Equal(t, want, pairs(s.SetReady(id, true)))
	}}
}

func notReady(id WorkerID) step {
	return step{fmt.Sprintf("not ready %s", id), func(t *testing.T, s *Scheduler) {
		assert.Empty(t, s.SetReady(id, false))
	}}
}

// addReady adds a worker and marks it ready (no queued requests expected).
func addReady(id WorkerID, capacity int) step {
	return step{fmt.Sprintf("add ready %s/%d", id, capacity), func(t *testing.T, s *Scheduler) {
		s.AddWorker(id, capacity)
		assert.Empty(t, s.SetReady(id, true))
	}}
}

func submit(r Request, v Verdict, w WorkerID) step {
	return submitAt(r, t0, v, w)
}

func submitAt(r Request, now time.Time, v Verdict, w WorkerID) step {
	return step{fmt.Sprintf("submit %d", r.ID), func(t *testing.T, s *Scheduler) {
		assert.Equal(t, Decision{Verdict: v, Worker: w}, s.Submit(r, now))
	}}
}

// fill submits requests first..last (no session, no deadline), each expected
// to get verdict v on worker w.
func fill(first, last uint64, v Verdict, w WorkerID) step {
	return step{fmt.Sprintf("submit %d..%d", first, last), func(t *testing.T, s *Scheduler) {
		for id := first; id <= last; id++ {
			assert.Equal(t, Decision{Verdict: v, Worker: w}, s.Submit(req(id), t0), "request %d", id)
		}
	}}
}

func done(w WorkerID, id uint64, want ...pair) step {
	return step{fmt.Sprintf("done %s %d", w, id), func(t *testing.T, s *Scheduler) {
		assert.Equal(t, want, pairs(s.Done(w, id)))
	}}
}

func cancel(id uint64, o CancelOutcome, w WorkerID) step {
	return step{fmt.Sprintf("cancel %d", id), func(t *testing.T, s *Scheduler) {
		got := s.Cancel(id)
		assert.Equal(t, o, got.Outcome)
		assert.Equal(t, w, got.Worker)
		if o != CancelNotFound {
			assert.Equal(t, id, got.Req.ID)
			assert.Equal(t, fmt.Sprint("payload-", id), got.Req.Payload)
		}
	}}
}

func expire(now time.Time, want ...uint64) step {
	return step{fmt.Sprintf("expire at %v", now.Sub(t0)), func(t *testing.T, s *Scheduler) {
		assert.Equal(t, want, ids(s.Expire(now)))
	}}
}

func remove(id WorkerID, inflight []uint64, orphaned ...uint64) step {
	return step{fmt.Sprintf("remove %s", id), func(t *testing.T, s *Scheduler) {
		gotIn, gotOrph := s.RemoveWorker(id)
		assert.Equal(t, inflight, gotIn, "inflight")
		assert.Equal(t, orphaned, ids(gotOrph), "orphaned")
	}}
}

func drain(want ...uint64) step {
	return step{"drain", func(t *testing.T, s *Scheduler) {
		assert.Equal(t, want, ids(s.Drain()))
	}}
}

func bind(session string, w WorkerID, ok bool, want ...pair) step {
	return step{fmt.Sprintf("bind %s %s", session, w), func(t *testing.T, s *Scheduler) {
		got, gotOK := s.BindSession(session, w)
		assert.Equal(t, ok, gotOK)
		assert.Equal(t, want, pairs(got))
	}}
}

func unbind(session string, want ...pair) step {
	return step{fmt.Sprintf("unbind %s", session), func(t *testing.T, s *Scheduler) {
		assert.Equal(t, want, pairs(s.UnbindSession(session)))
	}}
}

func sessionIs(session string, w WorkerID, gone, ok bool) step {
	return step{fmt.Sprintf("session %s", session), func(t *testing.T, s *Scheduler) {
		gw, gg, gok := s.SessionWorker(session)
		assert.Equal(t, []any{w, gone, ok}, []any{gw, gg, gok})
	}}
}

func stats(want Stats) step {
	return step{"stats", func(t *testing.T, s *Scheduler) {
		assert.Equal(t, want, s.Stats())
	}}
}

func load(w WorkerID, inflight, capacity int, ok bool) step {
	return step{fmt.Sprintf("load %s", w), func(t *testing.T, s *Scheduler) {
		gi, gc, gok := s.Load(w)
		assert.Equal(t, []any{inflight, capacity, ok}, []any{gi, gc, gok})
	}}
}

func nextDeadline(want time.Time, ok bool) step {
	return step{"next deadline", func(t *testing.T, s *Scheduler) {
		got, gotOK := s.NextDeadline()
		assert.Equal(t, ok, gotOK)
		assert.True(t, want.Equal(got), "want %v, got %v", want, got)
	}}
}

func TestScheduler(t *testing.T) {
	const (
		hint   = AffinityHint
		strict = AffinityStrictQueue
		fast   = AffinityStrictFailFast
	)
	tests := []struct {
		name     string
		maxQueue int
		steps    []step
	}{
		{"least loaded by ratio", 10, []step{
			addReady("a", 4), addReady("b", 1), addReady("c", 2),
			submit(req(1), Dispatched, "a"), // all 0: tie, a added first
			submit(req(2), Dispatched, "b"), // a 1/4, b 0/1, c 0/2: b first of the zeros
			submit(req(3), Dispatched, "c"), // a 1/4, b full, c 0/2
			submit(req(4), Dispatched, "a"), // a 1/4 < c 1/2
			submit(req(5), Dispatched, "a"), // a 2/4 == c 1/2: tie, a first
			submit(req(6), Dispatched, "c"), // a 3/4 > c 1/2
			submit(req(7), Dispatched, "a"), // c full
			submit(req(8), Queued, ""),
			load("a", 4, 4, true), load("b", 1, 1, true), load("c", 2, 2, true),
		}},
		{"ties go to the earliest added worker", 10, []step{
			addReady("z", 1), addReady("y", 1), addReady("x", 1),
			submit(req(1), Dispatched, "z"),
			submit(req(2), Dispatched, "y"),
			done("z", 1),
			submit(req(3), Dispatched, "z"),
		}},
		{"re-added worker goes last in tie order", 10, []step{
			addReady("a", 1), addReady("b", 1),
			remove("a", nil),
			addReady("a", 1),
			submit(req(1), Dispatched, "b"),
		}},
		{"thread profile worker takes capacity requests", 10, []step{
			addReady("t", 3),
			fill(1, 3, Dispatched, "t"),
			submit(req(4), Queued, ""),
			stats(Stats{Workers: 1, Ready: 1, Busy: 1, InFlight: 3, Queued: 1, Capacity: 3}),
			done("t", 2, pair{4, "t"}),
			load("t", 3, 3, true),
		}},
		{"queue when busy, FIFO on done", 10, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			fill(2, 4, Queued, ""),
			done("a", 1, pair{2, "a"}),
			done("a", 2, pair{3, "a"}),
			done("a", 3, pair{4, "a"}),
			done("a", 4),
			stats(Stats{Workers: 1, Ready: 1, Available: 1, Capacity: 1}),
		}},
		{"saturated at maxQueue", 2, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			fill(2, 3, Queued, ""),
			submit(req(4), RejectedSaturated, ""),
			done("a", 1, pair{2, "a"}),
			submit(req(5), Queued, ""),
			submit(req(6), RejectedSaturated, ""),
		}},
		{"maxQueue 0 never queues", 0, []step{
			add("a", 1),
			submit(req(1), RejectedSaturated, ""), // no ready worker
			ready("a"),
			submit(req(2), Dispatched, "a"),
			submit(req(3), RejectedSaturated, ""),
			stats(Stats{Workers: 1, Ready: 1, Busy: 1, InFlight: 1, Capacity: 1}),
		}},
		{"no ready worker queues, SetReady dispatches FIFO", 10, []step{
			submit(req(1), Queued, ""), // no worker at all yet
			add("a", 2), add("b", 1),
			fill(2, 4, Queued, ""),
			stats(Stats{Workers: 2, Queued: 4}),
			ready("b", pair{1, "b"}),
			ready("a", pair{2, "a"}, pair{3, "a"}),
			done("b", 1, pair{4, "b"}),
			stats(Stats{Workers: 2, Ready: 2, Busy: 2, InFlight: 3, Capacity: 3}),
		}},
		{"not ready worker gets nothing, keeps its calls", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(req(1), Dispatched, "a"),
			notReady("a"),
			submit(req(2), Dispatched, "b"),
			submit(req(3), Queued, ""),
			stats(Stats{Workers: 2, Ready: 1, Busy: 1, InFlight: 2, Queued: 1, Capacity: 1}),
			done("a", 1), // frees a's slot, but a is not ready
			load("a", 0, 1, true),
			ready("a", pair{3, "a"}),
		}},
		{"expired at submit", 10, []step{
			addReady("a", 1),
			submitAt(dreq(1, at(0)), at(0), RejectedExpired, ""),
			submitAt(dreq(2, at(-time.Second)), at(0), RejectedExpired, ""),
			submitAt(dreq(3, at(time.Nanosecond)), at(0), Dispatched, "a"),
		}},
		{"expire in queue order, exactly once", 10, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			submit(dreq(2, at(3*time.Second)), Queued, ""),
			submit(dreq(3, at(1*time.Second)), Queued, ""),
			submit(req(4), Queued, ""),
			submit(dreq(5, at(2*time.Second)), Queued, ""),
			submit(dreq(6, at(9*time.Second)), Queued, ""),
			nextDeadline(at(1*time.Second), true),
			expire(at(500 * time.Millisecond)),
			expire(at(3*time.Second), 2, 3, 5), // queue order, not deadline order
			expire(at(3 * time.Second)),
			nextDeadline(at(9*time.Second), true),
			done("a", 1, pair{4, "a"}),
			done("a", 4, pair{6, "a"}),
			expire(at(time.Hour)), // 6 is running: not expired
			nextDeadline(time.Time{}, false),
		}},
		{"expire with equal deadlines", 10, []step{
			submit(dreq(1, at(time.Second)), Queued, ""),
			submit(dreq(2, at(time.Second)), Queued, ""),
			submit(dreq(3, at(time.Second)), Queued, ""),
			cancel(2, CancelledQueued, ""),
			expire(at(time.Second), 1, 3),
			stats(Stats{}),
		}},
		{"cancel queued, running, unknown", 10, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			submit(dreq(2, at(time.Second)), Queued, ""),
			submit(req(3), Queued, ""),
			cancel(2, CancelledQueued, ""),
			cancel(2, CancelNotFound, ""),
			nextDeadline(time.Time{}, false),
			expire(at(time.Hour)),
			cancel(1, CancelledRunning, "a"),
			cancel(1, CancelledRunning, "a"), // still running until Done
			load("a", 1, 1, true),
			cancel(99, CancelNotFound, ""),
			done("a", 1, pair{3, "a"}),
			cancel(1, CancelNotFound, ""),
		}},
		{"done is idempotent and checks the worker", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(req(1), Dispatched, "a"),
			submit(req(2), Dispatched, "b"),
			submit(req(3), Queued, ""),
			done("b", 1), // 1 runs on a, not b
			done("a", 42),
			done("nobody", 1),
			load("a", 1, 1, true),
			done("a", 1, pair{3, "a"}),
			done("a", 1),
			load("a", 1, 1, true),
		}},
		{"duplicate id rejected", 10, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			submit(req(1), RejectedDuplicate, ""),
			submit(req(2), Queued, ""),
			submit(req(2), RejectedDuplicate, ""),
			done("a", 1, pair{2, "a"}),
			done("a", 2),
			submit(req(1), Dispatched, "a"), // finished ids may be reused
		}},
		{"remove returns in-flight and orphans strict requests", 10, []step{
			addReady("a", 2), addReady("b", 1),
			submit(sreq(1, "s", strict), Dispatched, "a"),
			submit(req(2), Dispatched, "b"),
			submit(sreq(3, "s", strict), Dispatched, "a"),
			submit(sreq(4, "s", strict), Queued, ""),
			submit(req(5), Queued, ""),
			submit(sreq(6, "s", hint), Queued, ""),
			submit(sreq(7, "s", strict), Queued, ""),
			remove("a", []uint64{1, 3}, 4, 7),
			remove("a", nil),
			load("a", 0, 0, false),
			stats(Stats{Workers: 1, Ready: 1, Busy: 1, InFlight: 1, Queued: 2, Capacity: 1}),
			done("a", 1), // gone: ignored
			cancel(3, CancelNotFound, ""),
			done("b", 2, pair{5, "b"}),
			done("b", 5, pair{6, "b"}), // hint request runs elsewhere and rebinds
			sessionIs("s", "b", false, true),
		}},
		{"hint prefers the session worker, falls back to least loaded", 10, []step{
			addReady("a", 1), addReady("b", 2),
			submit(sreq(1, "s", hint), Dispatched, "a"), // unbound: least loaded, binds to a
			sessionIs("s", "a", false, true),
			done("a", 1),
			submit(req(2), Dispatched, "a"), // a 0/1 vs b 0/2: tie, a
			submit(sreq(3, "s", hint), Dispatched, "b"),
			sessionIs("s", "a", false, true), // binding stays on a live worker
			done("a", 2),
			submit(req(4), Dispatched, "a"),
			submit(req(5), Dispatched, "b"),
			submit(sreq(6, "s", hint), Queued, ""),
			done("b", 3, pair{6, "b"}), // a queued hint request runs where a slot frees
		}},
		{"hint prefers session worker even when more loaded", 10, []step{
			addReady("a", 4), addReady("b", 4),
			submit(req(1), Dispatched, "a"),
			bind("s", "a", true),
			submit(sreq(2, "s", hint), Dispatched, "a"), // a 1/4, b 0/4
			submit(req(3), Dispatched, "b"),
		}},
		{"strict queue waits for its worker, others pass", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(sreq(1, "s", strict), Dispatched, "a"),
			submit(sreq(2, "s", strict), Queued, ""), // a busy, b free: still waits
			submit(req(3), Dispatched, "b"),          // does not wait behind 2
			submit(sreq(4, "s", strict), Queued, ""),
			submit(req(5), Queued, ""),
			done("b", 3, pair{5, "b"}), // b skips 2 and 4
			done("a", 1, pair{2, "a"}),
			done("a", 2, pair{4, "a"}),
			stats(Stats{Workers: 2, Ready: 2, Busy: 2, InFlight: 2, Capacity: 2}),
		}},
		{"strict queue on a thread worker", 10, []step{
			addReady("a", 2), addReady("b", 2),
			submit(sreq(1, "s", strict), Dispatched, "a"),
			submit(sreq(2, "s", strict), Dispatched, "a"),
			submit(sreq(3, "s", strict), Queued, ""),
			stats(Stats{Workers: 2, Ready: 2, Available: 1, Busy: 1, InFlight: 2, Queued: 1, Capacity: 4}),
			done("a", 1, pair{3, "a"}),
		}},
		{"strict fail fast", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(sreq(1, "s", fast), Dispatched, "a"),
			submit(sreq(2, "s", fast), RejectedWorkerBusy, ""),
			submit(sreq(3, "t", fast), Dispatched, "b"), // other session, unbound
			done("a", 1),
			submit(sreq(4, "s", fast), Dispatched, "a"),
		}},
		{"strict fail fast unbound and nothing free queues", 10, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			submit(sreq(2, "s", fast), Queued, ""),
			done("a", 1, pair{2, "a"}),
			sessionIs("s", "a", false, true),
		}},
		{"session worker unavailable", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(sreq(1, "s", strict), Dispatched, "a"),
			done("a", 1),
			notReady("a"),
			submit(sreq(2, "s", strict), RejectedSessionWorkerUnavailable, ""),
			submit(sreq(3, "s", fast), RejectedSessionWorkerUnavailable, ""),
			submit(sreq(4, "s", hint), Dispatched, "b"),
			sessionIs("s", "a", false, true),
			remove("a", nil),
			sessionIs("s", "a", true, true),
			submit(sreq(5, "s", strict), RejectedSessionWorkerUnavailable, ""),
			addReady("a", 1), // same name, new worker: the session does not follow
			submit(sreq(6, "s", fast), RejectedSessionWorkerUnavailable, ""),
			submit(sreq(7, "s", hint), Dispatched, "a"), // hint rebinds to a live worker
			sessionIs("s", "a", false, true),
			done("a", 7),
			submit(sreq(8, "s", strict), Dispatched, "a"),
		}},
		{"unbound strict request binds when dispatched from the queue", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(req(1), Dispatched, "a"),
			submit(req(2), Dispatched, "b"),
			submit(sreq(3, "s", strict), Queued, ""),
			submit(sreq(4, "s", strict), Queued, ""),
			done("b", 2, pair{3, "b"}), // binds s to b
			done("a", 1),               // a may not take 4 any more
			stats(Stats{Workers: 2, Ready: 2, Available: 1, Busy: 1, InFlight: 1, Queued: 1, Capacity: 2}),
			done("b", 3, pair{4, "b"}),
		}},
		{"bind and unbind session", 10, []step{
			addReady("a", 1), addReady("b", 1),
			bind("s", "nobody", false),
			bind("", "a", false),
			submit(req(1), Dispatched, "a"),
			bind("s", "a", true),
			submit(sreq(2, "s", strict), Queued, ""),
			submit(sreq(3, "s", strict), Queued, ""),
			bind("s", "b", true, pair{2, "b"}), // b is free and now s's worker
			unbind("s"),                        // nothing free: 3 stays queued
			stats(Stats{Workers: 2, Ready: 2, Busy: 2, InFlight: 2, Queued: 1, Capacity: 2}),
			sessionIs("s", "", false, false),
			done("a", 1, pair{3, "a"}), // unbound: any worker
			sessionIs("s", "a", false, true),
			unbind("nobody"),
		}},
		{"unbind releases queued strict requests to free workers", 10, []step{
			addReady("a", 1), addReady("b", 1),
			submit(sreq(1, "s", strict), Dispatched, "a"),
			submit(sreq(2, "s", strict), Queued, ""),
			submit(sreq(3, "s", strict), Queued, ""),
			unbind("s", pair{2, "b"}), // b was free; 3 now binds to b
			sessionIs("s", "b", false, true),
			done("a", 1),
			stats(Stats{Workers: 2, Ready: 2, Available: 1, Busy: 1, InFlight: 1, Queued: 1, Capacity: 2}),
		}},
		{"drain", 10, []step{
			addReady("a", 1),
			submit(req(1), Dispatched, "a"),
			submit(dreq(2, at(time.Second)), Queued, ""),
			submit(sreq(3, "s", strict), Queued, ""),
			submit(req(4), Queued, ""),
			drain(2, 3, 4),
			drain(),
			nextDeadline(time.Time{}, false),
			expire(at(time.Hour)),
			stats(Stats{Workers: 1, Ready: 1, Busy: 1, InFlight: 1, Capacity: 1}),
			done("a", 1),
		}},
		{"stats", 10, []step{
			stats(Stats{}),
			add("a", 2), add("b", 1), add("c", 3),
			stats(Stats{Workers: 3}),
			ready("a"), ready("b"),
			stats(Stats{Workers: 3, Ready: 2, Available: 2, Capacity: 3}),
			submit(req(1), Dispatched, "a"),
			submit(req(2), Dispatched, "b"),
			stats(Stats{Workers: 3, Ready: 2, Available: 1, Busy: 1, InFlight: 2, Capacity: 3}),
			submit(req(3), Dispatched, "a"),
			submit(req(4), Queued, ""),
			stats(Stats{Workers: 3, Ready: 2, Busy: 2, InFlight: 3, Queued: 1, Capacity: 3}),
			load("c", 0, 3, true),
			load("x", 0, 0, false),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScheduler(tt.maxQueue)
			for i, st := range tt.steps {
				ok := t.Run(fmt.Sprintf("%02d %s", i, st.name), func(t *testing.T) { st.run(t, s) })
				if !ok {
					return
				}
			}
		})
	}
}

// BenchmarkSubmitDone measures one enqueue plus one dispatch from a queue
// holding 1,000 requests: each iteration submits a request (queued at the
// tail) and finishes the running one, which dispatches the queue's head.
func BenchmarkSubmitDone(b *testing.B) {
	const queued = 1000
	for _, bc := range []struct {
		name     string
		deadline bool
		session  bool
	}{
		{name: "plain"},
		{name: "deadline", deadline: true},
		{name: "session_hint", session: true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := NewScheduler(queued + 1)
			s.AddWorker("w", 1)
			s.SetReady("w", true)
			mk := func(id uint64) Request {
				r := Request{ID: id}
				if bc.deadline {
					r.Deadline = t0.Add(time.Hour + time.Duration(id))
				}
				if bc.session {
					r.SessionID = "s"
				}
				return r
			}
			if d := s.Submit(mk(0), t0); d.Verdict != Dispatched {
				b.Fatalf("first submit: %v", d)
			}
			for id := uint64(1); id <= queued; id++ {
				if d := s.Submit(mk(id), t0); d.Verdict != Queued {
					b.Fatalf("submit %d: %v", id, d)
				}
			}
			next, run := uint64(queued+1), uint64(0)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if d := s.Submit(mk(next), t0); d.Verdict != Queued {
					b.Fatalf("submit %d: %v", next, d)
				}
				next++
				ds := s.Done("w", run)
				if len(ds) != 1 {
					b.Fatalf("done %d: %v", run, ds)
				}
				run = ds[0].Req.ID
			}
			if st := s.Stats(); st.Queued != queued || st.InFlight != 1 {
				b.Fatalf("stats after: %+v", st)
			}
		})
	}
}

func TestSchedulerPanicsOnProgrammerErrors(t *testing.T) {
	assert.Panics(t, func() { NewScheduler(-1) })
	s := NewScheduler(1)
	assert.Panics(t, func() { s.AddWorker("a", 0) })
	s.AddWorker("a", 1)
	assert.PanicsWithValue(t, `pool: AddWorker("a"): worker already present`, func() { s.AddWorker("a", 2) })
	_, c, _ := s.Load("a")
	assert.Equal(t, 1, c)
}

func TestNames(t *testing.T) {
	for v, want := range map[fmt.Stringer]string{
		AffinityHint:                     "hint",
		AffinityStrictQueue:              "strict_queue",
		AffinityStrictFailFast:           "strict_fail_fast",
		Affinity(9):                      "Affinity(9)",
		Dispatched:                       "dispatched",
		Queued:                           "queued",
		RejectedSaturated:                "rejected_saturated",
		RejectedWorkerBusy:               "rejected_worker_busy",
		RejectedSessionWorkerUnavailable: "rejected_session_worker_unavailable",
		RejectedExpired:                  "rejected_expired",
		RejectedDuplicate:                "rejected_duplicate",
		Verdict(0):                       "Verdict(0)",
		CancelNotFound:                   "not_found",
		CancelledQueued:                  "cancelled_queued",
		CancelledRunning:                 "cancelled_running",
		CancelOutcome(7):                 "CancelOutcome(7)",
	} {
		assert.Equal(t, want, v.String())
	}
	for _, v := range []Verdict{Dispatched, Queued, Verdict(0)} {
		assert.False(t, v.Rejected(), v)
	}
	for _, v := range []Verdict{RejectedSaturated, RejectedWorkerBusy, RejectedSessionWorkerUnavailable, RejectedExpired, RejectedDuplicate} {
		assert.True(t, v.Rejected(), v)
	}
}
