//go:build unix

package tests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/worker"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// startApp starts an App on the repository's Python bridge, waits for every
// worker, and in cleanup stops it and checks that no process of its run is
// left.
func startApp(t *testing.T, cfg snakepit.Config) *snakepit.App {
	t.Helper()
	testutil.Python(t)
	cfg.PrivDir = filepath.Join(testutil.RepoRoot(t), "priv", "python")
	if cfg.Logger == nil {
		cfg.Logger = testutil.QuietLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app, err := snakepit.Start(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { stopAndCheck(t, app) })
	require.NoError(t, app.AwaitInitComplete(ctx))
	return app
}

// stopAndCheck stops app (idempotent) and asserts that no process carrying
// its run id is alive.
func stopAndCheck(t *testing.T, app *snakepit.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, app.Stop(ctx))
	require.Empty(t, testutil.ProcessesOfRun(app.RunID()), "python processes of run %s left after Stop", app.RunID())
}

// waitStats polls a pool's stats until cond holds or fails the test.
func waitStats(t *testing.T, app *snakepit.App, pool string, what string, cond func(s statsView) bool) statsView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last statsView
	for time.Now().Before(deadline) {
		st, err := app.Stats(t.Context(), pool)
		require.NoError(t, err)
		last = statsView{Busy: uint64(st.Busy), Queued: uint64(st.Queued), Ready: uint64(st.Ready), InFlight: uint64(st.InFlight),
			QueueTimeouts: st.QueueTimeouts, Saturated: st.PoolSaturated, Restarts: st.WorkerRestarts,
			Requests: st.Requests, Completed: st.Completed, Errors: st.Errors, Workers: uint64(st.Workers)}
		if cond(last) {
			return last
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pool %s: %s did not happen within 30s; last stats %+v", pool, what, last)
	return last
}

// statsView is the subset of pool stats the tests read.
type statsView struct {
	Busy, Queued, Ready, InFlight, QueueTimeouts, Saturated, Restarts, Requests, Completed, Errors, Workers uint64
}

// workerInfoRequest asks a worker actor for its Info.
func workerInfoRequest() any { return &worker.GetInfo{} }

// inFlight reads the in-flight count of a worker Info reply.
func inFlight(res any) int {
	if inf, ok := res.(*worker.Info); ok {
		return inf.InFlight
	}
	return -1
}

// startAppNoWait is startApp without waiting for the workers.
func startAppNoWait(t *testing.T, cfg snakepit.Config) *snakepit.App {
	t.Helper()
	testutil.Python(t)
	cfg.PrivDir = filepath.Join(testutil.RepoRoot(t), "priv", "python")
	cfg.Logger = testutil.QuietLogger(t)
	app, err := snakepit.Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { stopAndCheck(t, app) })
	return app
}

func repoPriv(t *testing.T) string { return filepath.Join(testutil.RepoRoot(t), "priv", "python") }

// uniqueInstance is an instance name no other test or host uses.
func uniqueInstance(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano())
}
