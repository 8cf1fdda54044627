package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snakepit-go/snakepit/internal/auth"
	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/internal/shm"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
	"github.com/snakepit-go/snakepit/proto/controlpb"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// ErrClosed is returned by Executor.Submit once the worker has stopped taking
// calls; the pool then routes the call elsewhere.
var ErrClosed = errors.New("worker: executor closed")

// Call is one request handed to a worker by its pool.
type Call struct {
	// Key is the pool's id of the request (echoed in CallDone).
	Key uint64
	Req *poolpb.Execute
	// ReplyTo receives the terminal Result, or the Chunks of a stream.
	ReplyTo *actor.PID
	// Local, instead of ReplyTo, is the reply channel of a unary call's
	// caller in the host's own process: it runs the call itself (Grant).
	Local Local
	// Deadline bounds the call (zero: Req's deadline, if any).
	Deadline time.Time
	// Retryable: when the worker dies during this (unary) call, do not
	// answer it; the CallDone says Unanswered and the pool runs it again on
	// another worker. Set by the pool for an idempotent call's first try.
	Retryable bool
}

// Responsive tells the pool whether a worker answers its liveness probe:
// a worker that does not (its event loop is blocked, say) gets no new call
// until it answers again or is replaced.
type Responsive struct {
	WorkerID   string
	Generation uint64
	OK         bool
	Reason     string
}

// CallDone tells the pool a call has been answered and its slot is free.
type CallDone struct {
	WorkerID   string
	Generation uint64
	Key        uint64
	// Err is the error the caller got (nil on success).
	Err *sperr.Error
	// Unanswered: the call was Retryable and failed with worker_exit; the
	// caller got nothing yet, the pool must answer or retry it. ReplyTo and
	// RequestID let whoever gets it answer the caller (a pool that no longer
	// knows the call: restarted or stopped).
	Unanswered bool
	ReplyTo    *actor.PID
	Local      Local
	RequestID  string
}

// Caller is where the call's answer goes: its Local, else its ReplyTo, else
// nil (nowhere).
func (d *CallDone) Caller() any {
	switch {
	case d.Local != nil:
		return d.Local
	case d.ReplyTo != nil:
		return d.ReplyTo
	}
	return nil
}

// Local is the reply channel of a caller in the pool's own process (the
// App's Execute). The pool and the executor deliver its replies there
// instead of sending them to a PID, and the pool grants it its dispatched
// call (Grant) to run on the caller's own goroutine (Grant.Run),
// instead of handing the call to a worker goroutine and the reply back:
// two hand-offs per call fewer. A Local holds at most one grant and one
// terminal reply at a time (a grant is run before the pool can issue the
// next, for a retry); make it with LocalBuffer room.
type Local chan any

// LocalBuffer is the room a Local is made with: more than it ever holds,
// so that no sender ever waits on it.
const LocalBuffer = 4

// Grant is a local caller's dispatched call (Executor.Reserve): its slot
// is taken and the call registered with Exec, so a cancel or the worker's
// death reaches it. The caller must Run it, at once.
type Grant struct {
	Exec *Executor
	Key  uint64
	st   *callState
	call Call
}

// Run runs the granted call on the calling goroutine; its terminal reply
// is in the caller's Local when it returns (unless the call was handed back
// to the pool for a retry). A caller that left (cancelled, past its
// deadline) is answered at once: waiting for the tool to stop happens on
// another goroutine.
func (g *Grant) Run() {
	defer g.Exec.wg.Done()
	g.Exec.run(g.st, g.call)
}

// Sender delivers a message to a PID; in production it is the actor
// system's root context.
type Sender interface {
	Send(pid *actor.PID, msg any)
}

