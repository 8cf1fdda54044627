package pool

import (
	"slices"
	"time"
)

// queue is the pool's FIFO of waiting requests.
//
// It is a doubly linked list (FIFO order, O(1) removal from the middle for
// cancel and dispatch), an index by request id (O(1) cancel lookup), and a
// min-heap of the requests that carry a deadline (O(log n) NextDeadline and
// expiry). Removed entries go to a free list, so a steady enqueue/dispatch
// load does not allocate.
//
// The queue knows nothing about workers or eligibility; Scheduler walks it
// with front and next.
type queue struct {
	head, tail *entry
	n          int
	byID       map[uint64]*entry
	deadlines  []*entry // min-heap by (deadline, seq)
	free       *entry   // free list, linked through next
	seq        uint64   // enqueue counter: FIFO order of entries
}

// entry is one queued request.
type entry struct {
	req        Request
	seq        uint64
	prev, next *entry
	heapIdx    int // index in queue.deadlines, -1 when the request has no deadline
}

func newQueue() *queue {
	return &queue{byID: make(map[uint64]*entry)}
}

// len reports the number of queued requests.
func (q *queue) len() int { return q.n }

// front returns the oldest entry, or nil when the queue is empty.
func (q *queue) front() *entry { return q.head }

// get returns the entry of a queued request, or nil.
func (q *queue) get(id uint64) *entry { return q.byID[id] }

// has reports whether a request with this id is queued.
func (q *queue) has(id uint64) bool {
	_, ok := q.byID[id]
	return ok
}

// push appends req at the tail. The caller guarantees req.ID is not queued.
func (q *queue) push(req Request) {
	e := q.free
	if e != nil {
		q.free = e.next
		e.next = nil
	} else {
		e = &entry{}
	}
	q.seq++
	e.req = req
	e.seq = q.seq
	e.heapIdx = -1
	e.prev = q.tail
	if q.tail != nil {
		q.tail.next = e
	} else {
		q.head = e
	}
	q.tail = e
	q.n++
	q.byID[req.ID] = e
	if !req.Deadline.IsZero() {
		q.heapPush(e)
	}
}

// remove unlinks e, recycles it and returns its request.
func (q *queue) remove(e *entry) Request {
	req := e.req
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	if e.heapIdx >= 0 {
		q.heapRemove(e.heapIdx)
	}
	delete(q.byID, req.ID)
	q.n--
	*e = entry{next: q.free, heapIdx: -1} // drop the payload reference
	q.free = e
	return req
}

// nextDeadline returns the earliest deadline among queued requests.
func (q *queue) nextDeadline() (time.Time, bool) {
	if len(q.deadlines) == 0 {
		return time.Time{}, false
	}
	return q.deadlines[0].req.Deadline, true
}

// expire removes every request whose deadline is at or before now and
// returns them in queue (FIFO) order.
func (q *queue) expire(now time.Time) []Request {
	var due []*entry
	for len(q.deadlines) > 0 && !q.deadlines[0].req.Deadline.After(now) {
		e := q.deadlines[0]
		q.heapRemove(0)
		due = append(due, e)
	}
	if len(due) == 0 {
		return nil
	}
	slices.SortFunc(due, func(a, b *entry) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	out := make([]Request, len(due))
	for i, e := range due {
		out[i] = q.remove(e)
	}
	return out
}

// drain removes and returns every queued request in FIFO order.
func (q *queue) drain() []Request {
	if q.n == 0 {
		return nil
	}
	out := make([]Request, 0, q.n)
	for q.head != nil {
		out = append(out, q.remove(q.head))
	}
	return out
}

// The deadline heap orders entries by (deadline, seq), so equal deadlines
// come out in FIFO order.

func (q *queue) heapLess(i, j int) bool {
	a, b := q.deadlines[i], q.deadlines[j]
	if a.req.Deadline.Equal(b.req.Deadline) {
		return a.seq < b.seq
	}
	return a.req.Deadline.Before(b.req.Deadline)
}

func (q *queue) heapSwap(i, j int) {
	h := q.deadlines
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (q *queue) heapPush(e *entry) {
	e.heapIdx = len(q.deadlines)
	q.deadlines = append(q.deadlines, e)
	q.heapUp(e.heapIdx)
}

// heapRemove removes the element at index i.
func (q *queue) heapRemove(i int) {
	last := len(q.deadlines) - 1
	e := q.deadlines[i]
	if i != last {
		q.heapSwap(i, last)
	}
	q.deadlines[last] = nil
	q.deadlines = q.deadlines[:last]
	e.heapIdx = -1
	if i != last {
		if !q.heapDown(i) {
			q.heapUp(i)
		}
	}
}

func (q *queue) heapUp(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !q.heapLess(i, parent) {
			return
		}
		q.heapSwap(i, parent)
		i = parent
	}
}

// heapDown sifts element i down and reports whether it moved.
func (q *queue) heapDown(i int) bool {
	start := i
	n := len(q.deadlines)
	for {
		smallest := i
		if l := 2*i + 1; l < n && q.heapLess(l, smallest) {
			smallest = l
		}
		if r := 2*i + 2; r < n && q.heapLess(r, smallest) {
			smallest = r
		}
		if smallest == i {
			return i != start
		}
		q.heapSwap(i, smallest)
		i = smallest
	}
}
