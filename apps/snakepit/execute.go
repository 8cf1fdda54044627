package snakepit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"maps"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/snakepit-go/snakepit/actors/pool"
	"github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/internal/shm"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// streamBuffer is how many chunks may wait for a slow stream reader before
// the worker's stream goroutine (and so the Python generator) is held back.
const streamBuffer = 16

// streamWindow is a stream's credit window when its pool is on another node
// (poolpb.Execute.stream_window): the chunks in flight stay below the
// inbox's buffer (room for the final chunk and a dead-letter notice), so a
// remote stream never blocks protoactor's endpoint reader, which delivers
// every message from that node.
const streamWindow = streamBuffer - 2

// callOptions gathers ExecuteOption settings.
type callOptions struct {
	pool        string
	session     string
	affinity    poolpb.Affinity
	timeout     time.Duration
	binary      map[string][]byte
	correlation string
	idempotent  bool
	metadata    map[string]string
	profile     TimeoutProfile
	zeroCopy    bool
}

// ExecuteOption adjusts one call.
type ExecuteOption func(*callOptions)

// WithPool runs the call on the named pool (default: DefaultPool, or the
// only pool).
func WithPool(name string) ExecuteOption { return func(o *callOptions) { o.pool = name } }

// WithSession runs the call in a session (affinity to the session's worker).
func WithSession(id string) ExecuteOption { return func(o *callOptions) { o.session = id } }

// WithAffinity overrides the pool's session affinity for this call.
func WithAffinity(a Affinity) ExecuteOption {
	return func(o *callOptions) { o.affinity = poolpb.Affinity(a + 1) }
}

// WithTimeout bounds the call (queueing and execution) when ctx has no
// earlier deadline.
func WithTimeout(d time.Duration) ExecuteOption { return func(o *callOptions) { o.timeout = d } }

// WithBinary adds binary parameters, forwarded untouched to the worker.
func WithBinary(params map[string][]byte) ExecuteOption {
	return func(o *callOptions) { o.binary = params }
}

// WithZeroCopy asks for a binary result that came through shared memory
// (PoolConfig.SharedMemoryThreshold) as a view of the worker's segment
// instead of a copy: Result.Binary then points into a private mapping
// (writable; nobody else sees the writes) that the caller must end with
// Result.Release. It saves one copy of the result; without it the bytes
// are copied into the Go heap once and nothing needs releasing. Results
// below the threshold, and calls served by another node, are copies
// either way.
func WithZeroCopy() ExecuteOption { return func(o *callOptions) { o.zeroCopy = true } }

// WithMetadata adds request metadata the worker sees (e.g.
// "binary_format:<param>": "pickle" to have a binary parameter unpickled,
// which the worker does only when its pool's AllowPickle is set; or
// "thread_sensitive": "true"). Keys starting with "snakepit_" are the
// host's own and are dropped.
func WithMetadata(md map[string]string) ExecuteOption {
	return func(o *callOptions) { o.metadata = md }
}

// WithCorrelationID tags the call for logs and telemetry: the worker's
// request metadata (correlation_id) and gRPC metadata (x-snakepit-correlation-id)
// carry it, the worker's Python log records show it, and calls the tool
// makes back into host tools carry it on. Without it a call's correlation
// id is its request id.
func WithCorrelationID(id string) ExecuteOption { return func(o *callOptions) { o.correlation = id } }

// WithIdempotent marks a unary call as safe to run twice: if its worker dies
// during the call, the pool runs it once more on another worker instead of
// answering worker_exit (unless the pool's CrashBarrier.NoRetry is set).
func WithIdempotent() ExecuteOption { return func(o *callOptions) { o.idempotent = true } }

// Result is a tool's result.
type Result struct {
	// JSON is the result as JSON (nil for a binary result).
	JSON json.RawMessage
	// Binary holds a bytes result when IsBinary.
	Binary   []byte
	IsBinary bool
	WorkerID string
	Metadata map[string]string
}

// Decode unmarshals the JSON result into v.
func (r *Result) Decode(v any) (err error) {
	defer func() { err = public(err) }()
	if r.IsBinary {
		return sperr.New(sperr.CodeInvalidArgument, "the result is binary, not JSON")
	}
	return json.Unmarshal(r.JSON, v)
}

