package snakepit

import (
	"context"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
)

// Events published on the App's actor system's EventStream
// (App.System().EventStream.Subscribe): a worker recycled, a worker's
// process crashed, a pool's crash breaker changed state, and the heartbeat
// monitors' events.
type (
	WorkerRecycled = pool.WorkerRecycled
	WorkerCrashed  = pool.WorkerCrashed
	CircuitChanged = pool.CircuitChanged
)

// RecycleReason says why a worker was recycled.
type RecycleReason = lifecycle.Reason

// RecycleWorker replaces a worker gracefully: it takes no new calls,
// finishes its running ones (up to the pool's DrainTimeout) and a
// replacement starts from the same configuration. It returns once the
// recycle is scheduled; WorkerRecycled is published when the worker stops.
func (a *App) RecycleWorker(ctx context.Context, poolName, workerID string) error {
	r, err := askPool[*pool.RecycleResult](ctx, a, poolName, &pool.Recycle{WorkerID: workerID, Reason: lifecycle.ReasonManual})
	if err != nil {
		return err
	}
	return r.Err
}

// ResizePool changes a pool's number of workers at run time: new workers
// start at once; removed ones (the highest-numbered) finish their calls
// first and are not replaced.
func (a *App) ResizePool(ctx context.Context, poolName string, size int) error {
	r, err := askPool[*pool.ResizeResult](ctx, a, poolName, &pool.Resize{Size: size})
	if err != nil {
		return err
	}
	return r.Err
}
