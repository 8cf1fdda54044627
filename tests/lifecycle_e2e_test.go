//go:build unix

package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/actors/registry"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/procs"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// recorder collects the App's events of one type.
type recorder[T any] struct{ testutil.Recorder[T] }

func record[T any](t *testing.T, app *snakepit.App) *recorder[T] {
	r := &recorder[T]{}
	es := app.System().EventStream
	sub := es.Subscribe(func(evt any) {
		if e, ok := evt.(T); ok {
			r.Add(e)
		}
	})
	t.Cleanup(func() { es.Unsubscribe(sub) })
	return r
}

func (r *recorder[T]) all() []T { return r.All() }

func whoami(t *testing.T, app *snakepit.App, pool string, keys ...string) map[string]any {
	t.Helper()
	res, err := app.Execute(t.Context(), "whoami", map[string]any{"env_keys": keys}, snakepit.WithPool(pool))
	require.NoError(t, err)
	return decodeJSON(t, res).(map[string]any)
}

func pidOf(m map[string]any) int { return int(m["pid"].(float64)) }

func workerMeta(t *testing.T, app *snakepit.App, id string) registry.WorkerMeta {
	t.Helper()
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	meta, ok, err := reg.Lookup(t.Context(), id)
	require.NoError(t, err)
	require.True(t, ok)
	return meta
}

func TestMemoryRecyclingIsRealAndKeepsTheConfig(t *testing.T) {
	const interval = 300 * time.Millisecond
	app := startApp(t, snakepit.Config{LifecycleInterval: interval, Pools: []snakepit.PoolConfig{{
		Name: "mem", Size: 1, MemoryThresholdMB: 120,
		AdapterArgs: []string{"--shutdown-grace-ms", "1500"}, AdapterEnv: []string{"SNAKEPIT_TEST_FLAG=kept"},
	}}})
	recycled := record[*snakepit.WorkerRecycled](t, app)
	before := whoami(t, app, "mem", "SNAKEPIT_TEST_FLAG")
	metaBefore := workerMeta(t, app, before["worker_id"].(string))

	_, err := app.Execute(t.Context(), "allocate_mb", map[string]any{"n": 200}, snakepit.WithPool("mem"))
	require.NoError(t, err)
	over := time.Now()
	require.Eventually(t, func() bool { return len(recycled.all()) == 1 }, 2*interval+2*time.Second, 10*time.Millisecond,
		"a worker over the memory threshold is recycled within two check intervals")
	took := time.Since(over)
	ev := recycled.all()[0]
	require.Equal(t, snakepit.RecycleReason("memory"), ev.Reason)
	require.Greater(t, ev.RSSBytes, uint64(120<<20), "the Python process's RSS was measured")
	t.Logf("over the threshold → recycled in %s (check interval %s); RSS %d MiB", took.Round(time.Millisecond), interval, ev.RSSBytes>>20)

	waitStats(t, app, "mem", "the replacement is ready", func(s statsView) bool { return s.Ready == 1 })
	after := whoami(t, app, "mem", "SNAKEPIT_TEST_FLAG")
	require.NotEqual(t, pidOf(before), pidOf(after), "a new process")
	require.False(t, procs.Alive(pidOf(before)))
	require.Equal(t, before["adapter"], after["adapter"])
	require.Equal(t, before["env"], after["env"])
	require.Equal(t, map[string]any{"SNAKEPIT_TEST_FLAG": "kept"}, after["env"])
	require.Equal(t, withoutSocket(before["argv"]), withoutSocket(after["argv"]),
		"the same command line: adapter, args, run id, instance, worker id (only the private socket differs)")
	metaAfter := workerMeta(t, app, after["worker_id"].(string))
	require.Equal(t, metaBefore.Adapter, metaAfter.Adapter)
	require.Equal(t, metaBefore.PoolIdentifier, metaAfter.PoolIdentifier)
	require.Equal(t, metaBefore.WorkerModule, metaAfter.WorkerModule)
	require.Greater(t, metaAfter.Generation, metaBefore.Generation)
	held, err := app.Execute(t.Context(), "allocate_mb", map[string]any{"n": 0}, snakepit.WithPool("mem"))
	require.NoError(t, err)
	require.Equal(t, map[string]any{"held_mb": float64(0)}, decodeJSON(t, held), "the memory went with the old process")
}