// Value returns the JSON result decoded into Go values (numbers as float64).
func (r *Result) Value() (_ any, err error) {
	defer func() { err = public(err) }()
	var v any
	err = r.Decode(&v)
	return v, err
}

// request builds the pool message for one call.
func (a *App) newRequest(ctx context.Context, tool string, args any, stream bool, opts []ExecuteOption) (*poolpb.Execute, target, time.Time, error) {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	if a.stopped.Load() {
		return nil, target{}, time.Time{}, sperr.New(sperr.CodeShutdown, "snakepit is stopped")
	}
	select {
	case <-a.gaveUp:
		return nil, target{}, time.Time{}, sperr.Wrap(sperr.CodeShutdown, a.Err(), "%v", a.Err())
	default:
	}
	t, err := a.resolve(o.pool, o.session)
	if err != nil {
		return nil, target{}, time.Time{}, err
	}
	params, err := encodeArgs(args)
	if err != nil {
		return nil, target{}, time.Time{}, err
	}
	var queueMS uint32
	budget := a.callBudget(o.pool, stream)
	if o.profile != "" {
		b, err := o.profile.Budgets()
		if err != nil {
			return nil, target{}, time.Time{}, sperr.New(sperr.CodeInvalidArgument, "%v", err)
		}
		budget, queueMS = b.callBudget(stream), uint32(b.Queue.Milliseconds())
	}
	deadline, ok := ctx.Deadline()
	if o.timeout > 0 && (!ok || time.Now().Add(o.timeout).Before(deadline)) {
		deadline, ok = time.Now().Add(o.timeout), true
	}
	if !ok {
		deadline = time.Now().Add(budget)
	}
	if _, set := o.metadata[shm.ZeroCopyKey]; set || o.zeroCopy {
		// The host's own key: set by WithZeroCopy only.
		o.metadata = maps.Clone(o.metadata)
		delete(o.metadata, shm.ZeroCopyKey)
		if o.zeroCopy {
			if o.metadata == nil {
				o.metadata = map[string]string{}
			}
			o.metadata[shm.ZeroCopyKey] = "1"
		}
	}
	reqID := a.nextRequestID()
	if o.correlation == "" {
		o.correlation = reqID // every call has one: its request id when the caller gave none
	}
	return &poolpb.Execute{
		RequestId: reqID, Tool: tool, Parameters: params, BinaryParameters: o.binary,
		SessionId: o.session, Affinity: o.affinity, DeadlineUnixNano: deadline.UnixNano(), Stream: stream,
		CorrelationId: o.correlation, Idempotent: o.idempotent, Metadata: o.metadata, QueueTimeoutMs: queueMS,
	}, t, deadline, nil
}

// callBudget is the budget of a call without a deadline of its own: its
// pool's ExecuteTimeout or StreamTimeout (from the pool's timeout profile
// unless set), balanced's for a pool on another node.
func (a *App) callBudget(poolName string, stream bool) time.Duration {
	if p, ok := a.poolCfg[a.poolName(poolName)]; ok {
		if stream && p.StreamTimeout > 0 {
			return p.StreamTimeout
		}
		if !stream && p.ExecuteTimeout > 0 {
			return p.ExecuteTimeout
		}
	}
	b, _ := TimeoutBalanced.Budgets()
	return b.callBudget(stream)
}

// encodeArgs turns call arguments into the worker's wire parameters
// (parameter name → one JSON value in an Any of its kind) in one JSON pass:
// a map's values are encoded one by one, straight into their Anys; raw JSON
// is split (which checks it) once; anything else (a struct) is encoded and
// split. Nothing downstream parses the arguments again.
func encodeArgs(args any) (map[string]*anypb.Any, error) {
	switch v := args.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return encodeMembers(len(v), func(yield func(string, any) bool) {
			for k, x := range v {
				if !yield(k, x) {
					return
				}
			}
		})
	case json.RawMessage:
		return splitArgs(v)
	case []byte:
		return splitArgs(v)
	}
	if rv := reflect.ValueOf(args); rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
		if rv.IsNil() {
			return nil, nil
		}
		return encodeMembers(rv.Len(), func(yield func(string, any) bool) {
			for it := rv.MapRange(); it.Next(); {
				if !yield(it.Key().String(), it.Value().Interface()) {
					return
				}
			}
		})
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, sperr.Wrap(sperr.CodeInvalidArgument, err, "arguments: %v", err)
	}
	return splitArgs(b)
}

