package pool

import "time"

// Callers talk to a pool with the protobuf messages of package poolpb
// (Execute, Cancel, GetStats, AwaitReady, ListWorkers), so a pool can be
// used from another node. The messages below are local: they pass between
// the pool and its own timer.

// tick wakes the pool when the earliest queue deadline or await deadline
// has passed.
type tick struct{ at time.Time }

// EndSession tells the pool a session ended (deleted or expired): its
// worker binding is dropped, and its strict requests still queued may then
// run on any worker. Local only; not answered.
type EndSession struct{ SessionID string }
