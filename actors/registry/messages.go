package registry

import "github.com/asynkron/protoactor-go/actor"

// Register adds a worker to the registry, or replaces its entry when the same PID registers the same
// WorkerID again (a worker restarted in place). It is answered with *RegisterResult when it has a sender
// (ctx.Request, RequestFuture, Client.Register); sent with ctx.Send it gets no reply and a rejection is
// only logged.
type Register struct {
	Meta WorkerMeta
}

// RegisterResult answers Register. Err is nil on success, wraps ErrInvalidMeta for invalid metadata, and
// wraps ErrAlreadyRegistered when another live PID holds the WorkerID.
type RegisterResult struct {
	Err error
}

// Unregister removes a worker that is stopping cleanly. It is answered with *UnregisterResult when it has
// a sender.
type Unregister struct {
	WorkerID string
}

// UnregisterResult answers Unregister; Found tells whether the worker was registered.
type UnregisterResult struct {
	Found bool
}

// Lookup asks for the worker with WorkerID; answered with *LookupResult.
type Lookup struct {
	WorkerID string
}

// LookupPID asks for the worker whose actor is PID (compared by address and id, not by pointer);
// answered with *LookupResult. When one PID registered several worker ids, the first by id is returned.
type LookupPID struct {
	PID *actor.PID
}

// LookupOSPid asks for the worker whose Python process has OSPid; answered with *LookupResult. When two
// entries claim the same OS pid (a pid reused after a stale entry), the latest registration wins.
type LookupOSPid struct {
	OSPid int
}

// LookupResult answers Lookup, LookupPID and LookupOSPid.
type LookupResult struct {
	Meta  WorkerMeta
	Found bool
}

// ListPool asks for the workers of one pool; answered with *ListResult.
type ListPool struct {
	PoolName string
}

// ListAll asks for every registered worker; answered with *ListResult.
type ListAll struct{}

// ListResult answers ListPool and ListAll; Workers are sorted by WorkerID.
type ListResult struct {
	Workers []WorkerMeta
}
