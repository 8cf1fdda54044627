package registry

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"
)

// pidKey names an actor the way protoactor compares PIDs: by address and id, never by pointer.
type pidKey struct{ address, id string }

func keyOf(pid *actor.PID) pidKey { return pidKey{address: pid.Address, id: pid.Id} }

// entry is one registered worker and the actor instance that registered it.
type entry struct {
	meta WorkerMeta
	// instance identifies the actor instance that ran behind meta.PID when the entry was registered (a local
	// *actor.ActorProcess). It is nil for a PID this node cannot see into (remote) or where no actor ran.
	instance any
}

// workerTable holds the registry's entries and its reverse indexes. It is plain data with no I/O: the actor
// asks the actor system which entries are still current and passes the answer in as a predicate.
type workerTable struct {
	byID    map[string]entry
	byPID   map[pidKey]map[string]struct{} // worker ids per PID
	byOSPid map[int]string                 // latest registration per OS pid
}

func newWorkerTable() *workerTable {
	return &workerTable{
		byID:    make(map[string]entry),
		byPID:   make(map[pidKey]map[string]struct{}),
		byOSPid: make(map[int]string),
	}
}

// register adds e, replacing an entry with the same WorkerID when that entry has the same PID or when
// live reports it stale. Otherwise it keeps the old entry and returns an error wrapping
// ErrAlreadyRegistered. orphan is the PID of a replaced entry that no longer has any entry (so the caller
// can stop watching it); it is nil when there is none.
func (t *workerTable) register(e entry, live func(entry) bool) (orphan *actor.PID, err error) {
	id := e.meta.WorkerID
	key := keyOf(e.meta.PID)
	if old, ok := t.byID[id]; ok {
		oldKey := keyOf(old.meta.PID)
		if oldKey != key && live(old) {
			return nil, fmt.Errorf("%w: worker %q is held by %s/%s", ErrAlreadyRegistered, id, oldKey.address, oldKey.id)
		}
		t.remove(id)
		if oldKey != key && !t.hasPID(oldKey) {
			orphan = old.meta.PID
		}
	}
	t.byID[id] = e
	ids := t.byPID[key]
	if ids == nil {
		ids = make(map[string]struct{})
		t.byPID[key] = ids
	}
	ids[id] = struct{}{}
	t.byOSPid[e.meta.OSPid] = id
	return orphan, nil
}

// remove deletes the entry of id and reports whether there was one.
func (t *workerTable) remove(id string) (entry, bool) {
	e, ok := t.byID[id]
	if !ok {
		return entry{}, false
	}
	delete(t.byID, id)
	key := keyOf(e.meta.PID)
	delete(t.byPID[key], id)
	if len(t.byPID[key]) == 0 {
		delete(t.byPID, key)
	}
	if t.byOSPid[e.meta.OSPid] == id {
		delete(t.byOSPid, e.meta.OSPid)
	}
	return e, true
}

// dropPID removes every entry of the PID named by key for which keep is false, and returns their ids.
func (t *workerTable) dropPID(key pidKey, keep func(entry) bool) []string {
	var dropped []string
	for id := range t.byPID[key] {
		if !keep(t.byID[id]) {
			dropped = append(dropped, id)
		}
	}
	slices.Sort(dropped)
	for _, id := range dropped {
		t.remove(id)
	}
	return dropped
}

// hasPID reports whether the PID named by key has any entry.
func (t *workerTable) hasPID(key pidKey) bool { return len(t.byPID[key]) > 0 }

// get returns the metadata of id.
func (t *workerTable) get(id string) (WorkerMeta, bool) {
	e, ok := t.byID[id]
	return e.meta, ok
}

// getPID returns the metadata of the PID named by key; of several entries, the one with the smallest id.
func (t *workerTable) getPID(key pidKey) (WorkerMeta, bool) {
	ids := t.byPID[key]
	if len(ids) == 0 {
		return WorkerMeta{}, false
	}
	first := ""
	for id := range ids {
		if first == "" || id < first {
			first = id
		}
	}
	return t.get(first)
}

// getOSPid returns the metadata of the latest registration with OS pid osPid.
func (t *workerTable) getOSPid(osPid int) (WorkerMeta, bool) {
	id, ok := t.byOSPid[osPid]
	if !ok {
		return WorkerMeta{}, false
	}
	return t.get(id)
}

// list returns the entries that match, sorted by WorkerID.
func (t *workerTable) list(match func(WorkerMeta) bool) []WorkerMeta {
	var out []WorkerMeta
	for _, e := range t.byID {
		if match(e.meta) {
			out = append(out, e.meta)
		}
	}
	slices.SortFunc(out, func(a, b WorkerMeta) int { return cmp.Compare(a.WorkerID, b.WorkerID) })
	return out
}

// pids returns one PID per PID that has entries.
func (t *workerTable) pids() []*actor.PID {
	out := make([]*actor.PID, 0, len(t.byPID))
	for _, ids := range t.byPID {
		for id := range ids {
			out = append(out, t.byID[id].meta.PID)
			break
		}
	}
	return out
}
