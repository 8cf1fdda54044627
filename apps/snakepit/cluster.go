package snakepit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/snakepit-go/snakepit/internal/directory"
	"github.com/snakepit-go/snakepit/internal/membership"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// ClusterConfig joins the App to a cluster of nodes: each node advertises
// its pools by name, and Execute, ExecuteStream and Session calls with
// WithPool reach a pool on whichever node has it (this node's own first).
// Membership and failure detection are SWIM gossip (hashicorp/memberlist);
// the calls travel over protoactor remote, so the cluster needs
// RemoteAddress (or, with StartIn, a system with remote started) and
// Remote.Secret, from which the gossip's encryption key is derived too.
// See docs/distributed.md.
type ClusterConfig struct {
	// Name names the cluster and turns clustering on; nodes of other
	// clusters are not heard.
	Name string
	// NodeName is this node's name, unique in the cluster (default
	// "<hostname>/<instance name>").
	NodeName string
	// Bind is the gossip listener's host:port, UDP and TCP (default: the
	// RemoteAddress's host, port 7946). It binds that address only.
	Bind string
	// Advertise is the gossip address other nodes reach this one at
	// (default: the bound address), e.g. behind NAT.
	Advertise string
	// Seeds are other nodes' gossip addresses to join through; unanswered
	// seeds are retried while this node knows no other.
	Seeds []string
	// Timings tune failure detection (zero fields: ClusterLAN's).
	Timings ClusterTimings
	// Quarantine is how long a node whose connection was lost gets no new
	// calls, unless membership reports it again first (default: twice the
	// detection window).
	Quarantine time.Duration
	// LoadInterval is how often this node re-advertises its pools' load
	// (default 1s; only changes are gossiped).
	LoadInterval time.Duration
}

// ClusterTimings tune membership's failure detection.
type ClusterTimings struct {
	ProbeInterval    time.Duration // how often a node probes a random other one
	ProbeTimeout     time.Duration // how long a probe waits before indirect probes
	SuspicionMult    int           // suspicion timeout = SuspicionMult × log10(N) × ProbeInterval
	GossipInterval   time.Duration // how often updates are gossiped
	PushPullInterval time.Duration // how often two nodes sync their whole state
	RejoinInterval   time.Duration // how often a lone node tries its seeds
}

// ClusterLAN are the defaults (memberlist's LAN profile): a killed node is
// declared down in about 5 s. ClusterLoopback suits nodes on one machine
// (tests, demos): about 0.6–1 s.
var (
	ClusterLAN      = ClusterTimings(membership.LAN)
	ClusterLoopback = ClusterTimings(membership.Loopback)
)

// DetectionWindow is about the longest a killed node of a cluster of n
// stays in the others' directories.
func (t ClusterTimings) DetectionWindow(n int) time.Duration {
	return membership.Timings(t).DetectionWindow(n)
}

// NodeInfo is a node of the cluster as this node's directory has it.
type NodeInfo struct {
	Name    string
	Address string // its actor system's address
	Pools   []NodePool
}

// NodePool is a pool a node advertises.
type NodePool struct {
	Name     string
	Capacity int // calls it runs at once
	Load     int // calls running or queued, as last advertised
}

const defaultGossipPort = "7946"

// cluster is the App's part in a cluster: its membership, the directory of
// other nodes' pools, and the watches that end calls to a node that died.
type cluster struct {
	app        *App
	member     *membership.Member
	quarantine time.Duration
	interval   time.Duration

	mu       sync.Mutex
	dir      *directory.Directory
	meta     []byte
	local    map[string]directory.Pool
	watches  map[string]*poolWatch // by remote pool PID (address/id)
	sessions map[string]string     // session id → the node it is pinned to
	stopped  bool

	quit chan struct{}
	done chan struct{}
}

