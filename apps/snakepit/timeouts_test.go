package snakepit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/fakeworker"
	"github.com/snakepit-go/snakepit/internal/workerhook"
)

func TestTimeoutProfileBudgets(t *testing.T) {
	for _, tc := range []struct {
		p                      TimeoutProfile
		execute, stream, queue time.Duration
	}{
		{TimeoutBalanced, 300 * time.Second, 900 * time.Second, 10 * time.Second},
		{TimeoutProduction, 300 * time.Second, 900 * time.Second, 10 * time.Second},
		{TimeoutProductionStrict, 60 * time.Second, 300 * time.Second, 5 * time.Second},
		{TimeoutDevelopment, 900 * time.Second, 3600 * time.Second, 60 * time.Second},
		{TimeoutMLInference, 900 * time.Second, 3600 * time.Second, 60 * time.Second},
		{TimeoutBatch, 3600 * time.Second, 0, 300 * time.Second},
	} {
		b, err := tc.p.Budgets()
		require.NoError(t, err, tc.p)
		assert.Equal(t, Budgets{tc.execute, tc.stream, tc.queue}, b, tc.p)
	}
	assert.Len(t, TimeoutProfiles(), 6)
	_, err := TimeoutProfile("leisurely").Budgets()
	assert.ErrorContains(t, err, "leisurely")
	b, _ := TimeoutBatch.Budgets()
	assert.Equal(t, unboundedStream, b.callBudget(true), "batch streams have no budget of their own")
}

func TestApplyProfileFillsOnlyUnsetTimeouts(t *testing.T) {
	p := PoolConfig{QueueTimeout: time.Second}
	require.NoError(t, p.applyProfile(TimeoutMLInference))
	assert.Equal(t, TimeoutMLInference, p.TimeoutProfile, "the App's default")
	assert.Equal(t, time.Second, p.QueueTimeout, "set explicitly: kept")
	assert.Equal(t, 900*time.Second, p.ExecuteTimeout)
	assert.Equal(t, 3600*time.Second, p.StreamTimeout)

	p = PoolConfig{TimeoutProfile: TimeoutProductionStrict}
	require.NoError(t, p.applyProfile(TimeoutBatch))
	assert.Equal(t, 60*time.Second, p.ExecuteTimeout, "the pool's own profile wins over the App's")

	p = PoolConfig{}
	require.NoError(t, p.applyProfile(""))
	assert.Equal(t, TimeoutBalanced, p.TimeoutProfile)
	assert.Equal(t, 10*time.Second, p.QueueTimeout)

	p = PoolConfig{TimeoutProfile: "nope"}
	assert.Error(t, p.applyProfile(""))
}

// A call's deadline and queue budget follow its pool's profile, a
// per-call profile, WithTimeout and the context, in that order of
// precedence from weakest to strongest.
func TestCallDeadlinesFollowProfiles(t *testing.T) {
	workerhook.Set(fakeworker.Props)
	app, err := Start(context.Background(), Config{
		InstanceName: fmt.Sprintf("profiles-%d", os.Getpid()), DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), TimeoutProfile: TimeoutProductionStrict,
		Pools: []PoolConfig{{Name: "strict", Size: 1}, {Name: "ml", Size: 1, TimeoutProfile: TimeoutMLInference}},
	})
	workerhook.Set(nil)
	require.NoError(t, err)
	defer app.Stop(context.Background())

	within := func(d time.Duration, deadline time.Time) {
		t.Helper()
		assert.WithinDuration(t, time.Now().Add(d), deadline, 2*time.Second)
	}
	ctx := context.Background()
	req, _, dl, err := app.newRequest(ctx, "ok", nil, false, []ExecuteOption{WithPool("strict")})
	require.NoError(t, err)
	within(60*time.Second, dl)
	assert.Zero(t, req.GetQueueTimeoutMs(), "the pool's own queue timeout applies")
	_, _, dl, _ = app.newRequest(ctx, "ok", nil, true, []ExecuteOption{WithPool("strict")})
	within(300*time.Second, dl)
	_, _, dl, _ = app.newRequest(ctx, "ok", nil, false, []ExecuteOption{WithPool("ml")})
	within(900*time.Second, dl)

	req, _, dl, err = app.newRequest(ctx, "ok", nil, true, []ExecuteOption{WithPool("strict"), WithTimeoutProfile(TimeoutBatch)})
	require.NoError(t, err)
	within(unboundedStream, dl)
	assert.EqualValues(t, 300_000, req.GetQueueTimeoutMs())

	_, _, dl, _ = app.newRequest(ctx, "ok", nil, false, []ExecuteOption{WithPool("ml"), WithTimeoutProfile(TimeoutBatch), WithTimeout(time.Second)})
	within(time.Second, dl)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, _, dl, _ = app.newRequest(cctx, "ok", nil, false, []ExecuteOption{WithPool("ml"), WithTimeoutProfile(TimeoutBatch)})
	within(3*time.Second, dl)

	_, _, _, err = app.newRequest(ctx, "ok", nil, false, []ExecuteOption{WithPool("ml"), WithTimeoutProfile("nope")})
	assert.ErrorIs(t, public(err), ErrInvalidArgument)
	_, err = app.Execute(ctx, "ok", nil, WithPool("strict"), WithTimeoutProfile("nope"))
	assert.ErrorIs(t, err, ErrInvalidArgument)

	_, err = Start(ctx, Config{DataDir: t.TempDir(), Pools: []PoolConfig{{Name: "x", TimeoutProfile: "nope"}}})
	assert.ErrorIs(t, err, ErrInvalidArgument)
}
