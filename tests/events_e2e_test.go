//go:build unix

package tests

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

func eventsOf[T snakepit.Event](evs []snakepit.Event) []T {
	var out []T
	for _, e := range evs {
		if t, ok := e.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// The event catalogue with real workers: a pool's start, calls, a crash
// and the stop, delivered in order off the pool's goroutine; a handler
// that blocks holds nothing up and only misses events.
func TestEventCatalogue(t *testing.T) {
	rec := testutil.NewRecorder[snakepit.Event]()
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("events"),
		Pools:   []snakepit.PoolConfig{{Name: "ev", Size: 2}},
		OnEvent: rec.Add, CallEvents: true})

	evs := rec.WaitUntil(t, "the pool's start", func(evs []snakepit.Event) bool {
		return len(eventsOf[*snakepit.PoolInitComplete](evs)) == 1 && len(eventsOf[*snakepit.CleanupRun](evs)) == 1
	})
	require.Len(t, eventsOf[*snakepit.PoolInitStarted](evs), 1)
	assert.Equal(t, 2, eventsOf[*snakepit.PoolInitStarted](evs)[0].Size)
	assert.Len(t, eventsOf[*snakepit.WorkerSpawned](evs), 2)
	ready := eventsOf[*snakepit.WorkerReady](evs)
	require.Len(t, ready, 2)
	for _, r := range ready {
		assert.True(t, testutil.Alive(r.OSPid), "ready with its process")
	}
	done := eventsOf[*snakepit.PoolInitComplete](evs)[0]
	assert.Equal(t, 2, done.Ready)
	assert.Greater(t, done.Duration, time.Duration(0))
	assert.True(t, eventsOf[*snakepit.CleanupRun](evs)[0].AtStart)
	assert.Equal(t, "pool.init.complete", done.EventName())

	// Calls: dispatched and done, with their outcome.
	_, err := app.Execute(t.Context(), "add", map[string]int{"a": 1, "b": 2}, snakepit.WithPool("ev"))
	require.NoError(t, err)
	_, err = app.Execute(t.Context(), "raise_error", map[string]string{"kind": "key"}, snakepit.WithPool("ev"))
	require.Error(t, err)
	evs = rec.WaitUntil(t, "two calls done", func(evs []snakepit.Event) bool {
		return len(eventsOf[*snakepit.CallDone](evs)) == 2
	})
	calls := eventsOf[*snakepit.CallDone](evs)
	assert.Equal(t, "add", calls[0].Tool)
	assert.Equal(t, "", calls[0].Code)
	assert.NotEmpty(t, calls[0].WorkerID)
	assert.Greater(t, calls[0].Duration, time.Duration(0))
	assert.Equal(t, "python_exception", calls[1].Code)
	assert.Len(t, eventsOf[*snakepit.CallDispatched](evs), 2)

	// A crash: the process's end, the crash, and the replacement.
	require.NoError(t, syscall.Kill(ready[0].OSPid, syscall.SIGKILL))
	evs = rec.WaitUntil(t, "the crash and the replacement", func(evs []snakepit.Event) bool {
		for _, r := range eventsOf[*snakepit.WorkerReady](evs) {
			if r.WorkerID == ready[0].WorkerID && r.Generation > ready[0].Generation {
				return true
			}
		}
		return false
	})
	term := eventsOf[*snakepit.WorkerTerminated](evs)
	require.NotEmpty(t, term)
	assert.False(t, term[0].Planned)
	assert.Equal(t, "killed", term[0].Exit.Signal)
	crashed := eventsOf[*snakepit.WorkerCrashed](evs)
	require.Len(t, crashed, 1)
	assert.Equal(t, ready[0].WorkerID, crashed[0].WorkerID)

	// A subscriber that blocks: calls go on, it only misses events.
	block := make(chan struct{})
	slow := app.Subscribe(func(snakepit.Event) { <-block }, snakepit.WithCallEvents(), snakepit.WithEventBuffer(2))
	for range 20 {
		_, err := app.Execute(t.Context(), "ping", nil, snakepit.WithPool("ev"))
		require.NoError(t, err, "a blocked handler holds no call up")
	}
	assert.Greater(t, slow.Dropped(), uint64(0))
	close(block)
	slow.Close()

	// A recycle, then the stop's cleanup.
	require.NoError(t, app.RecycleWorker(t.Context(), "ev", ready[1].WorkerID))
	evs = rec.WaitUntil(t, "the recycle", func(evs []snakepit.Event) bool {
		return len(eventsOf[*snakepit.WorkerRecycled](evs)) == 1
	})
	assert.Equal(t, snakepit.RecycleManual, eventsOf[*snakepit.WorkerRecycled](evs)[0].Reason)
	stopAndCheck(t, app)
	rec.WaitUntil(t, "the stop's cleanup", func(evs []snakepit.Event) bool {
		runs := eventsOf[*snakepit.CleanupRun](evs)
		return len(runs) == 2 && !runs[1].AtStart
	})
}

