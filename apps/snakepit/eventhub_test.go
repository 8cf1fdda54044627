package snakepit

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/pool"
)

func TestEventHubDeliversInOrderFiltersAndDrops(t *testing.T) {
	a := &App{events: &eventHub{}}
	got := make(chan Event, 100)
	all := a.Subscribe(func(e Event) { got <- e })
	calls := make(chan Event, 100)
	withCalls := a.Subscribe(func(e Event) { calls <- e }, WithCallEvents())
	assert.True(t, a.events.wantCalls())

	a.events.publish(&WorkerSpawned{WorkerID: "p-w1"})
	a.events.publish(&CallQueued{RequestID: "r"})
	a.events.publish(&WorkerReady{WorkerID: "p-w1"})
	all.Close()
	withCalls.Close()
	assert.False(t, a.events.wantCalls(), "no call subscriber left")
	close(got)
	close(calls)
	var names []string
	for e := range got {
		names = append(names, e.EventName())
	}
	assert.Equal(t, []string{"worker.spawned", "worker.ready"}, names, "call events only for those who asked")
	names = nil
	for e := range calls {
		names = append(names, e.EventName())
	}
	assert.Equal(t, []string{"worker.spawned", "call.queued", "worker.ready"}, names)

	// A blocked handler: publish never waits; the rest is dropped and counted.
	block := make(chan struct{})
	var handled atomic.Int32
	slow := a.Subscribe(func(Event) { <-block; handled.Add(1) }, WithEventBuffer(2))
	start := time.Now()
	for range 10 {
		a.events.publish(&WorkerSpawned{})
	}
	assert.Less(t, time.Since(start), time.Second, "publish does not wait for a handler")
	assert.GreaterOrEqual(t, slow.Dropped(), uint64(7)) // 10 − the buffer − the one being handled
	close(block)
	slow.Close()
	assert.EqualValues(t, 10-slow.Dropped(), handled.Load(), "every event not dropped was handled before Close returned")
	slow.Close() // twice is fine
}

func TestEventsFromPoolAndHeartbeat(t *testing.T) {
	h := &eventHub{}
	t0 := time.Unix(100, 0)
	assert.Equal(t, &PoolInitStarted{At: t0, Pool: "p", Size: 2}, h.fromPool(&pool.PoolInitStarted{Pool: "p", Size: 2}, t0))
	done, ok := h.fromPool(&pool.PoolInitComplete{Pool: "p", Ready: 2}, t0.Add(time.Second)).(*PoolInitComplete)
	require.True(t, ok)
	assert.Equal(t, time.Second, done.Duration, "from the pool's PoolInitStarted")
	assert.Nil(t, h.fromPool("something else", t0))

	e := heartbeatMissed(&heartbeat.Event{Kind: heartbeat.EventMissed, WorkerID: "gpu-pool-w3", Missed: 2, Dependent: true, At: t0})
	assert.Equal(t, &HeartbeatMissed{At: t0, Pool: "gpu-pool", WorkerID: "gpu-pool-w3", Missed: 2, Dependent: true}, e)
	assert.Nil(t, heartbeatMissed(&heartbeat.Event{Kind: heartbeat.EventRecovered, WorkerID: "p-w1"}))
	assert.Equal(t, "pool.circuit.open", (&CircuitChanged{To: CircuitOpen}).EventName())
}
