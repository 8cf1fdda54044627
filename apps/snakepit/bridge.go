package snakepit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"

	"github.com/snakepit-go/snakepit/actors/bridge"
	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
	"github.com/snakepit-go/snakepit/actors/registry"
	"github.com/snakepit-go/snakepit/actors/worker"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// BridgeConfig configures the bridge server.
type BridgeConfig struct {
	Mode BridgeMode
	// Address: the socket path (unix; default bridge.sock in the run's
	// directory, <temp dir>/spr-<run id>-*)
	// or host:port (external).
	Address string
	// AllowUnauthenticated accepts calls that carry no worker secret, as
	// upstream Snakepit's own Python bridge does not send one. Such callers
	// (any local user who can reach the listener) may then run host tools,
	// sessions and tools workers registered (never with pickle). Leave it
	// off unless you run upstream's Python workers.
	AllowUnauthenticated bool
	// TLS, when set, makes the bridge serve TLS: use it whenever the
	// listener is reachable beyond loopback (BridgeExternal). Workers then
	// need SNAKEPIT_BRIDGE_CA_FILE (a PEM bundle) in their AdapterEnv.
	TLS *tls.Config
}

// BridgeAddress is the address workers call the host at ("" when the bridge is off).
func (a *App) BridgeAddress() string { return a.bridgeAddr }

type sessionStore struct{ c *sessions.Client }

func (s sessionStore) Create(ctx context.Context, id string, md map[string]string) (bridge.SessionInfo, error) {
	st, _, err := s.c.Create(ctx, id, md, 0)
	return bridge.SessionInfo{ID: st.ID, Metadata: st.Metadata, CreatedAt: st.CreatedAt}, sessionErr(err)
}

func (s sessionStore) Get(ctx context.Context, id string) (bridge.SessionInfo, error) {
	st, err := s.c.Get(ctx, id)
	return bridge.SessionInfo{ID: st.ID, Metadata: st.Metadata, CreatedAt: st.CreatedAt}, sessionErr(err)
}

func (s sessionStore) Valid(ctx context.Context, id string) bool {
	ok, err := s.c.Valid(ctx, id)
	return err == nil && ok
}

func (s sessionStore) Delete(ctx context.Context, id string) (bool, error) {
	ok, err := s.c.Delete(ctx, id)
	return ok, sessionErr(err)
}

// workerConns finds a worker's gRPC server (registry → worker actor →
// target) and keeps one client connection per worker, redialled when the
// worker's target changes (a restart listens on a new socket).
type workerConns struct {
	root     *actor.RootContext
	registry *actor.PID
	mu       sync.Mutex
	conns    map[string]*workerConn
	closed   bool
}

type workerConn struct {
	target string
	conn   *grpc.ClientConn
}

func (w *workerConns) Client(ctx context.Context, id string) (bridgepb.BridgeServiceClient, error) {
	reg := registry.Client{Root: w.root, PID: w.registry}
	meta, ok, err := reg.Lookup(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("worker %s is not running", id)
	}
	// A worker that is starting is registered already: wait for its start
	// to end (bounded by ctx) rather than fail the forwarded call.
	wait := 5 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		if wait = time.Until(dl); wait <= 0 {
			return nil, fmt.Errorf("worker %s: %w", id, context.DeadlineExceeded)
		}
	}
	res, err := w.root.RequestFuture(meta.PID, &worker.GetInfo{WaitReady: true}, wait).Result()
	if err != nil {
		return nil, fmt.Errorf("worker %s: %w", id, err)
	}
	info, _ := res.(*worker.Info)
	if info == nil || info.Target == "" || info.State != worker.StateReady {
		return nil, fmt.Errorf("worker %s is not ready", id)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, errors.New("the app is stopping")
	}
	c := w.conns[id]
	if c == nil || c.target != info.Target {
		if c != nil {
			_ = c.conn.Close()
		}
		conn, err := worker.Dial(info.Target, info.ServerSecret)
		if err != nil {
			return nil, err
		}
		c = &workerConn{target: info.Target, conn: conn}
		w.conns[id] = c
	}
	return bridgepb.NewBridgeServiceClient(c.conn), nil
}

func (w *workerConns) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	for _, c := range w.conns {
		_ = c.conn.Close()
	}
	w.conns = nil
}

// listenBridge binds the bridge listener before the tree starts (workers
// need its address) and returns a function that binds the same address
// again for a restarted bridge actor.
func listenBridge(c BridgeConfig, runDir string) (net.Listener, string, func() (net.Listener, error), error) {
	if c.Mode == BridgeOff {
		return nil, "", nil, nil
	}
	addr := c.Address
	if c.Mode == BridgeUnix && addr == "" {
		addr = filepath.Join(runDir, "bridge.sock")
	}
	lis, dial, err := bridge.Listen(c.Mode.internal(), addr)
	if err != nil {
		return nil, "", nil, err
	}
	again := func() (net.Listener, error) {
		mode, a := c.Mode, addr
		if mode == "" || mode == BridgeInternal {
			mode, a = BridgeExternal, lis.Addr().String() // the same port
		}
		l, _, err := bridge.Listen(mode.internal(), a)
		return l, err
	}
	return lis, dial, again, nil
}
