package pool

import (
	"context"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	wk "github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// An in-process fake worker: an actor that speaks the worker's protocol to
// the pool (Ready, Down, StartFailed, an Executor per generation) over a fake
// BridgeServiceClient whose tools behave by name. No Python, no sockets.
//
// Tools (the call's correlation id names it in the fake's records):
//
//	ok     answers "ok" at once
//	gate   waits until the test opens the gate of its correlation id
//	block  waits until its context ends (cancel, close, deadline)
//	fail   answers a Python error
//	stream (streaming) three chunks, then a final one

// fakeEnv holds a test's knobs and what the fake workers saw. One env serves
// every worker of a pool, across restarts.
type fakeEnv struct {
	// capacity is every worker's Capacity (default 1).
	capacity int
	// failFirst names the workers whose first start fails: they send
	// StartFailed and stop themselves normally, as worker.Props does.
	failFirst map[string]bool
	// readyGates names workers that end their start (Ready, or StartFailed
	// for failFirst) only once their channel is closed (a channel never
	// closed: a worker that never becomes ready).
	readyGates map[string]chan struct{}
	// holdStop, when set, makes a stopping worker wait for it (bounded)
	// before it closes its executor.
	holdStop chan struct{}

	mu         sync.Mutex
	genSeq     map[string]uint64
	failStarts map[string]int // starts (any generation) that fail, per worker
	gates      map[string]*gate
	entered    map[string]callSeen
	starts     []string // "<worker>#<generation>", in Started order
	pids       map[string]*actor.PID
	gens       map[string]uint64 // latest generation started, per worker
}

// callSeen is where a call reached the fake client.
type callSeen struct {
	worker string
	gen    uint64
}

type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newFakeEnv() *fakeEnv {
	return &fakeEnv{
		capacity:   1,
		failFirst:  map[string]bool{},
		failStarts: map[string]int{},
		readyGates: map[string]chan struct{}{},
		gates:      map[string]*gate{},
		entered:    map[string]callSeen{},
		pids:       map[string]*actor.PID{},
		gens:       map[string]uint64{},
	}
}

func (e *fakeEnv) gateOf(id string) *gate {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, ok := e.gates[id]
	if !ok {
		g = &gate{ch: make(chan struct{})}
		e.gates[id] = g
	}
	return g
}

// open releases the "gate" call with correlation id id (now or when it comes).
func (e *fakeEnv) open(id string) {
	g := e.gateOf(id)
	g.once.Do(func() { close(g.ch) })
}

// openAll releases every gate created so far.
func (e *fakeEnv) openAll() {
	e.mu.Lock()
	gs := make([]*gate, 0, len(e.gates))
	for _, g := range e.gates {
		gs = append(gs, g)
	}
	e.mu.Unlock()
	for _, g := range gs {
		g.once.Do(func() { close(g.ch) })
	}
}

func (e *fakeEnv) enter(id, worker string, gen uint64) {
	if id == "" {
		return
	}
	e.mu.Lock()
	e.entered[id] = callSeen{worker: worker, gen: gen}
	e.mu.Unlock()
}

// seen returns where the call with correlation id id ran, if it reached a worker.
func (e *fakeEnv) seen(id string) (callSeen, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.entered[id]
	return c, ok
}

func (e *fakeEnv) started(worker string, gen uint64, pid *actor.PID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts = append(e.starts, worker+"#"+strconv.FormatUint(gen, 10))
	e.pids[worker] = pid
	e.gens[worker] = gen
}

func (e *fakeEnv) startLog() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.starts)
}

func (e *fakeEnv) pid(worker string) *actor.PID {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pids[worker]
}

func (e *fakeEnv) generation(worker string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gens[worker]
}

// props is the pool's Config.WorkerProps: like worker.Props, the generation
// counter lives in the props, so every restart counts on.
func (e *fakeEnv) props(wc wk.Config) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &fakeWorker{env: e, wc: wc, gen: e.nextGen(wc.WorkerID), stop: make(chan struct{})}
	})
}

// nextGen numbers a worker's starts across props (a recycle or a resize
// makes new props), as worker.Props's process-wide counter does.
func (e *fakeEnv) nextGen(worker string) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.genSeq == nil {
		e.genSeq = map[string]uint64{}
	}
	e.genSeq[worker]++
	return e.genSeq[worker]
}

// failsNow reports whether this start of worker fails: its first start when
// failFirst names it, or while failStarts still counts for it.
func (e *fakeEnv) failsNow(worker string, gen uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.failStarts[worker]; n > 0 {
		e.failStarts[worker] = n - 1
		return true
	}
	return gen == 1 && e.failFirst[worker]
}

// crashWorker makes a fake worker die like a worker whose Python process
// exited: in-flight calls get worker_exit, the pool gets Down, the actor
// panics and its supervisor restarts it.
type crashWorker struct{}

// bootNow is sent by a fake worker's ready-gate goroutine.
type bootNow struct{}

type fakeWorker struct {
	env  *fakeEnv
	wc   wk.Config
	gen  uint64
	exec *wk.Executor
	down bool // Down sent for this generation

	stop chan struct{}
	wg   sync.WaitGroup
}

