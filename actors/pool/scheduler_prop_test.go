package pool

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// The property test runs random sequences of Scheduler calls against a model
// that tracks every request's fate, and checks after every call:
//
//   - each request is queued, running or finished, and leaves the queue or a
//     slot at most once (a second fate fails the transition);
//   - no worker runs more than its capacity; the queue never holds more than
//     maxQueue;
//   - a worker taking requests from the queue takes the oldest one it may run
//     (FIFO among requests with the same eligibility), and afterwards no ready
//     worker with a free slot has a queued request it may run;
//   - Submit's decision follows the rules (least loaded, ties by add order,
//     affinity, saturation, expiry, duplicates);
//   - Expire returns exactly the queued requests whose deadline has passed,
//     in queue order, each once;
//   - Stats, Load, NextDeadline and SessionWorker agree with the model.
//
// At the end, Drain and removing every worker leave no request without a
// fate.

var (
	propWorkers  = []WorkerID{"w0", "w1", "w2", "w3"}
	propSessions = []string{"", "s1", "s2"}
)

type mState int

const (
	mQueued mState = iota + 1
	mRunning
	mFinished
)

type mReq struct {
	req   Request
	state mState
	on    *mWorker // while running
	fate  string   // once finished
}

type mWorker struct {
	id       WorkerID
	capacity int
	ready    bool
	running  map[uint64]bool
}

type model struct {
	maxQueue int
	now      time.Time
	workers  map[WorkerID]*mWorker
	order    []*mWorker          // live workers, AddWorker order
	binds    map[string]*mWorker // pointer identity: a re-added worker is a new one
	reqs     map[uint64]*mReq
	queue    []uint64 // queued ids, FIFO
	nextID   uint64
}

func (m *model) live(w *mWorker) bool { return w != nil && m.workers[w.id] == w }

func (m *model) free(w *mWorker) bool {
	return m.live(w) && w.ready && len(w.running) < w.capacity
}

func (m *model) eligible(r Request, w *mWorker) bool {
	if r.SessionID == "" || r.Affinity == AffinityHint {
		return true
	}
	b, ok := m.binds[r.SessionID]
	return !ok || b == w
}

// firstEligible returns the oldest queued request w may run, or 0.
func (m *model) firstEligible(w *mWorker) uint64 {
	for _, id := range m.queue {
		if m.eligible(m.reqs[id].req, w) {
			return id
		}
	}
	return 0
}

// freeWorkers returns the ready workers with a free slot, in add order.
func (m *model) freeWorkers() []WorkerID {
	var out []WorkerID
	for _, w := range m.order {
		if m.free(w) {
			out = append(out, w.id)
		}
	}
	return out
}

// waitingSessions returns the sessions of queued strict requests, sorted.
func (m *model) waitingSessions() []string {
	var out []string
	for _, id := range m.queue {
		if r := m.reqs[id].req; r.SessionID != "" && r.Affinity != AffinityHint && !slices.Contains(out, r.SessionID) {
			out = append(out, r.SessionID)
		}
	}
	slices.Sort(out)
	return out
}

func (m *model) leastLoaded() *mWorker {
	var best *mWorker
	for _, w := range m.order {
		if !m.free(w) {
			continue
		}
		if best == nil || float64(len(w.running))/float64(w.capacity) < float64(len(best.running))/float64(best.capacity) {
			best = w
		}
	}
	return best
}

func (m *model) unqueue(id uint64) {
	i := slices.Index(m.queue, id)
	if i < 0 {
		panic(fmt.Sprintf("model: %d not queued", id))
	}
	m.queue = slices.Delete(m.queue, i, i+1)
}

// finish records a terminal fate for a queued request.
func (m *model) finishQueued(t *rapid.T, r Request, fate string) {
	mr := m.reqs[r.ID]
	require.NotNil(t, mr, "%s: unknown request %d", fate, r.ID)
	require.Equal(t, mQueued, mr.state, "%s: request %d is not queued (fate %q)", fate, r.ID, mr.fate)
	require.Equal(t, mr.req, r, "%s: request %d changed", fate, r.ID)
	m.unqueue(r.ID)
	mr.state, mr.fate = mFinished, fate
}

