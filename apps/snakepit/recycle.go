package snakepit

import (
	"context"

	"github.com/snakepit-go/snakepit/actors/lifecycle"
	"github.com/snakepit-go/snakepit/actors/pool"
)

// RecycleWorker replaces a worker gracefully: it takes no new calls,
// finishes its running ones (up to the pool's DrainTimeout) and a
// replacement starts from the same configuration. It returns once the
// recycle is scheduled; WorkerRecycled is published when the worker stops.
func (a *App) RecycleWorker(ctx context.Context, poolName, workerID string) (err error) {
	defer func() { err = public(err) }()
	r, err := askPool[*pool.RecycleResult](ctx, a, poolName, &pool.Recycle{WorkerID: workerID, Reason: lifecycle.Reason(RecycleManual)})
	if err != nil {
		return err
	}
	return r.Err
}

// ResizePool changes a pool's number of workers at run time: new workers
// start at once; removed ones (the highest-numbered) finish their calls
// first and are not replaced.
func (a *App) ResizePool(ctx context.Context, poolName string, size int) (err error) {
	defer func() { err = public(err) }()
	r, err := askPool[*pool.ResizeResult](ctx, a, poolName, &pool.Resize{Size: size})
	if err != nil {
		return err
	}
	return r.Err
}
