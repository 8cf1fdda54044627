// Package registry holds the node's registries of workers and their OS processes.
//
// The worker registry (Props, Client) is an actor that keeps the canonical metadata of every running
// worker: its id, actor PID, pool, adapter, OS pid and process group, start time and generation. A worker
// registers exactly once per start of its OS process, from its own start path, with a Register message;
// that registration is the one place its metadata is set. The registry watches each registered PID, so an
// entry disappears when its worker actor stops or its node goes away, and a worker restarted in place
// (same PID) replaces its entry by registering again. Entries can be looked up by worker id, by PID and by
// OS pid, and listed per pool.
//
// The registry's messages are plain Go values: they travel between actors of one actor system, not
// between nodes. Each node runs its own registry.
package registry