func TestTTLAndMaxRequestsRecycling(t *testing.T) {
	app := startApp(t, snakepit.Config{LifecycleInterval: 100 * time.Millisecond, Pools: []snakepit.PoolConfig{
		{Name: "ttl", Size: 1, TTL: 700 * time.Millisecond},
		{Name: "maxreq", Size: 1, MaxRequests: 3},
	}})
	recycled := record[*snakepit.WorkerRecycled](t, app)
	first := pidOf(whoami(t, app, "ttl"))
	require.Eventually(t, func() bool {
		for _, e := range recycled.all() {
			if e.Pool == "ttl" && e.Reason == "ttl" {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	waitStats(t, app, "ttl", "replacement", func(s statsView) bool { return s.Ready == 1 })
	require.NotEqual(t, first, pidOf(whoami(t, app, "ttl")))

	pids := map[int]bool{}
	for range 3 {
		pids[pidOf(whoami(t, app, "maxreq"))] = true
	}
	require.Len(t, pids, 1, "three calls on one process")
	require.Eventually(t, func() bool {
		for _, e := range recycled.all() {
			if e.Pool == "maxreq" && e.Reason == "max_requests" && e.Requests == 3 {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	waitStats(t, app, "maxreq", "replacement", func(s statsView) bool { return s.Ready == 1 })
	p := pidOf(whoami(t, app, "maxreq"))
	require.False(t, pids[p], "the fourth call runs on a new process")
}

func TestManualRecycleAndResize(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "rs", Size: 1}}})
	ctx := t.Context()
	before := whoami(t, app, "rs")
	require.NoError(t, app.RecycleWorker(ctx, "rs", before["worker_id"].(string)))
	require.Eventually(t, func() bool {
		st, err := app.Stats(ctx, "rs")
		return err == nil && st.Recycled == 1 && st.Ready == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.NotEqual(t, pidOf(before), pidOf(whoami(t, app, "rs")))
	require.ErrorIs(t, app.RecycleWorker(ctx, "rs", "rs-w9"), snakepit.ErrInvalidArgument)

	require.NoError(t, app.ResizePool(ctx, "rs", 3))
	waitStats(t, app, "rs", "grown to 3", func(s statsView) bool { return s.Ready == 3 && s.Workers == 3 })
	require.NoError(t, app.ResizePool(ctx, "rs", 1))
	waitStats(t, app, "rs", "shrunk to 1", func(s statsView) bool { return s.Ready == 1 && s.Workers == 1 })
	ids, err := app.ListWorkers(ctx, "rs")
	require.NoError(t, err)
	require.Equal(t, []string{"rs-w1"}, ids)
}

func TestHeartbeatDependentAndIndependent(t *testing.T) {
	hb := snakepit.HeartbeatConfig{Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond, MaxMissed: 2}
	ind := hb
	ind.Independent = true
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{
		{Name: "dep", Size: 1, Heartbeat: hb},
		{Name: "ind", Size: 1, Heartbeat: ind},
	}})
	events := record[*heartbeat.Event](t, app)

	// Dependent: a frozen worker is killed and replaced.
	dep := pidOf(whoami(t, app, "dep"))
	require.NoError(t, syscall.Kill(dep, syscall.SIGSTOP))
	waitStats(t, app, "dep", "the frozen worker replaced", func(s statsView) bool { return s.Restarts == 1 && s.Ready == 1 })
	require.Eventually(t, func() bool { return !procs.Alive(dep) }, 5*time.Second, 10*time.Millisecond)
	require.NotEqual(t, dep, pidOf(whoami(t, app, "dep")))

	// Independent: only reported; the resumed worker is the same process.
	indPid := pidOf(whoami(t, app, "ind"))
	require.NoError(t, syscall.Kill(indPid, syscall.SIGSTOP))
	lost := func(kind heartbeat.EventKind) bool {
		for _, e := range events.all() {
			if e.Kind == kind && !e.Dependent && e.WorkerID == "ind-w1" {
				return true
			}
		}
		return false
	}
	require.Eventually(t, func() bool { return lost(heartbeat.EventLost) }, 10*time.Second, 10*time.Millisecond)
	// Three more pings missed after the loss: still not replaced.
	events.WaitUntil(t, "three more missed pings", func(l []*heartbeat.Event) bool {
		for _, e := range l {
			if e.Kind == heartbeat.EventMissed && e.WorkerID == "ind-w1" && e.Missed >= ind.MaxMissed+3 {
				return true
			}
		}
		return false
	})
	require.True(t, procs.Alive(indPid))
	st, err := app.Stats(t.Context(), "ind")
	require.NoError(t, err)
	require.Zero(t, st.WorkerRestarts)
	require.NoError(t, syscall.Kill(indPid, syscall.SIGCONT))
	require.Eventually(t, func() bool { return lost(heartbeat.EventRecovered) }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, indPid, pidOf(whoami(t, app, "ind")), "the resumed worker serves again")
	for _, e := range events.all() {
		if e.WorkerID == "dep-w1" && e.Kind == heartbeat.EventLost {
			require.True(t, e.Dependent)
		}
	}
}

func TestCrashBarrier(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{
		{Name: "storm", Size: 1, CrashBarrier: snakepit.CrashBarrier{Breaker: snakepit.BreakerConfig{Threshold: 3, Window: time.Minute, OpenFor: time.Minute}}},
		{Name: "idem", Size: 2},
	}})
	ctx := t.Context()
	crashes := record[*snakepit.WorkerCrashed](t, app)

	// A worker crashing on every call opens the breaker: calls then fail fast.
	for i := range 3 {
		// The previous crash's replacement must be up, or the call would
		// meet the dying process instead of crashing a new one.
		waitStats(t, app, "storm", "a worker to crash", func(s statsView) bool { return s.Ready == 1 && s.Restarts == uint64(i) })
		_, err := app.Execute(ctx, "crash", map[string]any{"code": 3}, snakepit.WithPool("storm"))
		require.ErrorIs(t, err, snakepit.ErrWorkerExit, "crash %d", i+1)
	}
	require.Eventually(t, func() bool {
		st, err := app.Stats(ctx, "storm")
		return err == nil && st.Circuit == "open"
	}, 10*time.Second, 10*time.Millisecond, "%d crashes seen", len(crashes.all()))
	start := time.Now()
	_, err := app.Execute(ctx, "ping", nil, snakepit.WithPool("storm"))
	require.ErrorIs(t, err, snakepit.ErrCircuitOpen)
	require.Less(t, time.Since(start), 5*time.Second, "refused, not queued")
	var classes []string
	for _, c := range crashes.all() {
		if c.Pool == "storm" {
			classes = append(classes, string(c.Class))
		}
	}
	require.Equal(t, []string{"exit", "exit", "exit"}, classes, "exit code 3: a plain exit, three times")

	// An idempotent call survives one worker crash: its worker is killed
	// mid-call and the call runs again on the other worker.
	type out struct {
		res *snakepit.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := app.Execute(ctx, "sleep", map[string]any{"ms": 1500}, snakepit.WithPool("idem"), snakepit.WithIdempotent())
		done <- out{r, err}
	}()
	waitStats(t, app, "idem", "the call running", func(s statsView) bool { return s.Busy == 1 })
	reg := registry.Client{Root: app.System().Root, PID: app.Registry()}
	var victim registry.WorkerMeta
	for _, id := range []string{"idem-w1", "idem-w2"} {
		meta, _, err := reg.Lookup(ctx, id)
		require.NoError(t, err)
		res, err := app.System().Root.RequestFuture(meta.PID, workerInfoRequest(), 5*time.Second).Result()
		require.NoError(t, err)
		if inFlight(res) == 1 {
			victim = meta
		}
	}
	require.NotZero(t, victim.OSPid)
	require.NoError(t, syscall.Kill(victim.OSPid, syscall.SIGKILL))
	o := <-done
	require.NoError(t, o.err, "the idempotent call was retried: %v", o.err)
	require.NotEqual(t, victim.WorkerID, o.res.WorkerID)
	st, err := app.Stats(ctx, "idem")
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Retried)

}

func TestExecutionTTLKillsAndReplacesAHungWorker(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "hung", Size: 1, ExecutionTTL: 400 * time.Millisecond}}})
	before := pidOf(whoami(t, app, "hung"))
	_, err := app.Execute(t.Context(), "sleep", map[string]any{"ms": 5000}, snakepit.WithPool("hung"))
	require.ErrorIs(t, err, snakepit.ErrDeadlineExceeded)
	require.ErrorContains(t, err, "execution TTL")
	waitStats(t, app, "hung", "replaced", func(s statsView) bool { return s.Restarts == 1 && s.Ready == 1 })
	require.False(t, procs.Alive(before), "the hung process was killed")
	require.NotEqual(t, before, pidOf(whoami(t, app, "hung")))
}

