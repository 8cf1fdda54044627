// Package workerhook lets this module's benchmarks start an App's pools on
// in-process workers (package fakeworker) to measure the host's own
// overhead. Nothing outside the module can set it; unset, workers are the
// real ones.
package workerhook

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	wk "github.com/snakepit-go/snakepit/actors/worker"
)

// Props makes a worker's props from its config.
type Props func(wk.Config) *actor.Props

var props atomic.Pointer[Props]

// Set makes Apps started from now on use p for their workers; Set(nil)
// restores the real workers.
func Set(p Props) {
	if p == nil {
		props.Store(nil)
		return
	}
	props.Store(&p)
}

// Get returns the props hook, or nil.
func Get() Props {
	if p := props.Load(); p != nil {
		return *p
	}
	return nil
}