func (f *fakeWorker) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		f.env.started(f.wc.WorkerID, f.gen, ctx.Self())
		if g := f.env.readyGates[f.wc.WorkerID]; g != nil {
			self, root := ctx.Self(), ctx.ActorSystem().Root
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				select {
				case <-g:
					root.Send(self, &bootNow{})
				case <-f.stop:
				}
			}()
			return
		}
		f.boot(ctx)
	case *bootNow:
		f.boot(ctx)
	case *crashWorker:
		cause := sperr.New(sperr.CodeWorkerExit, "python process of %s ended (fake crash)", f.wc.WorkerID)
		cause.Pool, cause.WorkerID = f.wc.PoolName, f.wc.WorkerID
		if f.exec != nil {
			f.exec.Close(cause)
		}
		f.down = true
		ctx.Send(f.wc.Pool, &wk.Down{WorkerID: f.wc.WorkerID, Generation: f.gen, Exit: wk.ExitInfo{ExitCode: -1, Signal: "killed"}})
		panic(cause)
	case *actor.Stopping:
		close(f.stop)
		f.wg.Wait()
		if h := f.env.holdStop; h != nil {
			select {
			case <-h:
			case <-time.After(5 * time.Second):
			}
		}
		if f.exec != nil {
			cause := sperr.New(sperr.CodeShutdown, "worker %s is stopping", f.wc.WorkerID)
			cause.Pool, cause.WorkerID = f.wc.PoolName, f.wc.WorkerID
			f.exec.Close(cause)
			f.exec.Wait(5 * time.Second)
			if !f.down {
				f.down = true
				ctx.Send(f.wc.Pool, &wk.Down{WorkerID: f.wc.WorkerID, Generation: f.gen, Planned: true})
			}
		}
	}
}

// boot ends a start: StartFailed (and a normal stop) for a failing first
// start, else Ready.
func (f *fakeWorker) boot(ctx actor.Context) {
	if f.env.failsNow(f.wc.WorkerID, f.gen) {
		e := sperr.New(sperr.CodeWorkerStartFailed, "worker %s did not start: fake failure", f.wc.WorkerID)
		ctx.Send(f.wc.Pool, &wk.StartFailed{WorkerID: f.wc.WorkerID, Generation: f.gen, Err: e, Exited: true})
		ctx.Stop(ctx.Self())
		return
	}
	f.ready(ctx)
}

func (f *fakeWorker) ready(ctx actor.Context) {
	f.exec = wk.NewExecutor(wk.ExecutorConfig{
		WorkerID: f.wc.WorkerID, Pool: f.wc.PoolName, Generation: f.gen,
		Client: &fakeClient{env: f.env, worker: f.wc.WorkerID, gen: f.gen},
		Sender: ctx.ActorSystem().Root, PoolPID: f.wc.Pool,
	})
	ctx.Send(f.wc.Pool, &wk.Ready{
		WorkerID: f.wc.WorkerID, PID: ctx.Self(), Generation: f.gen,
		Capacity: f.env.capacity, OSPid: 4000 + int(f.gen), Exec: f.exec,
	})
}

// fakeClient is the worker's "gRPC client": the methods the executor uses,
// answered in process.
type fakeClient struct {
	bridgepb.BridgeServiceClient
	env    *fakeEnv
	worker string
	gen    uint64
}

func okResponse() *bridgepb.ExecuteToolResponse {
	return &bridgepb.ExecuteToolResponse{Success: true, Result: &anypb.Any{
		TypeUrl: "type.googleapis.com/snakepit.string", Value: []byte(`"ok"`)}}
}

func (c *fakeClient) ExecuteTool(ctx context.Context, in *bridgepb.ExecuteToolRequest, _ ...grpc.CallOption) (*bridgepb.ExecuteToolResponse, error) {
	id := in.GetMetadata()["correlation_id"]
	c.env.enter(id, c.worker, c.gen)
	switch in.GetToolName() {
	case "ok":
		return okResponse(), nil
	case "gate":
		select {
		case <-c.env.gateOf(id).ch:
			return okResponse(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "fail":
		return &bridgepb.ExecuteToolResponse{Success: false,
			ErrorMessage: `{"type":"ValueError","message":"bad","traceback":"tb"}`}, nil
	default: // "block"
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

func (c *fakeClient) ExecuteStreamingTool(ctx context.Context, in *bridgepb.ExecuteToolRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[bridgepb.ToolChunk], error) {
	c.env.enter(in.GetMetadata()["correlation_id"], c.worker, c.gen)
	chunks := []*bridgepb.ToolChunk{
		{ChunkId: "1", Data: []byte("a")},
		{ChunkId: "2", Data: []byte("b")},
		{ChunkId: "3", Data: []byte("c")},
		{ChunkId: "final", IsFinal: true},
	}
	return &fakeStream{ctx: ctx, chunks: chunks}, nil
}

// fakeStream yields its chunks, then io.EOF; a cancelled context ends it.
type fakeStream struct {
	grpc.ClientStream
	ctx    context.Context
	chunks []*bridgepb.ToolChunk
}

func (s *fakeStream) Recv() (*bridgepb.ToolChunk, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}
