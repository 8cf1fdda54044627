//go:build unix

package tests

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

const asyncAdapter = "snakepit_bridge.adapters.concurrent.AsyncShowcaseAdapter"

// holdAtOnce runs n hold calls at once on the pool and returns the peak
// overlap the (only) worker saw.
func holdAtOnce(t *testing.T, app *snakepit.App, pool string, n int) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := app.Execute(t.Context(), "hold", map[string]any{"ms": 1000}, snakepit.WithPool(pool))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	res, err := app.Execute(t.Context(), "peak", nil, snakepit.WithPool(pool))
	require.NoError(t, err)
	var peak int
	require.NoError(t, res.Decode(&peak))
	return peak
}

func TestAnAsyncAdapterRunsAsManyCallsAsItDeclares(t *testing.T) {
	app := startApp(t, snakepit.Config{InstanceName: uniqueInstance("async"), Pools: []snakepit.PoolConfig{
		{Name: "as", Size: 1, Adapter: asyncAdapter},
		{Name: "capped", Size: 1, Adapter: asyncAdapter, MaxCallsPerWorker: 3},
	}})
	assert.Equal(t, 8, holdAtOnce(t, app, "as", 8), "8 calls overlapped in the one worker (it declares 16)")
	assert.Equal(t, 3, holdAtOnce(t, app, "capped", 8), "MaxCallsPerWorker caps the worker's slots")
	st, err := app.Stats(t.Context(), "as")
	require.NoError(t, err)
	assert.Equal(t, uint64(9), st.Completed, "every call answered once (8 holds and the peak)")
}