// Executor is the non-blocking request queue inside a worker: every call
// runs in its own goroutine against the worker's gRPC client, so the worker
// actor's mailbox stays free. The goroutine of a call is the only sender of
// that call's replies, which is what makes "exactly one terminal reply" hold
// when the process dies, the caller cancels, or the worker stops.
//
// An Executor belongs to one generation of a worker (one OS process); the
// worker closes it when that process ends.
type Executor struct {
	workerID   string
	pool       string
	generation uint64
	device     string
	shm        *shm.Dir
	client     bridgepb.BridgeServiceClient
	sender     Sender
	poolPID    *actor.PID
	// exit returns the process's exit once it is known within the wait, so a
	// call that failed because the process died reports worker_exit.
	exit     func(wait time.Duration) (ExitInfo, bool)
	exitWait time.Duration

	// execTTL bounds one call; past it the call is answered with
	// deadline_exceeded and kill is asked to end the (hung) process.
	execTTL time.Duration
	kill    func(reason string)
	// control probes the worker after a call's caller left; cancelGrace is
	// how long the tool may run on before kill.
	control     controlpb.WorkerControlClient
	cancelGrace time.Duration

	mu     sync.Mutex
	calls  map[uint64]*callState
	closed bool
	// noRetry: the pool is stopping; calls are no longer handed back.
	noRetry bool
	wg      sync.WaitGroup // the call goroutines
	// idle hands a call to a call goroutine that finished its last one and
	// waits for more (reusing goroutines saves their start and stack growth
	// per call); closing ends the waiting ones.
	idle    chan queued
	closing chan struct{}
}

// queued is a call with its context, handed to a call goroutine.
type queued struct {
	st *callState
	c  Call
}

// callState is one running call's cancel and execution-TTL timer.
type callState struct {
	// ctx is the call's context; stop cancels it, cause says why (see
	// cancel).
	ctx   context.Context
	stop  context.CancelFunc
	cause atomic.Pointer[sperr.Error]
	ttl   *time.Timer
	// killed: the execution TTL fired and the process is being killed.
	killed atomic.Bool
	// credit is a flow-controlled stream's window left (chunks it may send
	// before the caller's next StreamCredit); credited wakes a sender
	// waiting for it. Both unused unless Execute.stream_window is set.
	credit   atomic.Int64
	credited chan struct{}
}

// cancel cancels the call with cause, which its answer gives when it is
// the first thing to end the call's context (not its deadline, not a nil
// cause from the call's own end): context.WithCancelCause's rule, kept
// beside one context instead of a second context under the deadline's.
func (st *callState) cancel(cause *sperr.Error) {
	if cause != nil && st.ctx.Err() == nil {
		st.cause.CompareAndSwap(nil, cause)
	}
	st.stop()
}

// ExecutorConfig gathers what an Executor needs. The worker actor builds
// one per generation; tests and benchmarks build one on a fake client.
type ExecutorConfig struct {
	WorkerID, Pool string
	Generation     uint64
	// Client is the worker's gRPC client (any BridgeServiceClient).
	Client bridgepb.BridgeServiceClient
	// Sender delivers replies and CallDone notices.
	Sender Sender
	// PoolPID receives a CallDone per finished call (optional).
	PoolPID *actor.PID
	// Exit returns the process's exit status if it is known within the
	// wait (optional: without it a broken connection is a grpc_error).
	Exit func(wait time.Duration) (ExitInfo, bool)
	// ExitWait bounds that wait (default 2s).
	ExitWait time.Duration
	// ExecutionTTL bounds one call (0 = none): a call running past it is
	// answered with deadline_exceeded and Kill is called, because a tool that
	// ignores cancellation (a sync Python function) would hold its worker
	// for ever.
	ExecutionTTL time.Duration
	Kill         func(reason string)
	// Control is the worker's WorkerControl client (optional). With it, a
	// call whose caller left (cancel, deadline) keeps its slot until the
	// worker says the tool has returned; a tool still running after
	// CancelGrace (default 3s), or a worker that does not answer, gets
	// Kill. Without it the slot is freed at once.
	Control     controlpb.WorkerControlClient
	CancelGrace time.Duration
	// Device, when set, goes with every call as the request metadata
	// DeviceKey (the device the worker was pinned to, "cuda:0").
	Device string
	// Shm, when set, carries binary parameters and results of at least its
	// threshold through shared memory (see package shm).
	Shm *shm.Dir
}

