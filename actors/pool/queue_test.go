package pool

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// queueIDs walks the list from head to tail and, checking the back links,
// returns the ids in order.
func queueIDs(t require.TestingT, q *queue) []uint64 {
	var out []uint64
	var prev *entry
	for e := q.head; e != nil; e = e.next {
		require.Same(t, prev, e.prev, "prev link of %d", e.req.ID)
		out = append(out, e.req.ID)
		prev = e
	}
	require.Same(t, prev, q.tail, "tail")
	require.Equal(t, len(out), q.len(), "len")
	require.Equal(t, len(out), len(q.byID), "index size")
	return out
}

func TestQueueFIFOAndRemove(t *testing.T) {
	tests := []struct {
		name   string
		push   []uint64
		remove []uint64
		want   []uint64
	}{
		{"empty", nil, nil, nil},
		{"fifo", []uint64{3, 1, 2}, nil, []uint64{3, 1, 2}},
		{"remove head", []uint64{1, 2, 3}, []uint64{1}, []uint64{2, 3}},
		{"remove middle", []uint64{1, 2, 3}, []uint64{2}, []uint64{1, 3}},
		{"remove tail", []uint64{1, 2, 3}, []uint64{3}, []uint64{1, 2}},
		{"remove all", []uint64{1, 2, 3}, []uint64{2, 1, 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue()
			for _, id := range tt.push {
				q.push(Request{ID: id})
			}
			for _, id := range tt.remove {
				e := q.get(id)
				require.NotNil(t, e)
				assert.Equal(t, id, q.remove(e).ID)
				assert.False(t, q.has(id))
			}
			assert.Equal(t, tt.want, queueIDs(t, q))
			assert.Equal(t, tt.want, ids(q.drain()))
			assert.Empty(t, queueIDs(t, q))
		})
	}
}

func TestQueueReusesEntriesWithoutPayload(t *testing.T) {
	q := newQueue()
	q.push(Request{ID: 1, Payload: "big", Deadline: t0})
	e := q.get(1)
	q.remove(e)
	assert.Same(t, e, q.free)
	assert.Nil(t, e.req.Payload, "a recycled entry must not keep the payload alive")
	q.push(Request{ID: 2})
	assert.Same(t, e, q.get(2), "entry reused")
	assert.Nil(t, q.free)
	assert.Equal(t, -1, e.heapIdx)
	_, ok := q.nextDeadline()
	assert.False(t, ok)
}

func TestQueueExpire(t *testing.T) {
	q := newQueue()
	q.push(Request{ID: 1, Deadline: at(5 * time.Second)})
	q.push(Request{ID: 2})
	q.push(Request{ID: 3, Deadline: at(1 * time.Second)})
	q.push(Request{ID: 4, Deadline: at(5 * time.Second)})
	q.push(Request{ID: 5, Deadline: at(2 * time.Second)})

	d, ok := q.nextDeadline()
	require.True(t, ok)
	assert.Equal(t, at(time.Second), d)

	assert.Empty(t, q.expire(at(0)))
	assert.Equal(t, []uint64{3}, ids(q.expire(at(time.Second))))
	assert.Equal(t, []uint64{1, 4, 5}, ids(q.expire(at(time.Minute))))
	assert.Empty(t, q.expire(at(time.Hour)))
	assert.Equal(t, []uint64{2}, queueIDs(t, q))
	_, ok = q.nextDeadline()
	assert.False(t, ok)
}

// TestQueueProperties checks the list, the index and the deadline heap
// against a plain slice under random pushes, removals and expiries.
func TestQueueProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := newQueue()
		var model []Request // FIFO order
		nextID := uint64(1)
		now := t0
		t.Repeat(map[string]func(*rapid.T){
			"push": func(t *rapid.T) {
				r := Request{ID: nextID}
				nextID++
				if rapid.Bool().Draw(t, "hasDeadline") {
					r.Deadline = now.Add(time.Duration(rapid.IntRange(1, 20).Draw(t, "in")) * time.Second)
				}
				q.push(r)
				model = append(model, r)
			},
			"remove": func(t *rapid.T) {
				if len(model) == 0 {
					t.Skip("empty")
				}
				i := rapid.IntRange(0, len(model)-1).Draw(t, "i")
				got := q.remove(q.get(model[i].ID))
				require.Equal(t, model[i], got)
				model = slices.Delete(model, i, i+1)
			},
			"expire": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 5).Draw(t, "advance")) * time.Second)
				var want []uint64
				model = slices.DeleteFunc(model, func(r Request) bool {
					if !r.Deadline.IsZero() && !r.Deadline.After(now) {
						want = append(want, r.ID)
						return true
					}
					return false
				})
				require.Equal(t, want, ids(q.expire(now)))
			},
			"": func(t *rapid.T) {
				require.Equal(t, ids(model), queueIDs(t, q))
				var min time.Time
				for _, r := range model {
					if !r.Deadline.IsZero() && (min.IsZero() || r.Deadline.Before(min)) {
						min = r.Deadline
					}
				}
				d, ok := q.nextDeadline()
				require.Equal(t, !min.IsZero(), ok)
				require.True(t, min.Equal(d), "next deadline %v, want %v", d, min)
				for i, e := range q.deadlines {
					require.Equal(t, i, e.heapIdx)
					if i > 0 {
						require.False(t, q.heapLess(i, (i-1)/2), "heap order at %d", i)
					}
				}
			},
		})
	})
}
