// Package heartbeat is the heartbeat monitor of a worker: one small actor
// per worker, spawned by the worker actor as its child once the worker is
// ready, that pings the worker and reports when it stops answering.
//
// The monitor's mailbox is never blocked by a ping: a single goroutine
// pings (one ping in flight at a time, each with Config.Timeout), sends
// each result to the actor, and sleeps Config.Interval before the next.
// The actor counts misses; MaxMissed consecutive misses are a loss,
// reported once per loss through Options.OnEvent and, in dependent mode
// (the default), by sending Lost to Options.Notify so that the worker stops
// and is replaced. An independent monitor only reports, keeps pinging and
// reports recovery when the worker answers again.
package heartbeat