// startCluster joins the cluster; the App's pools are already running.
func startCluster(a *App, cfg ClusterConfig, secret string) (*cluster, error) {
	addr := a.system.Address()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
			Message: "snakepit: Cluster needs remote on the actor system (RemoteAddress, or remote started before StartIn)"}
	}
	if secret == "" {
		return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument,
			Message: "snakepit: Cluster needs Remote.Secret (or $" + EnvRemoteSecret + "), shared by every node"}
	}
	if cfg.Bind == "" {
		cfg.Bind = net.JoinHostPort(host, defaultGossipPort)
	}
	if cfg.NodeName == "" {
		hn, _ := os.Hostname()
		cfg.NodeName = hn + "/" + a.cfg.InstanceName
	}
	t := membership.Timings(cfg.Timings)
	if cfg.Quarantine <= 0 {
		cfg.Quarantine = 2 * t.DetectionWindow(8)
	}
	if cfg.LoadInterval <= 0 {
		cfg.LoadInterval = time.Second
	}
	c := &cluster{app: a, quarantine: cfg.Quarantine, interval: cfg.LoadInterval, dir: directory.New(),
		local: map[string]directory.Pool{}, watches: map[string]*poolWatch{}, sessions: map[string]string{},
		quit: make(chan struct{}), done: make(chan struct{})}
	for _, name := range a.Pools() {
		p := a.poolCfg[name]
		c.local[name] = directory.Pool{Name: name, Capacity: p.Size * max(1, p.Threads)}
	}
	c.meta = c.encode()
	if len(c.meta) > membership.MetaMaxSize {
		return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: fmt.Sprintf(
			"snakepit: the pools of this node do not fit in a cluster advertisement (%d bytes, at most %d): fewer pools or shorter names",
			len(c.meta), membership.MetaMaxSize)}
	}
	c.member, err = membership.Start(membership.Config{
		Cluster: cfg.Name, Name: cfg.NodeName, Bind: cfg.Bind, Advertise: cfg.Advertise, Seeds: cfg.Seeds,
		Secret: secret, Timings: t, Meta: c.currentMeta, OnChange: c.onChange, Logger: a.log,
	})
	if err != nil {
		if errors.Is(err, membership.ErrConfig) {
			return nil, &Error{Category: CategoryValidation, Code: CodeInvalidArgument, Message: "snakepit: cluster: " + err.Error()}
		}
		return nil, fmt.Errorf("snakepit: cluster: %w", err)
	}
	go c.advertiseLoad()
	a.log.Info("joined the cluster", "cluster", cfg.Name, "node", cfg.NodeName, "gossip", c.member.Addr(), "seeds", cfg.Seeds)
	return c, nil
}

func (c *cluster) encode() []byte {
	n := directory.Node{Address: c.app.system.Address(), Instance: c.app.cfg.InstanceName}
	for _, name := range c.app.Pools() {
		n.Pools = append(n.Pools, c.local[name])
	}
	return directory.Encode(n)
}

func (c *cluster) currentMeta() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meta
}

// stop leaves the cluster (the others stop routing here at once) and ends
// every watch.
func (c *cluster) stop() {
	close(c.quit)
	<-c.done
	if err := c.member.Stop(2 * time.Second); err != nil {
		c.app.log.Warn("leaving the cluster", "error", err)
	}
	c.mu.Lock()
	c.stopped = true
	ws := c.watches
	c.watches = map[string]*poolWatch{}
	c.mu.Unlock()
	for _, w := range ws {
		w.unwatch()
	}
}

// advertiseLoad re-advertises the local pools' load when it changed.
func (c *cluster) advertiseLoad() {
	defer close(c.done)
	tick := time.NewTicker(c.interval)
	defer tick.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-tick.C:
		}
		changed := false
		for _, name := range c.app.Pools() {
			ctx, cancel := context.WithTimeout(context.Background(), c.interval)
			st, err := call[*poolpb.Stats](ctx, c.app, c.app.pools[name], &poolpb.GetStats{}, c.interval)
			cancel()
			if err != nil {
				continue
			}
			p := directory.Pool{Name: name, Capacity: int(st.GetAvailable() + st.GetInFlight()), Load: int(st.GetInFlight() + st.GetQueued())}
			if p.Capacity == 0 { // not ready yet: advertise the configured size
				p.Capacity = c.local[name].Capacity
			}
			c.mu.Lock()
			if c.local[name] != p {
				c.local[name], changed = p, true
			}
			c.mu.Unlock()
		}
		if changed {
			c.mu.Lock()
			c.meta = c.encode()
			c.mu.Unlock()
			if err := c.member.Publish(c.interval); err != nil {
				c.app.log.Debug("advertising the pools' load", "error", err)
			}
		}
	}
}