// NewExecutor returns an open executor.
func NewExecutor(c ExecutorConfig) *Executor {
	if c.Exit == nil {
		c.Exit = func(time.Duration) (ExitInfo, bool) { return ExitInfo{}, false }
	}
	if c.ExitWait <= 0 {
		c.ExitWait = DefaultExitWait
	}
	if c.CancelGrace <= 0 {
		c.CancelGrace = DefaultCancelGrace
	}
	return &Executor{
		workerID: c.WorkerID, pool: c.Pool, generation: c.Generation, client: c.Client, device: c.Device, shm: c.Shm,
		sender: c.Sender, poolPID: c.PoolPID, exit: c.Exit, exitWait: c.ExitWait,
		execTTL: c.ExecutionTTL, kill: c.Kill, control: c.Control, cancelGrace: c.CancelGrace,
		calls: map[uint64]*callState{}, idle: make(chan queued), closing: make(chan struct{}),
	}
}

// WorkerID names the worker the executor belongs to.
func (x *Executor) WorkerID() string { return x.workerID }

// Generation is the worker start this executor belongs to.
func (x *Executor) Generation() uint64 { return x.generation }

// InFlight is the number of calls running.
func (x *Executor) InFlight() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.calls)
}

// Submit starts c in its own goroutine. It fails with ErrClosed (and sends
// nothing) once the executor is closed; otherwise c gets exactly one
// terminal reply and the pool one CallDone.
func (x *Executor) Submit(c Call) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	st, err := x.register(c)
	if err != nil {
		return err
	}
	select {
	case x.idle <- queued{st, c}: // a waiting call goroutine takes it
	default:
		x.wg.Add(1)
		go x.loop(queued{st, c})
	}
	return nil
}

