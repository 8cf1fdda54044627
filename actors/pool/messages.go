package pool

import "time"

// Callers talk to a pool with the protobuf messages of package poolpb
// (Execute, Cancel, GetStats, AwaitReady, ListWorkers), so a pool can be
// used from another node. The messages below are local: they pass between
// the pool and its own timer.

// tick wakes the pool when the earliest queue deadline or await deadline
// has passed.
type tick struct{ at time.Time }