// onChange applies a membership event to the directory.
func (c *cluster) onChange(e membership.Event) {
	if e.Kind == membership.Left {
		c.mu.Lock()
		n, ok := c.dir.Remove(e.Name)
		c.mu.Unlock()
		if ok {
			c.app.log.Warn("a node left the cluster", "node", e.Name, "address", n.Address)
			c.nodeDown(n.Address, "node "+e.Name+" left the cluster")
		}
		return
	}
	n, err := directory.Decode(e.Name, e.Meta)
	if err != nil {
		c.app.log.Debug("ignoring a member", "node", e.Name, "error", err)
		return
	}
	c.mu.Lock()
	_, known := c.dir.ByAddress(n.Address)
	c.dir.Upsert(n, e.Kind == membership.Joined)
	c.mu.Unlock()
	if !known {
		c.app.log.Info("a node joined the cluster", "node", e.Name, "address", n.Address, "pools", len(n.Pools))
	}
}

// nodeDown ends every call watched at address with node_down and has
// protoactor drop its endpoint (which ends watches of other actors too).
func (c *cluster) nodeDown(address, why string) {
	c.mu.Lock()
	var ended []*poolWatch
	for key, w := range c.watches {
		if w.target.GetAddress() == address {
			ended = append(ended, w)
			delete(c.watches, key)
		}
	}
	c.mu.Unlock()
	for _, w := range ended {
		w.end(why)
	}
	c.app.system.EventStream.Publish(&remote.EndpointTerminatedEvent{Address: address})
}

// Nodes lists the other nodes of the cluster as this node's directory has
// them (nil without a cluster).
func (a *App) Nodes() []NodeInfo {
	c := a.cluster
	if c == nil {
		return nil
	}
	c.mu.Lock()
	nodes := c.dir.Nodes()
	c.mu.Unlock()
	out := make([]NodeInfo, 0, len(nodes))
	for _, n := range nodes {
		info := NodeInfo{Name: n.Name, Address: n.Address}
		for _, p := range n.Pools {
			info.Pools = append(info.Pools, NodePool{Name: p.Name, Capacity: p.Capacity, Load: p.Load})
		}
		out = append(out, info)
	}
	return out
}

// target is where a call goes: a local pool, or a pool on another node.
type target struct {
	pid  *actor.PID
	pool string
	node string // "" = this node
}

// route picks the node for a call to pool: the session's node when the
// session is pinned (pinning it at its first call), else the least loaded
// node that has it, except exclude.
func (c *cluster) route(pool, session, exclude string) (target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return target{}, sperr.New(sperr.CodeShutdown, "snakepit is stopped")
	}
	if session != "" {
		if name, ok := c.sessions[session]; ok {
			for _, n := range c.dir.Nodes() {
				if n.Name == name {
					return target{pid: actor.NewPID(n.Address, directory.PoolID(n.Instance, pool)), pool: pool, node: n.Name}, nil
				}
			}
			e := sperr.New(sperr.CodeNodeDown, "session %q is pinned to node %s, which left the cluster", session, name)
			e.Pool = pool
			return target{}, e
		}
	}
	n, ok := c.dir.Route(pool, time.Now(), func(name string) bool { return name == exclude })
	if !ok {
		code, msg := sperr.CodePoolNotFound, fmt.Sprintf("no pool named %q on this node or any node of the cluster", pool)
		if c.dir.Has(pool) {
			code, msg = sperr.CodeNodeDown, fmt.Sprintf("every node with pool %q is unreachable", pool)
		}
		e := sperr.New(code, "%s", msg)
		e.Pool = pool
		return target{}, e
	}
	if session != "" {
		c.sessions[session] = n.Name
	}
	return target{pid: actor.NewPID(n.Address, directory.PoolID(n.Instance, pool)), pool: pool, node: n.Name}, nil
}

// forgetSession drops a session's pin.
func (c *cluster) forgetSession(id string) {
	c.mu.Lock()
	delete(c.sessions, id)
	c.mu.Unlock()
}

// watch registers in as a call to t's pool: if the node dies, in is closed
// with node_down. The returned func ends the registration. A node found
// unreachable since the route was made is not sent the call (a fresh watch
// would only open a connection to a dead node): the call goes to another
// node with the pool unless a session pins it there. The target returned is
// the one watched, where the call must go.
func (c *cluster) watch(t target, session string, in *inbox) (target, func(), error) {
	for rerouted := 0; ; {
		key := t.pid.String()
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return t, nil, sperr.New(sperr.CodeShutdown, "snakepit is stopped")
		}
		if !c.dir.Reachable(t.node, time.Now()) {
			c.mu.Unlock()
			if session == "" && rerouted < 2 {
				rerouted++
				next, err := c.route(t.pool, "", t.node)
				if err != nil {
					return t, nil, err
				}
				t = next
				continue
			}
			e := sperr.New(sperr.CodeNodeDown, "node %s became unreachable before the call was sent", t.node)
			e.Pool, e.Details = t.pool, map[string]string{"node": t.node}
			return t, nil, e
		}
		w, ok := c.watches[key]
		fresh := !ok
		if fresh {
			w = newPoolWatch(c, t)
			c.watches[key] = w
		}
		c.dir.Sent(t.node, t.pool)
		c.mu.Unlock()
		if fresh {
			w.start()
		}
		if w.add(in) {
			return t, func() {
				w.remove(in)
				c.mu.Lock()
				c.dir.Done(t.node, t.pool)
				c.mu.Unlock()
			}, nil
		}
		// The watch ended between the lookup and the add: a fresh one.
		c.mu.Lock()
		c.dir.Done(t.node, t.pool)
		c.mu.Unlock()
	}
}