// Reserve registers unary call c (c.Local set) for its caller to run
// (Grant.Run): from now on a cancel or Close reaches it, and Wait waits for
// it. It fails with ErrClosed once the executor is closed.
func (x *Executor) Reserve(c Call) (*Grant, error) {
	if c.Local == nil || c.Req.GetStream() {
		return nil, errors.New("worker: only a local unary call can be reserved")
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	st, err := x.register(c)
	if err != nil {
		return nil, err
	}
	x.wg.Add(1)
	return &Grant{Exec: x, Key: c.Key, st: st, call: c}, nil
}

// register takes call c, with its context and execution TTL; x.mu is held.
func (x *Executor) register(c Call) (*callState, error) {
	if x.closed {
		return nil, ErrClosed
	}
	if _, dup := x.calls[c.Key]; dup {
		return nil, errors.New("worker: duplicate call key " + strconv.FormatUint(c.Key, 10))
	}
	dl := c.Deadline
	if dl.IsZero() && c.Req.GetDeadlineUnixNano() > 0 {
		dl = time.Unix(0, c.Req.GetDeadlineUnixNano())
	}
	st := &callState{}
	if w := c.Req.GetStreamWindow(); w > 0 && c.Req.GetStream() {
		st.credit.Store(int64(w))
		st.credited = make(chan struct{}, 1)
	}
	if dl.IsZero() {
		st.ctx, st.stop = context.WithCancel(context.Background())
	} else {
		st.ctx, st.stop = context.WithDeadline(context.Background(), dl)
	}
	if x.execTTL > 0 {
		ttl, tool, key, cid := x.execTTL, c.Req.GetTool(), c.Key, c.Req.GetCorrelationId()
		st.ttl = time.AfterFunc(ttl, func() {
			x.mu.Lock()
			cur, running := x.calls[key]
			x.mu.Unlock()
			if !running || cur != st {
				return // it finished just now: nothing is hung
			}
			st.killed.Store(true)
			st.cancel(sperr.New(sperr.CodeDeadlineExceeded, "call to %s ran past the execution TTL (%s); its worker is killed and replaced", tool, ttl))
			if x.kill != nil {
				x.kill(fmt.Sprintf("a call to %s (correlation id %s) ran past the execution TTL (%s)", tool, cid, ttl))
			}
		})
	}
	x.calls[c.Key] = st
	return st, nil
}

// loop runs calls: the first, then whatever Submit hands it while it
// waits, until the executor closes. There are never more loops than calls
// that ran at once (the pool submits at most the worker's capacity).
func (x *Executor) loop(q queued) {
	defer x.wg.Done()
	for {
		x.run(q.st, q.c)
		select {
		case q = <-x.idle:
		case <-x.closing:
			return
		}
	}
}

// Cancel cancels a running call; it is answered with a cancelled error.
func (x *Executor) Cancel(key uint64) bool {
	x.mu.Lock()
	st, ok := x.calls[key]
	x.mu.Unlock()
	if ok {
		st.cancel(sperr.New(sperr.CodeCancelled, "call cancelled by the caller"))
	}
	return ok
}

// Credit lets running stream key send chunks more chunks (the caller's
// StreamCredit); it reports whether the call is running here.
func (x *Executor) Credit(key uint64, chunks uint32) bool {
	x.mu.Lock()
	st, ok := x.calls[key]
	x.mu.Unlock()
	if !ok || st.credited == nil {
		return ok
	}
	st.credit.Add(int64(chunks))
	select {
	case st.credited <- struct{}{}:
	default: // a wake-up is pending already
	}
	return true
}

// awaitCredit takes one chunk of st's window, waiting for the caller's
// credit while there is none; false when the call ended first.
func (st *callState) awaitCredit(ctx context.Context) bool {
	if st.credited == nil {
		return true
	}
	for st.credit.Load() <= 0 {
		select {
		case <-st.credited:
		case <-ctx.Done():
			return false
		}
	}
	st.credit.Add(-1)
	return true
}

// Close stops taking calls and cancels every running one with cause (each is
// answered with that error). It does not wait; Wait does.
func (x *Executor) Close(cause *sperr.Error) {
	x.mu.Lock()
	if !x.closed {
		close(x.closing)
	}
	x.closed = true
	calls := make([]*callState, 0, len(x.calls))
	for _, st := range x.calls {
		calls = append(calls, st)
	}
	x.mu.Unlock()
	for _, st := range calls {
		st.cancel(cause)
	}
}

// Wait waits up to d for every call goroutine to end; it reports whether
// they all did.
func (x *Executor) Wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { x.wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// finish forgets call c and tells the pool. A call to hand back
// (unanswered) is handed back only while the pool takes retries; it reports
// whether it was, else the caller must be answered here.
func (x *Executor) finish(c Call, err *sperr.Error, unanswered bool) (handedBack bool) {
	key := c.Key
	x.mu.Lock()
	defer x.mu.Unlock()
	if st, ok := x.calls[key]; ok {
		if st.ttl != nil {
			st.ttl.Stop()
		}
		st.cancel(nil)
		delete(x.calls, key)
	}
	if unanswered && (x.noRetry || x.poolPID == nil) {
		unanswered = false
	}
	if x.poolPID != nil {
		done := &CallDone{WorkerID: x.workerID, Generation: x.generation, Key: key, Err: err, Unanswered: unanswered}
		if unanswered {
			done.ReplyTo, done.Local, done.RequestID = c.ReplyTo, c.Local, c.Req.GetRequestId()
		}
		// Sent under x.mu, so it is in the pool's mailbox before a
		// StopRetries (called by the stopping pool) returns.
		x.sender.Send(x.poolPID, done)
	}
	return unanswered
}

// StopRetries makes the executor answer the calls it would hand back to the
// pool for a retry: the stopping pool calls it, so that no such call is
// handed to a pool that is gone.
func (x *Executor) StopRetries() {
	x.mu.Lock()
	x.noRetry = true
	x.mu.Unlock()
}

// run runs call c under its context from register (which carries the
// call's deadline).
func (x *Executor) run(st *callState, c Call) {
	ctx := st.ctx
	var (
		terminal   any
		err        *sperr.Error
		unanswered bool
	)
	if c.Req.GetStream() {
		terminal, err = x.runStream(ctx, st, c)
	} else {
		terminal, err, unanswered = x.runUnary(ctx, st, c)
	}
	if x.callerLeft(err, st) {
		// The caller is answered now; the slot stays taken until the tool
		// has stopped, or the worker is killed for not stopping.
		if terminal != nil {
			x.reply(c, terminal)
			terminal = nil
		}
		if c.Local != nil {
			// This is the caller's own goroutine: it must not wait for that.
			x.wg.Add(1)
			go func() {
				defer x.wg.Done()
				x.settle(c)
				x.complete(c, err, unanswered, nil)
			}()
			return
		}
		x.settle(c)
	}
	x.complete(c, err, unanswered, terminal)
}

// complete frees call c's slot and sends its terminal reply, if any.
func (x *Executor) complete(c Call, err *sperr.Error, unanswered bool, terminal any) {
	// CallDone first, then the terminal reply: by the time the caller sees
	// its answer, the pool has the worker's slot back, so the caller's next
	// call (a strict session's, say) never finds its worker still busy.
	if handedBack := x.finish(c, err, unanswered); unanswered && !handedBack {
		// Nobody will run it again: its worker's error is its answer.
		terminal = &poolpb.Result{RequestId: c.Req.GetRequestId(), WorkerId: x.workerID, Error: sperr.ToProto(err)}
	}
	if terminal != nil {
		x.reply(c, terminal)
	}
}

// reply delivers msg to call c's caller.
func (x *Executor) reply(c Call, msg any) {
	if c.Local != nil {
		c.Local <- msg // never waits: see LocalBuffer
		return
	}
	x.sender.Send(c.ReplyTo, msg)
}

// lent are the segments a call borrowed: its large binary parameters', and
// the one offered for its result.
type lent struct {
	params  []shm.Segment
	offered shm.Segment
}

// toShm moves req's binary parameters of at least the threshold into
// shared-memory segments, and tells the worker it may answer a large binary
// result by segment: into the one offered (when there are large parameters
// or idle segments to lend), else one of its own. A parameter that cannot be
// written (a full /dev/shm) stays inline.
func (x *Executor) toShm(req *bridgepb.ExecuteToolRequest) (l lent) {
	if x.shm == nil || req.Stream {
		return l
	}
	largest := 0
	var moved map[string][]byte
	for k, v := range req.BinaryParameters {
		if len(v) < x.shm.Threshold() {
			continue
		}
		seg, ref, err := x.shm.Write(v)
		if err != nil {
			continue
		}
		if moved == nil {
			moved = maps.Clone(req.BinaryParameters) // the caller's map is not ours to change
		}
		moved[k] = nil
		req.Metadata[shm.ParamKeyPrefix+k] = ref
		l.params = append(l.params, seg)
		largest = max(largest, len(v))
	}
	if moved != nil {
		req.BinaryParameters = moved
	}
	req.Metadata[shm.AcceptKey] = shm.AcceptOwn
	if largest > 0 || x.shm.Idle() > 0 {
		if seg, err := x.shm.Get(max(largest, x.shm.Threshold())); err == nil {
			l.offered = seg
			req.Metadata[shm.AcceptKey] = shm.Ref(seg.Name, seg.Cap)
		}
	}
	return l
}

// giveBack returns what a call borrowed that its result did not keep. When
// the worker did not answer (a cancel, a deadline, its death), its handler
// may still read the parameters or write the result segment: those
// segments are removed instead, never lent to another call.
func (x *Executor) giveBack(l lent, resultTaken, answered bool) {
	back := x.shm.Put
	if !answered {
		back = x.shm.Drop
	}
	for _, s := range l.params {
		back(s)
	}
	if !resultTaken {
		back(l.offered)
	}
}

// CallIDKey is the request metadata naming a call to the worker (its
// WorkerControl.Status lists running calls by it).
const CallIDKey = "snakepit_call_id"

// DeviceKey is the request metadata naming the device a pinned worker
// computes on ("cuda:0"); snakepit_bridge.hardware.device() reads it.
const DeviceKey = "snakepit_device"

// callID names call key of this executor's generation
// ("<worker>-<generation>-<key>"), in one allocation.
func (x *Executor) callID(key uint64) string {
	var buf [96]byte
	b := append(buf[:0], x.workerID...)
	b = append(b, '-')
	b = strconv.AppendUint(b, x.generation, 10)
	b = append(b, '-')
	return string(strconv.AppendUint(b, key, 10))
}

// request builds the gRPC request; a bad argument object is an error.
func (x *Executor) request(c Call) (*bridgepb.ExecuteToolRequest, *sperr.Error) {
	// The Go App sends its arguments in wire form already; other callers
	// (actors, other nodes) may send a JSON object instead.
	params := c.Req.GetParameters()
	if params == nil {
		var err error
		if params, err = jsonany.PackArgs(c.Req.GetArgsJson()); err != nil {
			return nil, x.tag(sperr.Wrap(sperr.CodeInvalidArgument, err, "%v", err))
		}
	}
	md := make(map[string]string, len(c.Req.GetMetadata())+2)
	for k, v := range c.Req.GetMetadata() {
		if !strings.HasPrefix(k, "snakepit_") { // the host's own keys
			md[k] = v
		}
	}
	if id := c.Req.GetCorrelationId(); id != "" {
		md["correlation_id"] = id
	}
	md[CallIDKey] = x.callID(c.Key)
	if x.device != "" {
		md[DeviceKey] = x.device
	}

	return &bridgepb.ExecuteToolRequest{
		SessionId:        c.Req.GetSessionId(),
		ToolName:         c.Req.GetTool(),
		Parameters:       params,
		Metadata:         md,
		Stream:           c.Req.GetStream(),
		BinaryParameters: c.Req.GetBinaryParameters(),
	}, nil
}

func (x *Executor) tag(e *sperr.Error) *sperr.Error {
	if e.WorkerID == "" {
		e.WorkerID = x.workerID
	}
	if e.Pool == "" {
		e.Pool = x.pool
	}
	return e
}

// callError explains a failed gRPC call: the cause we cancelled it with, the
// process's exit when it died, or the gRPC status.
func (x *Executor) callError(st *callState, err error) *sperr.Error {
	if cause := st.cause.Load(); cause != nil {
		// One cause is shared by every call it cancelled: answer with a copy.
		c := *cause
		c.Details = maps.Clone(cause.Details)
		return x.tag(&c)
	}
	if st, ok := status.FromError(err); ok {
		// A broken connection (Unavailable, or an Internal that is not a
		// tool's structured error) may mean the process died: wait a little
		// for its exit status. A tool's own error needs no wait.
		wait := time.Duration(0)
		if st.Code() == codes.Unavailable || (st.Code() == codes.Internal && !json.Valid([]byte(st.Message()))) {
			wait = x.exitWait
		}
		if info, ok := x.exit(wait); ok {
			e := info.Error(x.pool, x.workerID)
			e.GRPCCode = st.Code()
			return e
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
		e := sperr.Wrap(sperr.CodeDeadlineExceeded, err, "deadline exceeded during the call")
		e.GRPCCode = codes.DeadlineExceeded
		return x.tag(e)
	}
	return x.tag(sperr.FromGRPC(err))
}

// CorrelationHeader is the gRPC metadata key that carries a call's
// correlation id to its worker (as the request metadata's correlation_id
// does), so gRPC interceptors and proxies see it too; upstream's name.
const CorrelationHeader = "x-snakepit-correlation-id"

// correlated is what a call's context carries for callCredentials: the
// request (a pointer, so storing it costs no allocation beyond the context).
type correlated interface{ GetCorrelationId() string }

type correlationKey struct{}

// withCorrelation is ctx carrying the call's request, whose correlation id
// the connection's credentials send as CorrelationHeader: one context
// allocation, where outgoing gRPC metadata would take four.
func withCorrelation(ctx context.Context, req correlated) context.Context {
	if req.GetCorrelationId() == "" {
		return ctx
	}
	return context.WithValue(ctx, correlationKey{}, req)
}

// callCredentials sends the worker's server secret on every call and the
// correlation id of calls made with withCorrelation.
type callCredentials string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (s callCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	md := map[string]string{auth.Header: string(s)}
	if c, ok := ctx.Value(correlationKey{}).(correlated); ok {
		md[CorrelationHeader] = c.GetCorrelationId()
	}
	return md, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (callCredentials) RequireTransportSecurity() bool { return false }

// runUnary runs one unary call and returns its terminal reply — none for a
// Retryable call the worker died under (unanswered is then true: the pool
// decides).
func (x *Executor) runUnary(ctx context.Context, st *callState, c Call) (terminal any, _ *sperr.Error, unanswered bool) {
	res := &poolpb.Result{RequestId: c.Req.GetRequestId(), WorkerId: x.workerID}
	fail := func(e *sperr.Error) (any, *sperr.Error, bool) {
		if c.Retryable && e.Code == sperr.CodeWorkerExit {
			return nil, e, true
		}
		res.Error = sperr.ToProto(e)
		return res, e, false
	}
	req, e := x.request(c)
	if e != nil {
		return fail(e)
	}
	borrowed, taken, answered := x.toShm(req), false, false
	if x.shm != nil {
		defer func() { x.giveBack(borrowed, taken, answered) }()
	}
	resp, err := x.client.ExecuteTool(withCorrelation(ctx, c.Req), req)
	answered = err == nil
	if err != nil {
		return fail(x.callError(st, err))
	}
	if !resp.GetSuccess() {
		return fail(x.tag(sperr.FromPython(resp.GetErrorMessage())))
	}
	res.Metadata = resp.GetMetadata()
	switch ref := res.Metadata[shm.ResultKey]; {
	case ref != "" && x.shm != nil:
		// The bytes are in a segment the worker wrote: a view for a caller
		// in this process that asked for one (it releases it), else a copy.
		view := c.Local != nil && c.Req.GetMetadata()[shm.ZeroCopyKey] == "1"
		b, err := x.shm.Take(ref, borrowed.offered, x.workerID, view)
		taken = true // Take keeps or gives back the offered segment, whatever it returns
		if err != nil {
			return fail(x.tag(sperr.Wrap(sperr.CodeInternal, err, "shared-memory result: %v", err)))
		}
		res.IsBinary, res.BinaryResult = true, b
		res.Metadata = maps.Clone(res.Metadata)
		delete(res.Metadata, shm.ResultKey)
		if info := resp.GetResult().GetValue(); len(info) > 0 {
			res.Metadata["binary_info"] = string(info)
		}
	case resp.GetBinaryResult() != nil || jsonany.IsBinary(resp.GetResult()):
		// The bytes are binary_result (proto3 turns empty bytes into nil);
		// the Any beside them describes the bytes, it is not the data.
		res.IsBinary = true
		res.BinaryResult = resp.GetBinaryResult()
		if res.BinaryResult == nil {
			res.BinaryResult = []byte{}
		}
		if info := resp.GetResult().GetValue(); len(info) > 0 {
			res.Metadata = maps.Clone(res.Metadata)
			if res.Metadata == nil {
				res.Metadata = map[string]string{}
			}
			res.Metadata["binary_info"] = string(info)
		}
	default:
		raw, err := jsonany.Unpack(resp.GetResult())
		if err != nil {
			return fail(x.tag(sperr.Wrap(sperr.CodeInternal, err, "result: %v", err)))
		}
		res.ResultJson = raw
	}
	return res, nil, false
}

// runStream relays a stream's chunks and returns its final one.
func (x *Executor) runStream(ctx context.Context, st *callState, c Call) (terminal any, _ *sperr.Error) {
	final := func(e *sperr.Error) (any, *sperr.Error) {
		return &poolpb.Chunk{
			RequestId: c.Req.GetRequestId(), IsFinal: true, Error: sperr.ToProto(e), WorkerId: x.workerID,
		}, e
	}
	req, e := x.request(c)
	if e != nil {
		return final(e)
	}
	stream, err := x.client.ExecuteStreamingTool(withCorrelation(ctx, c.Req), req)
	if err != nil {
		return final(x.callError(st, err))
	}
	for {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The server ended without a final chunk: close the stream for the caller.
			return final(nil)
		}
		if err != nil {
			return final(x.callError(st, err))
		}
		msg := &poolpb.Chunk{
			RequestId: c.Req.GetRequestId(), ChunkId: ch.GetChunkId(), Data: ch.GetData(),
			IsFinal: ch.GetIsFinal(), Metadata: ch.GetMetadata(), WorkerId: x.workerID,
		}
		if ctx.Err() != nil { // cancelled while the chunk was in flight: say why instead
			return final(x.callError(st, ctx.Err()))
		}
		if ch.GetIsFinal() {
			return msg, nil
		}
		// A flow-controlled stream waits here for its caller's credit, and
		// meanwhile reads no more from the generator: gRPC's own flow
		// control then holds the Python side back.
		if !st.awaitCredit(ctx) {
			return final(x.callError(st, ctx.Err()))
		}
		x.reply(c, msg)
	}
}