// start records a dispatch. fromQueue dispatches must take the oldest queued
// request the worker may run.
func (m *model) start(t *rapid.T, d Dispatch, fromQueue bool) {
	w := m.workers[d.Worker]
	require.True(t, m.free(w), "dispatch %d to %s: no free ready slot", d.Req.ID, d.Worker)
	if fromQueue {
		mr := m.reqs[d.Req.ID]
		require.NotNil(t, mr, "dispatch of unknown request %d", d.Req.ID)
		require.Equal(t, mQueued, mr.state, "dispatch of request %d that is not queued (fate %q)", d.Req.ID, mr.fate)
		require.Equal(t, mr.req, d.Req, "request %d changed", d.Req.ID)
		require.Equal(t, m.firstEligible(w), d.Req.ID, "FIFO: %s must take the oldest request it may run", d.Worker)
		m.unqueue(d.Req.ID)
	} else {
		m.reqs[d.Req.ID] = &mReq{req: d.Req}
	}
	mr := m.reqs[d.Req.ID]
	mr.state, mr.on = mRunning, w
	w.running[d.Req.ID] = true
	if sid := d.Req.SessionID; sid != "" {
		if b, ok := m.binds[sid]; !ok || !m.live(b) {
			m.binds[sid] = w
		}
	}
}

func (m *model) startAll(t *rapid.T, ds []Dispatch, worker WorkerID) {
	for _, d := range ds {
		if worker != "" {
			require.Equal(t, worker, d.Worker, "dispatch of %d", d.Req.ID)
		}
		m.start(t, d, true)
	}
}

func (m *model) pending(id uint64) bool {
	mr, ok := m.reqs[id]
	return ok && mr.state != mFinished
}

// expectSubmit is the rule book for Submit.
func (m *model) expectSubmit(r Request) (Decision, *mWorker) {
	if !r.Deadline.IsZero() && !r.Deadline.After(m.now) {
		return Decision{Verdict: RejectedExpired}, nil
	}
	if m.pending(r.ID) {
		return Decision{Verdict: RejectedDuplicate}, nil
	}
	var bound *mWorker
	if r.SessionID != "" {
		bound = m.binds[r.SessionID]
	}
	var target *mWorker
	switch {
	case bound != nil && r.Affinity != AffinityHint:
		switch {
		case !m.live(bound) || !bound.ready:
			return Decision{Verdict: RejectedSessionWorkerUnavailable}, nil
		case m.free(bound):
			target = bound
		case r.Affinity == AffinityStrictFailFast:
			return Decision{Verdict: RejectedWorkerBusy}, nil
		}
	case bound != nil && m.free(bound):
		target = bound
	default:
		target = m.leastLoaded()
	}
	switch {
	case target != nil:
		return Decision{Verdict: Dispatched, Worker: target.id}, target
	case len(m.queue) >= m.maxQueue:
		return Decision{Verdict: RejectedSaturated}, nil
	}
	return Decision{Verdict: Queued}, nil
}