// encodeMembers encodes each member's value into its Any.
func encodeMembers(n int, members iter.Seq2[string, any]) (map[string]*anypb.Any, error) {
	out := make(map[string]*anypb.Any, n)
	var failed error
	for k, x := range members {
		b, err := json.Marshal(x)
		if err == nil {
			var a *anypb.Any
			if a, err = jsonany.Pack(b); err == nil {
				out[k] = a
				continue
			}
		}
		failed = sperr.Wrap(sperr.CodeInvalidArgument, err, "argument %q: %v", sperr.Truncate(k, sperr.EchoLimit), err)
		break
	}
	if failed != nil {
		return nil, failed
	}
	return out, nil
}

// splitArgs splits a JSON object into parameters (null and empty are no
// parameters); anything but an object is invalid_argument.
func splitArgs(raw []byte) (map[string]*anypb.Any, error) {
	t := jsonany.TrimSpace(raw)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil
	}
	if t[0] != '{' {
		return nil, sperr.New(sperr.CodeInvalidArgument, "arguments must be a JSON object (a map or struct)")
	}
	params, err := jsonany.PackArgs(t)
	if err != nil {
		return nil, sperr.Wrap(sperr.CodeInvalidArgument, err, "arguments must be a JSON object (a map or struct): %v", err)
	}
	return params, nil
}

// replyGrace is how long past its deadline a caller waits for the pool's
// own timeout reply before giving up locally.
const replyGrace = 2 * time.Second

// Execute runs tool with args (a map, a struct, or a JSON object) on a pool
// and returns its result. Every failure is a *Error.
//
// The call runs on the calling goroutine: once a worker's slot is the
// call's, the pool hands the call back to it, and it talks to the worker's
// process itself; no goroutine hand-off happens between the pool's grant
// and the answer.
func (a *App) Execute(ctx context.Context, tool string, args any, opts ...ExecuteOption) (_ *Result, err error) {
	defer func() { err = public(err) }()
	req, t, deadline, err := a.newRequest(ctx, tool, args, false, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, sperr.FromContext(err)
	}
	timer := a.startCall(t.pool, tool)
	ctx, endSpan := a.startSpan(ctx, req, t.pool)
	defer func() {
		timer.done(err)
		endSpan(err)
		if err != nil {
			a.recent.add(t.pool, tool, err)
		}
	}()
	if t.node != "" {
		return a.executeRemote(ctx, req, t, deadline, req.GetSessionId())
	}
	pid := t.pid
	root := a.system.Root
	reply := make(worker.Local, worker.LocalBuffer)
	root.Send(pid, &pool.ExecuteLocal{Req: req, Reply: reply})
	if ctx.Done() != nil {
		// The pool answers a cancelled call at once (queued) or the worker
		// does (running): its answer is still awaited, so no grant is left
		// behind unrun.
		stop := context.AfterFunc(ctx, func() { cancelCall(root, pid, req.GetRequestId()) })
		defer stop()
	}
	limit := time.Until(deadline) + replyGrace
	expiry := time.NewTimer(limit)
	defer expiry.Stop()
	for {
		var m any
		select {
		case m = <-reply:
		case <-expiry.C:
			// The pool did not answer (it should have, at the deadline):
			// whatever it still sends is handled, and nothing is left
			// unrun, by a goroutine of its own.
			cancelCall(root, pid, req.GetRequestId())
			go drainLocal(reply, limit)
			return nil, sperr.New(sperr.CodeDeadlineExceeded, "no reply within %s", limit.Round(time.Millisecond))
		}
		switch m := m.(type) {
		case *worker.Grant:
			timer.grant()
			m.Run() // its answer is in reply now (or a retry's grant comes)
		case *poolpb.Result:
			return a.result(ctx, m)
		default:
			return nil, sperr.New(sperr.CodeInternal, "unexpected reply %T from pool %s", m, pid.GetId())
		}
	}
}

// result is a pool's terminal reply as Execute returns it.
func (a *App) result(ctx context.Context, m *poolpb.Result) (*Result, error) {
	if e := m.GetError(); e != nil {
		if ctx.Err() != nil {
			return nil, sperr.FromContext(ctx.Err())
		}
		return nil, sperr.FromProto(e)
	}
	return &Result{JSON: m.GetResultJson(), Binary: m.GetBinaryResult(), IsBinary: m.GetIsBinary(),
		WorkerID: m.GetWorkerId(), Metadata: m.GetMetadata()}, nil
}