// watchEnded is called by a watch whose pool terminated.
func (c *cluster) watchEnded(w *poolWatch, addressTerminated bool) {
	c.mu.Lock()
	if c.watches[w.key] == w {
		delete(c.watches, w.key)
	}
	if addressTerminated {
		c.dir.MarkUnreachable(w.target.GetAddress(), time.Now().Add(c.quarantine))
	}
	c.mu.Unlock()
}

// poolWatch is one protoactor Watch on a remote pool, shared by every call
// in flight to it (one Watch per remote pool, not one per call). When the
// pool's node is lost (Terminated with AddressTerminated: its connection
// broke, or membership declared it down) every registered call is closed
// with node_down at once. A pool that merely stopped is not a lost node:
// its calls still get their own replies, and the watch just ends.
type poolWatch struct {
	c      *cluster
	key    string
	target *actor.PID
	node   string
	self   *actor.PID

	mu    sync.Mutex
	calls map[*inbox]struct{}
	ended bool
}

func newPoolWatch(c *cluster, t target) *poolWatch {
	return &poolWatch{c: c, key: t.pid.String(), target: t.pid, node: t.node, calls: map[*inbox]struct{}{}}
}

func (w *poolWatch) start() {
	system := w.c.app.system
	w.self, _ = system.ProcessRegistry.Add(w, "poolwatch"+system.ProcessRegistry.NextId())
	proc, _ := system.ProcessRegistry.Get(w.target)
	proc.SendSystemMessage(w.target, &actor.Watch{Watcher: w.self})
}

func (w *poolWatch) add(in *inbox) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return false
	}
	w.calls[in] = struct{}{}
	return true
}

func (w *poolWatch) remove(in *inbox) {
	w.mu.Lock()
	delete(w.calls, in)
	w.mu.Unlock()
}

// end closes the watch; with why set, every call in flight gets node_down.
func (w *poolWatch) end(why string) {
	w.mu.Lock()
	if w.ended {
		w.mu.Unlock()
		return
	}
	w.ended = true
	calls := make([]*inbox, 0, len(w.calls))
	for in := range w.calls {
		calls = append(calls, in)
	}
	w.calls = nil
	w.mu.Unlock()
	w.c.app.system.ProcessRegistry.Remove(w.self)
	if why == "" {
		return
	}
	for _, in := range calls {
		e := sperr.New(sperr.CodeNodeDown, "%s", why)
		e.Details = map[string]string{"node": w.node, "address": w.target.GetAddress()}
		in.closeWith(e)
	}
}

// unwatch ends the watch and tells the remote pool (the App is stopping).
func (w *poolWatch) unwatch() {
	if proc, ok := w.c.app.system.ProcessRegistry.Get(w.target); ok && w.self != nil {
		proc.SendSystemMessage(w.target, &actor.Unwatch{Watcher: w.self})
	}
	w.end("")
}

// SendUserMessage ignores user messages.
func (*poolWatch) SendUserMessage(*actor.PID, any) {}

// SendSystemMessage handles the pool's Terminated.
func (w *poolWatch) SendSystemMessage(_ *actor.PID, message any) {
	t, ok := message.(*actor.Terminated)
	if !ok {
		return
	}
	lost := t.GetWhy() == actor.TerminatedReason_AddressTerminated
	w.c.watchEnded(w, lost)
	why := ""
	if lost {
		why = fmt.Sprintf("node %s (%s) is unreachable: its connection was lost", w.node, w.target.GetAddress())
		w.c.app.log.Warn("lost the connection to a node", "node", w.node, "address", w.target.GetAddress())
	}
	w.end(why)
}

// Stop ends the watch.
func (w *poolWatch) Stop(*actor.PID) { w.end("") }