func (m *model) check(t *rapid.T, s *Scheduler) {
	var want Stats
	want.Workers = len(m.order)
	want.Queued = len(m.queue)
	for _, w := range m.order {
		require.LessOrEqual(t, len(w.running), w.capacity, "capacity of %s", w.id)
		want.InFlight += len(w.running)
		if w.ready {
			want.Ready++
			want.Capacity += w.capacity
			if len(w.running) < w.capacity {
				want.Available++
			} else {
				want.Busy++
			}
		}
		// No ready worker with a free slot leaves a request it may run
		// waiting.
		if m.free(w) {
			require.Zero(t, m.firstEligible(w), "%s is free but leaves a request queued", w.id)
		}
	}
	require.Equal(t, want, s.Stats())
	require.LessOrEqual(t, len(m.queue), m.maxQueue, "queue bound")

	for _, id := range propWorkers {
		in, capacity, ok := s.Load(id)
		w, live := m.workers[id]
		require.Equal(t, live, ok, "Load(%s) ok", id)
		if live {
			require.Equal(t, []int{len(w.running), w.capacity}, []int{in, capacity}, "Load(%s)", id)
		}
	}

	var next time.Time
	queued, running := 0, 0
	for _, mr := range m.reqs {
		switch mr.state {
		case mQueued:
			queued++
			if d := mr.req.Deadline; !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		case mRunning:
			running++
			require.True(t, mr.on.running[mr.req.ID], "running request %d not on its worker", mr.req.ID)
		}
	}
	require.Equal(t, len(m.queue), queued, "model: queued requests")
	require.Equal(t, want.InFlight, running, "model: running requests")
	gotNext, ok := s.NextDeadline()
	require.Equal(t, !next.IsZero(), ok, "NextDeadline ok")
	require.True(t, next.Equal(gotNext), "NextDeadline %v, want %v", gotNext, next)

	for _, sid := range propSessions[1:] {
		id, gone, ok := s.SessionWorker(sid)
		b, bound := m.binds[sid]
		require.Equal(t, bound, ok, "SessionWorker(%s) ok", sid)
		if bound {
			require.Equal(t, b.id, id, "SessionWorker(%s)", sid)
			require.Equal(t, !m.live(b), gone, "SessionWorker(%s) gone", sid)
		}
	}
}

func TestSchedulerProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := &model{
			maxQueue: rapid.IntRange(0, 6).Draw(t, "maxQueue"),
			now:      t0,
			workers:  map[WorkerID]*mWorker{},
			binds:    map[string]*mWorker{},
			reqs:     map[uint64]*mReq{},
			nextID:   1,
		}
		s := NewScheduler(m.maxQueue)
		drawWorker := func(t *rapid.T) WorkerID { return rapid.SampledFrom(propWorkers).Draw(t, "worker") }
		// drawSession favours sessions with strict requests waiting, whose
		// rebinding can release them.
		drawSession := func(t *rapid.T) string {
			if waiting := m.waitingSessions(); len(waiting) > 0 && rapid.Bool().Draw(t, "waiting") {
				return rapid.SampledFrom(waiting).Draw(t, "waitingSession")
			}
			return rapid.SampledFrom(propSessions).Draw(t, "session")
		}

		actions := map[string]func(*rapid.T){
			"AddWorker": func(t *rapid.T) {
				id := drawWorker(t)
				if _, ok := m.workers[id]; ok {
					t.Skip("already present")
				}
				c := rapid.IntRange(1, 3).Draw(t, "capacity")
				s.AddWorker(id, c)
				w := &mWorker{id: id, capacity: c, running: map[uint64]bool{}}
				m.workers[id] = w
				m.order = append(m.order, w)
			},
			"SetReady": func(t *rapid.T) {
				id := drawWorker(t)
				ready := rapid.Float64Range(0, 1).Draw(t, "p") < 0.8
				ds := s.SetReady(id, ready)
				w, ok := m.workers[id]
				if !ok || !ready {
					require.Empty(t, ds)
					if ok {
						w.ready = false
					}
					return
				}
				w.ready = true
				m.startAll(t, ds, id)
			},
			"RemoveWorker": func(t *rapid.T) {
				id := drawWorker(t)
				inflight, orphaned := s.RemoveWorker(id)
				w, ok := m.workers[id]
				if !ok {
					require.Empty(t, inflight)
					require.Empty(t, orphaned)
					return
				}
				var wantIn []uint64
				for rid := range w.running {
					wantIn = append(wantIn, rid)
				}
				slices.Sort(wantIn)
				require.Equal(t, wantIn, inflight, "in-flight of removed worker")
				var wantOrph []uint64
				for _, rid := range m.queue {
					r := m.reqs[rid].req
					if r.SessionID != "" && r.Affinity != AffinityHint && m.binds[r.SessionID] == w {
						wantOrph = append(wantOrph, rid)
					}
				}
				require.Equal(t, wantOrph, ids(orphaned), "orphaned by removal")
				for _, rid := range inflight {
					mr := m.reqs[rid]
					mr.state, mr.on, mr.fate = mFinished, nil, "worker lost"
				}
				for _, r := range orphaned {
					m.finishQueued(t, r, "orphaned")
				}
				delete(m.workers, id)
				m.order = slices.DeleteFunc(m.order, func(o *mWorker) bool { return o == w })
			},
			"Submit": func(t *rapid.T) {
				id := m.nextID
				if len(m.reqs) > 0 && rapid.Float64Range(0, 1).Draw(t, "p") < 0.05 {
					id = rapid.Uint64Range(1, m.nextID-1).Draw(t, "reuse") // maybe a duplicate
					if !m.pending(id) {
						t.Skip("finished ids are not reused here")
					}
				} else {
					m.nextID++
				}
				r := Request{
					ID:        id,
					SessionID: rapid.SampledFrom(propSessions).Draw(t, "session"),
					Affinity:  Affinity(rapid.IntRange(0, 2).Draw(t, "affinity")),
					Payload:   fmt.Sprint("p", id, "@", m.now.Sub(t0)),
				}
				if rapid.Bool().Draw(t, "hasDeadline") {
					r.Deadline = m.now.Add(time.Duration(rapid.IntRange(-1, 8).Draw(t, "deadline")) * time.Second)
				}
				want, target := m.expectSubmit(r)
				if want.Verdict == Dispatched {
					// A direct dispatch must not overtake a queued request.
					require.Zero(t, m.firstEligible(target), "dispatch to %s overtakes the queue", target.id)
				}
				got := s.Submit(r, m.now)
				require.Equal(t, want, got, "Submit(%+v)", r)
				switch {
				case got.Verdict == Dispatched:
					m.start(t, Dispatch{Req: r, Worker: got.Worker}, false)
				case got.Verdict == Queued:
					m.reqs[id] = &mReq{req: r, state: mQueued}
					m.queue = append(m.queue, id)
				case m.pending(id):
					// A rejected duplicate: the pending request keeps its
					// state.
				default:
					m.reqs[id] = &mReq{req: r, state: mFinished, fate: got.Verdict.String()}
				}
			},
			"Done": func(t *rapid.T) {
				var running []uint64
				for id, mr := range m.reqs {
					if mr.state == mRunning {
						running = append(running, id)
					}
				}
				slices.Sort(running)
				var w WorkerID
				var id uint64
				if len(running) > 0 && rapid.Float64Range(0, 1).Draw(t, "p") < 0.85 {
					id = rapid.SampledFrom(running).Draw(t, "running")
					w = m.reqs[id].on.id
				} else {
					w = drawWorker(t)
					id = rapid.Uint64Range(0, m.nextID).Draw(t, "id")
				}
				ds := s.Done(w, id)
				mr, ok := m.reqs[id]
				if !ok || mr.state != mRunning || mr.on.id != w {
					require.Empty(t, ds, "Done of a request not running on %s", w)
					return
				}
				delete(mr.on.running, id)
				mr.state, mr.on, mr.fate = mFinished, nil, "done"
				m.startAll(t, ds, w)
			},
			"Cancel": func(t *rapid.T) {
				id := rapid.Uint64Range(0, m.nextID).Draw(t, "id")
				got := s.Cancel(id)
				mr, ok := m.reqs[id]
				switch {
				case !ok || mr.state == mFinished:
					require.Equal(t, CancelResult{Outcome: CancelNotFound}, got)
				case mr.state == mRunning:
					require.Equal(t, CancelResult{Outcome: CancelledRunning, Worker: mr.on.id, Req: mr.req}, got)
				default:
					require.Equal(t, CancelResult{Outcome: CancelledQueued, Req: mr.req}, got)
					m.finishQueued(t, got.Req, "cancelled")
				}
			},
			"Expire": func(t *rapid.T) {
				m.now = m.now.Add(time.Duration(rapid.IntRange(0, 3).Draw(t, "advance")) * time.Second)
				var want []uint64
				for _, id := range m.queue {
					if d := m.reqs[id].req.Deadline; !d.IsZero() && !d.After(m.now) {
						want = append(want, id)
					}
				}
				got := s.Expire(m.now)
				require.Equal(t, want, ids(got), "Expire at %v", m.now.Sub(t0))
				for _, r := range got {
					require.False(t, r.Deadline.After(m.now), "expired before its deadline")
					m.finishQueued(t, r, "expired")
				}
			},
			"Tick": func(t *rapid.T) {
				// Time passes without the timer firing: requests past their
				// deadline stay queued until Expire.
				m.now = m.now.Add(time.Duration(rapid.IntRange(1, 2).Draw(t, "advance")) * time.Second)
			},
			"Drain": func(t *rapid.T) {
				if rapid.Float64Range(0, 1).Draw(t, "p") < 0.7 {
					t.Skip("drain rarely")
				}
				got := s.Drain()
				require.True(t, slices.Equal(m.queue, ids(got)), "Drain returned %v, want %v", ids(got), m.queue)
				for _, r := range got {
					m.finishQueued(t, r, "drained")
				}
			},
			"BindSession": func(t *rapid.T) {
				sid := drawSession(t)
				id := drawWorker(t)
				if free := m.freeWorkers(); len(free) > 0 && rapid.Bool().Draw(t, "toFree") {
					id = rapid.SampledFrom(free).Draw(t, "freeWorker")
				}
				ds, ok := s.BindSession(sid, id)
				w, live := m.workers[id]
				require.Equal(t, live && sid != "", ok, "BindSession ok")
				if !ok {
					require.Empty(t, ds)
					return
				}
				m.binds[sid] = w
				m.startAll(t, ds, id)
			},
			"UnbindSession": func(t *rapid.T) {
				sid := drawSession(t)
				ds := s.UnbindSession(sid)
				if _, ok := m.binds[sid]; !ok {
					require.Empty(t, ds)
					return
				}
				delete(m.binds, sid)
				m.startAll(t, ds, "")
			},
			"": func(t *rapid.T) { m.check(t, s) },
		}
		// Repeat picks actions uniformly and runs about 30 of them; repeat
		// the common calls so a run reaches busy workers and a full queue.
		for name, n := range map[string]int{"Submit": 6, "Done": 4, "SetReady": 2, "RemoveWorker": 2, "BindSession": 2, "UnbindSession": 2} {
			for i := 2; i <= n; i++ {
				actions[fmt.Sprintf("%s#%d", name, i)] = actions[name]
			}
		}
		// Start with some ready workers, so short runs get past startup.
		for i := range rapid.IntRange(0, 3).Draw(t, "initialWorkers") {
			id, c := propWorkers[i], rapid.IntRange(1, 3).Draw(t, "capacity")
			s.AddWorker(id, c)
			require.Empty(t, s.SetReady(id, true))
			w := &mWorker{id: id, capacity: c, ready: true, running: map[uint64]bool{}}
			m.workers[id] = w
			m.order = append(m.order, w)
		}
		t.Repeat(actions)

		// Stop everything: no request may be left without a fate.
		for _, r := range s.Drain() {
			m.finishQueued(t, r, "drained")
		}
		for _, w := range slices.Clone(m.order) {
			inflight, orphaned := s.RemoveWorker(w.id)
			require.Empty(t, orphaned, "orphans after drain")
			for _, id := range inflight {
				mr := m.reqs[id]
				require.Equal(t, mRunning, mr.state)
				mr.state, mr.fate = mFinished, "worker lost"
			}
			delete(m.workers, w.id)
		}
		m.order = nil
		for id, mr := range m.reqs {
			require.Equal(t, mFinished, mr.state, "request %d has no fate", id)
		}
		require.Equal(t, Stats{}, s.Stats())
	})
}