// withoutSocket drops the value of --listen (each process gets its own
// private socket directory).
func withoutSocket(argv any) []any {
	var out []any
	skip := false
	for _, a := range argv.([]any) {
		if skip {
			skip = false
			continue
		}
		if a == "--listen" {
			skip = true
		}
		out = append(out, a)
	}
	return out
}

const flakyServer = `"""A worker server that fails its start while a flag file exists."""
import os
import sys
import time

with open(os.environ["FLAKY_COUNT"], "a") as f:
    f.write(f"start {time.time_ns()}\n")
if os.path.exists(os.environ["FLAKY_FLAG"]):
    sys.exit(1)
from snakepit_bridge.server import run_main

if __name__ == "__main__":
    run_main()
`

// A worker whose replacement cannot start is started again with backoff
// (not in a tight loop that would exhaust the supervisor), and the pool is
// back to its size once starts work again.
func TestReconcileRestoresTheSizeWithBackoff(t *testing.T) {
	interp := testutil.Python(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "flaky_server.py")
	require.NoError(t, os.WriteFile(script, []byte(flakyServer), 0o644))
	flag, count := filepath.Join(dir, "flag"), filepath.Join(dir, "count")
	app := startApp(t, snakepit.Config{
		Python: interp.Path, Script: script, PythonPath: []string{repoPriv(t)},
		Pools: []snakepit.PoolConfig{{Name: "flaky", Size: 1, ReconcileBackoff: 100 * time.Millisecond,
			AdapterEnv: []string{"FLAKY_FLAG=" + flag, "FLAKY_COUNT=" + count}}},
	})
	starts := func() []time.Time {
		b, _ := os.ReadFile(count)
		var at []time.Time
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			ns, err := strconv.ParseInt(strings.TrimPrefix(line, "start "), 10, 64)
			if err == nil {
				at = append(at, time.Unix(0, ns))
			}
		}
		return at
	}
	require.Len(t, starts(), 1)
	pid := pidOf(whoami(t, app, "flaky"))
	require.NoError(t, os.WriteFile(flag, nil, 0o644))
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	// Four failed starts after the kill.
	require.Eventually(t, func() bool { return len(starts()) >= 5 }, 30*time.Second, 10*time.Millisecond,
		"the failing start is retried")
	// Backoff 100 ms doubling: each failed start waits at least twice as
	// long as the one before it (a restart loop without backoff would
	// start again as soon as the process exits, in a few ms).
	at := starts()[1:]
	for i := 1; i < len(at); i++ {
		gap, floor := at[i].Sub(at[i-1]), (100*time.Millisecond)<<(i-1)
		require.GreaterOrEqual(t, gap, floor, "start %d came %v after the one before it", i+1, gap)
	}
	st, err := app.Stats(t.Context(), "flaky")
	require.NoError(t, err)
	require.Zero(t, st.Ready)
	require.NoError(t, app.Err(), "the supervision tree did not give up")

	require.NoError(t, os.Remove(flag))
	waitStats(t, app, "flaky", "back to size", func(s statsView) bool { return s.Ready == 1 })
	require.NotEqual(t, pid, pidOf(whoami(t, app, "flaky")))
}