// Release ends a zero-copy result's view (WithZeroCopy): Binary, and any
// slice of it, must not be used afterwards. It does nothing for a result
// that is not a view, and may be called more than once.
func (r *Result) Release() {
	if r != nil && shm.Release(r.Binary) {
		r.Binary = nil
	}
}

// cancelCall asks pool pid to cancel call id.
func cancelCall(root *actor.RootContext, pid *actor.PID, id string) {
	root.Send(pid, &poolpb.Cancel{RequestId: id})
}

// drainLocal runs the grants a local call's pool still sends after its
// caller gave up, until the call's terminal reply or limit.
func drainLocal(reply worker.Local, limit time.Duration) {
	expiry := time.NewTimer(limit)
	defer expiry.Stop()
	for {
		select {
		case m := <-reply:
			g, ok := m.(*worker.Grant)
			if !ok {
				if r, ok := m.(*poolpb.Result); ok {
					shm.Release(r.GetBinaryResult()) // a view nobody will read
				}
				return
			}
			g.Run()
		case <-expiry.C:
			return
		}
	}
}

// Chunk is one piece of a streamed result.
type Chunk struct {
	ID       string
	Data     []byte
	Metadata map[string]string
	Final    bool
	WorkerID string
}

// Encoding is how Data is encoded: json, text, binary or empty.
func (c *Chunk) Encoding() string { return c.Metadata["encoding"] }

// Decode unmarshals a JSON chunk into v.
func (c *Chunk) Decode(v any) error { return json.Unmarshal(c.Data, v) }

// Stream is a running streaming call. Read it with Recv or Chunks (one
// reader); Close it when stopping early, from any goroutine (that cancels
// the tool and ends a Recv that is waiting). A stream that is neither read
// to its end nor closed still ends at its deadline, releasing its worker.
type Stream struct {
	app      *App
	pool     *actor.PID
	id       string
	in       *inbox
	ctx      context.Context
	deadline time.Time
	expiry   *time.Timer

	// stopCtx unbinds the stream from its context once it has ended.
	stopCtx func() bool
	// forget ends a remote stream's registration with its node's watch.
	forget func()
	// window is the credit window of a stream from another node (0: none);
	// consumed counts chunks read since the last StreamCredit. Reader only.
	window   uint32
	consumed uint32

	mu   sync.Mutex
	done bool
	err  error
}

// dropped is what a Stream's cleanup needs (never the Stream itself).
type dropped struct {
	in     *inbox
	pool   *actor.PID
	id     string
	forget func()
}

// ExecuteStream starts a streaming tool. Chunks arrive with back-pressure: a
// reader that stops reading holds the Python generator back.
func (a *App) ExecuteStream(ctx context.Context, tool string, args any, opts ...ExecuteOption) (_ *Stream, err error) {
	defer func() { err = public(err) }()
	req, t, deadline, err := a.newRequest(ctx, tool, args, true, opts)
	if err != nil {
		return nil, err
	}
	// A stream carries the caller's trace context (when its context is
	// traced); the App does not time a stream with a span of its own.
	injectTrace(ctx, req)
	defer func() {
		if err != nil {
			a.recent.add(t.pool, tool, err)
		}
	}()
	in := newInbox(a.system, streamBuffer)
	forget := func() {}
	var window uint32
	if t.node != "" {
		// A stream from another node ends with node_down when that node is
		// lost, like a unary call.
		var f func()
		if t, f, err = a.cluster.watch(t, req.GetSessionId(), in); err != nil {
			in.close()
			return nil, err
		}
		forget = sync.OnceFunc(f)
		window = streamWindow
		req.StreamWindow = window
	}
	pid := t.pid
	s := &Stream{app: a, pool: pid, id: req.GetRequestId(), in: in, ctx: ctx, deadline: deadline, forget: forget, window: window}
	// Past its deadline (plus the grace for the pool's own timeout reply) a
	// stream ends even if nobody reads it: the inbox closes, which releases a
	// worker goroutine blocked on it. The timer must not hold s, so that a
	// dropped Stream can be collected (and closed by its cleanup).
	system, id := a.system, s.id
	s.expiry = time.AfterFunc(time.Until(deadline)+replyGrace, func() {
		in.closeWith(sperr.New(sperr.CodeDeadlineExceeded, "stream %s passed its deadline", id))
		system.Root.Send(pid, &poolpb.Cancel{RequestId: id})
		a.streams.Delete(in)
		forget()
	})
	// A Stream dropped without Close is cancelled once collected: the pool
	// cancels the call, the Python generator is closed and the worker freed.
	runtime.AddCleanup(s, func(d dropped) {
		d.in.closeWith(sperr.New(sperr.CodeCancelled, "stream %s was dropped", d.id))
		system.Root.Send(d.pool, &poolpb.Cancel{RequestId: d.id})
		a.streams.Delete(d.in)
		d.forget()
	}, dropped{in: in, pool: pid, id: id, forget: forget})
	a.streams.Store(in, struct{}{})
	// The call is bound to ctx: when it ends, the stream is cancelled even
	// if nobody reads it.
	s.stopCtx = context.AfterFunc(ctx, func() {
		in.closeWith(sperr.FromContext(ctx.Err()))
		system.Root.Send(pid, &poolpb.Cancel{RequestId: id})
		a.streams.Delete(in)
		forget()
	})
	if a.stopped.Load() { // Stop ran between newRequest and Store
		in.closeWith(sperr.New(sperr.CodeShutdown, "snakepit is stopping"))
	}
	a.system.Root.RequestWithCustomSender(pid, req, in.pid)
	return s, nil
}