// poolAlias gives a pool a PID id that does not change when the node
// restarts (directory.PoolID: "snakepit/<instance>/pool/<name>"): it
// forwards every message, user and system (Watch included), to the pool's
// actor of this run.
type poolAlias struct {
	system *actor.ActorSystem
	pool   *actor.PID
}

func (p *poolAlias) SendUserMessage(_ *actor.PID, message any) {
	proc, _ := p.system.ProcessRegistry.Get(p.pool)
	proc.SendUserMessage(p.pool, message)
}

func (p *poolAlias) SendSystemMessage(_ *actor.PID, message any) {
	proc, _ := p.system.ProcessRegistry.Get(p.pool)
	proc.SendSystemMessage(p.pool, message)
}

func (p *poolAlias) Stop(*actor.PID) {}

// registerAliases gives every pool its stable id.
func (a *App) registerAliases() error {
	for _, name := range a.Pools() {
		id := directory.PoolID(a.cfg.InstanceName, name)
		pid, absent := a.system.ProcessRegistry.Add(&poolAlias{system: a.system, pool: a.pools[name]}, id)
		if !absent {
			a.removeAliases()
			return fmt.Errorf("snakepit: pool id %s is taken in this actor system (another App of instance %s?)", id, a.cfg.InstanceName)
		}
		a.aliases = append(a.aliases, pid)
	}
	return nil
}

func (a *App) removeAliases() {
	for _, pid := range a.aliases {
		a.system.ProcessRegistry.Remove(pid)
	}
	a.aliases = nil
}

// PoolID is the stable id of the named pool's address on this node: the
// same after a restart of this node (its run id is not in it), so another
// node can keep it (with Address, it names the pool from any node).
func (a *App) PoolID(name string) string {
	return directory.PoolID(a.cfg.InstanceName, a.poolName(name))
}

// resolve finds where a call to pool name goes: this node's pool, else,
// in a cluster, a node that has it. A pool on no node is pool_not_found at
// once, without a network round trip.
func (a *App) resolve(name, session string) (target, error) {
	name = a.poolName(name)
	if pid, ok := a.pools[name]; ok {
		return target{pid: pid, pool: name}, nil
	}
	if a.cluster != nil {
		return a.cluster.route(name, session, "")
	}
	e := sperr.New(sperr.CodePoolNotFound, "no pool named %q", name)
	e.Pool = name
	return target{}, e
}

// executeRemote runs a unary call on another node's pool. An idempotent
// call whose node went down runs once more on another node that has the
// pool (never a session's call, which belongs to its node); no other call
// is ever sent twice.
func (a *App) executeRemote(ctx context.Context, req *poolpb.Execute, t target, deadline time.Time, session string) (*Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := a.callRemote(ctx, req, &t, session, deadline)
		if err != nil && attempt == 0 && req.GetIdempotent() && session == "" && sperr.CodeOf(err) == sperr.CodeNodeDown && ctx.Err() == nil {
			next, rerr := a.cluster.route(t.pool, "", t.node)
			if rerr == nil {
				a.log.Info("retrying an idempotent call on another node", "pool", t.pool, "from", t.node, "to", next.node)
				t = next
				continue
			}
		}
		return res, err
	}
}

// callRemote sends one call to *t's pool and waits for its answer; *t
// becomes the target the call actually went to.
func (a *App) callRemote(ctx context.Context, req *poolpb.Execute, t *target, session string, deadline time.Time) (*Result, error) {
	in := newInbox(a.system, 1)
	defer in.close()
	var forget func()
	var err error
	if *t, forget, err = a.cluster.watch(*t, session, in); err != nil {
		return nil, err
	}
	defer forget()
	root := a.system.Root
	root.RequestWithCustomSender(t.pid, req, in.pid)
	m, err := in.next(ctx, time.Until(deadline)+replyGrace, a.stopped.Load())
	if err != nil {
		if ctx.Err() != nil || sperr.CodeOf(err) == sperr.CodeDeadlineExceeded {
			cancelCall(root, t.pid, req.GetRequestId())
		}
		return nil, err
	}
	res, ok := m.(*poolpb.Result)
	if !ok {
		return nil, sperr.New(sperr.CodeInternal, "unexpected reply %T from pool %s on node %s", m, t.pool, t.node)
	}
	return a.result(ctx, res)
}

// GossipAddress is the address other nodes join this one through
// (ClusterConfig.Seeds), or "" without a cluster.
func (a *App) GossipAddress() string {
	if a.cluster == nil {
		return ""
	}
	return a.cluster.member.Addr()
}
