package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// ErrInvalidMeta is returned for worker metadata that fails WorkerMeta.Validate.
var ErrInvalidMeta = errors.New("registry: invalid worker metadata")

// WorkerMeta is the canonical metadata of one worker.
type WorkerMeta struct {
	WorkerID       string     // unique among the registry's workers
	PID            *actor.PID // the worker actor
	PoolName       string     // the pool the worker serves
	PoolIdentifier string     // e.g. "<instance>/<pool>"; opaque here
	WorkerModule   string     // Go worker implementation name, e.g. "worker.GRPCWorker"
	Adapter        string     // Python adapter path, e.g. "myproj.adapters.Model"
	OSPid          int        // pid of the worker's Python process
	PGID           int        // process group of the worker's Python process
	StartedAt      time.Time  // when the Python process started
	Generation     uint64     // incremented by the worker on each start of its OS process
}

// Validate reports whether m can be registered: WorkerID, PID (with an id) and PoolName must be set, OSPid
// must be positive and PGID not negative. The error wraps ErrInvalidMeta and names every problem.
func (m WorkerMeta) Validate() error {
	var problems []string
	if m.WorkerID == "" {
		problems = append(problems, "worker id is empty")
	}
	if m.PID == nil || m.PID.Id == "" {
		problems = append(problems, "worker PID is missing")
	}
	if m.PoolName == "" {
		problems = append(problems, "pool name is empty")
	}
	if m.OSPid <= 0 {
		problems = append(problems, fmt.Sprintf("OS pid %d is not positive", m.OSPid))
	}
	if m.PGID < 0 {
		problems = append(problems, fmt.Sprintf("process group %d is negative", m.PGID))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidMeta, m.WorkerID, strings.Join(problems, "; "))
	}
	return nil
}