// Recv returns the next data chunk, io.EOF after the last one, or the
// stream's error. The final chunk's data (when not empty) is returned too,
// with Final set.
func (s *Stream) Recv() (_ *Chunk, err error) {
	defer func() { err = public(err) }()
	for {
		if done, err := s.state(); done {
			if err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		msg, err := s.in.next(s.ctx, time.Until(s.deadline)+replyGrace, s.app.stopped.Load())
		if err != nil {
			s.finish(err)
			s.cancel()
			continue
		}
		ch, ok := msg.(*poolpb.Chunk)
		if !ok {
			s.finish(sperr.New(sperr.CodeInternal, "unexpected stream message %T", msg))
			continue
		}
		if ch.GetError() != nil {
			s.finish(sperr.FromProto(ch.GetError()))
			continue
		}
		if ch.GetIsFinal() {
			s.finish(nil)
			if ch.GetMetadata()["synthetic_final"] == "true" || len(ch.GetData()) == 0 {
				return nil, io.EOF
			}
		}
		if s.window > 0 && !ch.GetIsFinal() {
			// Half the window read: the worker may send that much more.
			if s.consumed++; s.consumed >= s.window/2 {
				s.app.system.Root.Send(s.pool, &poolpb.StreamCredit{RequestId: s.id, Chunks: s.consumed})
				s.consumed = 0
			}
		}
		return &Chunk{ID: ch.GetChunkId(), Data: ch.GetData(), Metadata: ch.GetMetadata(), Final: ch.GetIsFinal(), WorkerID: ch.GetWorkerId()}, nil
	}
}

// Chunks iterates over the stream's chunks; an error ends the iteration
// after being yielded. Breaking out of the loop closes the stream.
func (s *Stream) Chunks() iter.Seq2[*Chunk, error] {
	return func(yield func(*Chunk, error) bool) {
		defer s.Close()
		for {
			c, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

// Close stops reading: a running stream is cancelled (the Python generator
// is closed) and its remaining chunks are dropped. Safe to call twice and
// from another goroutine than the reader's.
func (s *Stream) Close() {
	if s.finish(sperr.New(sperr.CodeCancelled, "stream closed by the caller")) {
		s.cancel()
	}
}

func (s *Stream) cancel() {
	s.app.system.Root.Send(s.pool, &poolpb.Cancel{RequestId: s.id})
}

// state reports whether the stream has ended, and with which error.
func (s *Stream) state() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done, s.err
}

// finish ends the stream with err (nil: it completed) unless it has ended
// already; it reports whether this call ended it.
func (s *Stream) finish(err error) bool {
	s.mu.Lock()
	first := !s.done
	if first {
		s.done, s.err = true, err
	}
	s.mu.Unlock()
	s.expiry.Stop()
	if s.stopCtx != nil {
		s.stopCtx()
	}
	s.in.close()
	s.app.streams.Delete(s.in)
	s.forget()
	return first
}