// A pool's Python telemetry stream reaches the App's events with the pool
// and worker; the filters apply in the worker.
func TestPythonTelemetryReachesTheEvents(t *testing.T) {
	rec := testutil.NewRecorder[snakepit.Event]()
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("pytel"), OnEvent: rec.Add,
		Pools: []snakepit.PoolConfig{{Name: "tel", Size: 1,
			Telemetry: snakepit.PythonTelemetry{Enabled: true, Allow: []string{"tool.*"}, Deny: []string{"tool.execution.exception"}}}}})
	for range 3 {
		_, err := app.Execute(t.Context(), "add", map[string]int{"a": 1, "b": 2}, snakepit.WithPool("tel"),
			snakepit.WithCorrelationID("cid-tel"))
		require.NoError(t, err)
	}
	_, err := app.Execute(t.Context(), "raise_error", map[string]string{"kind": "key"}, snakepit.WithPool("tel"))
	require.Error(t, err)
	_, err = app.Execute(t.Context(), "ping", nil, snakepit.WithPool("tel")) // after the failure: its events are in by then
	require.NoError(t, err)
	evs := rec.WaitUntil(t, "four tool.execution.stop events", func(evs []snakepit.Event) bool {
		return len(eventsOf[*snakepit.PythonEvent](evs)) >= 4
	})
	py := eventsOf[*snakepit.PythonEvent](evs)
	for _, e := range py {
		assert.Equal(t, "tool.execution.stop", e.Name, "tool.execution.exception is denied")
		assert.Equal(t, "python.tool.execution.stop", e.EventName())
		assert.Equal(t, "tel", e.Pool)
		assert.Equal(t, "tel-w1", e.WorkerID)
		assert.Contains(t, e.Measurements, "duration_ms")
	}
	assert.Equal(t, "add", py[0].Metadata["tool_name"])
	assert.Equal(t, "cid-tel", py[0].CorrelationID)
}

// A worker that is stopping is not reported as missing heartbeats. The
// worker is frozen (SIGSTOP) as the App stops, so its stop takes the whole
// grace and ends with SIGKILL; pings to it would fail or time out and used
// to be logged and published as misses.
func TestStoppingWorkersMissNoHeartbeat(t *testing.T) {
	rec := testutil.NewRecorder[snakepit.Event]()
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("hbstop"), OnEvent: rec.Add,
		Pools: []snakepit.PoolConfig{{Name: "hb", Size: 1, StopGrace: time.Second,
			Heartbeat: snakepit.HeartbeatConfig{Interval: 20 * time.Millisecond, Timeout: 2 * time.Second, MaxMissed: 1000,
				Independent: true}}}})
	ws, err := app.Workers(t.Context(), "hb")
	require.NoError(t, err)
	require.Len(t, ws, 1)
	require.NoError(t, syscall.Kill(ws[0].OSPid, syscall.SIGSTOP))
	start := time.Now()
	stopAndCheck(t, app)
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "the frozen worker held the stop for the grace")
	for _, e := range rec.All() {
		if m, ok := e.(*snakepit.HeartbeatMissed); ok {
			t.Errorf("a heartbeat miss was reported while the worker stopped: %+v", m)
		}
	}
}
