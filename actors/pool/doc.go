// Package pool is the pool actor: it owns a named set of long-lived Python
// workers, hands each call to a ready worker with a free slot, and keeps a
// bounded FIFO queue of calls waiting for one. The scheduling and queue
// decisions live in Scheduler, a pure value; the actor (actor.go) only moves
// messages, timers and workers.
//
// Scheduler has no goroutines, no I/O and no clock: time is passed in, and
// every method returns the effects the caller must carry out (dispatches to
// send, requests to fail). It is not safe for concurrent use; the actor owns
// it and calls it from its mailbox only.
package pool
