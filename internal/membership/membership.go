// Package membership is a node's view of its cluster: who is alive and what
// each member advertises. It wraps hashicorp/memberlist (SWIM gossip with
// Lifeguard's awareness, the library under Consul and Serf): joining through
// seeds, leaving at stop, failure detection, and each member's metadata
// (NodeMeta, at most MetaMaxSize bytes), which the App fills with its pools.
//
// Every packet is encrypted and authenticated with a key derived from the
// cluster secret (memberlist's keyring, AES-GCM) and carries the cluster's
// label, so a node without the secret, or of another cluster, is not heard.
// The listener binds the configured address only.
package membership

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MetaMaxSize is the most metadata a member can advertise (memberlist's
// limit).
const MetaMaxSize = memberlist.MetaMaxSize

// Timings tune failure detection and gossip. Zero fields take the
// profile's value.
type Timings struct {
	// ProbeInterval is how often a member probes a random other one.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a probe waits for its ack before the
	// indirect probes.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspected member has to refute
	// (SuspicionMult × log10(N) × ProbeInterval) before it is declared
	// dead.
	SuspicionMult int
	// GossipInterval is how often updates are gossiped.
	GossipInterval time.Duration
	// PushPullInterval is how often two members sync their whole state.
	PushPullInterval time.Duration
	// RejoinInterval is how often a member that knows no other tries its
	// seeds again.
	RejoinInterval time.Duration
}

// LAN is the profile for a local network (memberlist's LAN defaults): a
// killed member is declared dead in about 5 s.
var LAN = Timings{
	ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, SuspicionMult: 4,
	GossipInterval: 200 * time.Millisecond, PushPullInterval: 30 * time.Second, RejoinInterval: 5 * time.Second,
}

// Loopback is the profile for members on one machine (tests, demos): a
// killed member is declared dead in about 0.6–1 s.
var Loopback = Timings{
	ProbeInterval: 200 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, SuspicionMult: 2,
	GossipInterval: 50 * time.Millisecond, PushPullInterval: 5 * time.Second, RejoinInterval: 500 * time.Millisecond,
}

// withDefaults fills t's zero fields from p.
func (t Timings) withDefaults(p Timings) Timings {
	if t.ProbeInterval <= 0 {
		t.ProbeInterval = p.ProbeInterval
	}
	if t.ProbeTimeout <= 0 {
		t.ProbeTimeout = p.ProbeTimeout
	}
	if t.SuspicionMult <= 0 {
		t.SuspicionMult = p.SuspicionMult
	}
	if t.GossipInterval <= 0 {
		t.GossipInterval = p.GossipInterval
	}
	if t.PushPullInterval <= 0 {
		t.PushPullInterval = p.PushPullInterval
	}
	if t.RejoinInterval <= 0 {
		t.RejoinInterval = p.RejoinInterval
	}
	return t
}

// DetectionWindow is about the longest a killed member stays alive in the
// view of the others: a probe round, the indirect probes, and the
// suspicion timeout for a cluster of n members.
func (t Timings) DetectionWindow(n int) time.Duration {
	t = t.withDefaults(LAN)
	// memberlist: suspicion timeout = mult × max(1, log10(max(1, n))) × interval.
	scale := 1.0
	for m := n; m >= 10; m /= 10 {
		scale++
	}
	return 2*t.ProbeInterval + t.ProbeTimeout + time.Duration(float64(t.SuspicionMult)*scale*float64(t.ProbeInterval))
}

// Config configures one member.
type Config struct {
	// Cluster names the cluster; members of another cluster are not heard
	// (it is memberlist's packet label).
	Cluster string
	// Name is this member's name, unique in the cluster.
	Name string
	// Bind is the host:port the gossip listener (UDP and TCP) binds; port 0
	// picks one. The host must be an IP address: the listener binds it
	// alone, never every interface.
	Bind string
	// Advertise is the host:port other members reach this one at (default:
	// the bound address).
	Advertise string
	// Seeds are members' gossip addresses (host:port) to join through.
	Seeds []string
	// Secret is the cluster secret; every member needs the same one.
	Secret string
	// Timings tune failure detection (zero fields: LAN).
	Timings Timings
	// Meta returns this member's metadata (at most MetaMaxSize bytes); it
	// is called whenever memberlist gossips this member's state.
	Meta func() []byte
	// OnChange is called, on a goroutine of its own and one call at a time,
	// after a member joined, changed its metadata or left (or died).
	OnChange func(Event)
	// Logger receives memberlist's log (its debug lines at debug).
	Logger *slog.Logger
}

// EventKind says what happened to a member.
type EventKind int

// Event kinds.
const (
	Joined EventKind = iota
	Updated
	Left
)

func (k EventKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Updated:
		return "updated"
	default:
		return "left"
	}
}

// Event is a change of one member.
type Event struct {
	Kind EventKind
	Name string
	// Addr is the member's gossip address.
	Addr string
	Meta []byte
}

// Member is this node's membership in its cluster.
type Member struct {
	cfg    Config
	list   *memberlist.Memberlist
	addr   string // advertised gossip address, read once at Start
	events chan Event
	quit   chan struct{}
	wg     sync.WaitGroup
	stop   sync.Once

	mu    sync.Mutex
	known map[string]Event // the other members alive, by name
}

// ErrConfig wraps a configuration mistake.
var ErrConfig = errors.New("membership: bad configuration")

// Start binds the gossip listener and joins the seeds that answer. Seeds
// that do not answer yet are retried in the background (every
// Timings.RejoinInterval) while this member knows no other, so members may
// start in any order.
func Start(cfg Config) (*Member, error) {
	if cfg.Secret == "" {
		return nil, fmt.Errorf("%w: a cluster secret is required", ErrConfig)
	}
	if cfg.Name == "" || cfg.Cluster == "" {
		return nil, fmt.Errorf("%w: Cluster and Name are required", ErrConfig)
	}
	host, port, err := splitHostPort(cfg.Bind)
	if err != nil {
		return nil, fmt.Errorf("%w: Bind %q: %v", ErrConfig, cfg.Bind, err)
	}
	if net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%w: Bind %q: the host must be an IP address", ErrConfig, cfg.Bind)
	}
	t := cfg.Timings.withDefaults(LAN)
	cfg.Timings = t
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.Label = "snakepit/" + cfg.Cluster
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = "", 0
	if cfg.Advertise != "" {
		ah, ap, err := splitHostPort(cfg.Advertise)
		if err != nil {
			return nil, fmt.Errorf("%w: Advertise %q: %v", ErrConfig, cfg.Advertise, err)
		}
		mc.AdvertiseAddr, mc.AdvertisePort = ah, ap
	}
	key := sha256.Sum256([]byte("snakepit-cluster\x00" + cfg.Secret))
	mc.SecretKey = key[:]
	mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult = t.ProbeInterval, t.ProbeTimeout, t.SuspicionMult
	mc.GossipInterval, mc.PushPullInterval = t.GossipInterval, t.PushPullInterval
	mc.GossipToTheDeadTime = 2 * t.PushPullInterval
	// A restarted member may come back under its name at a new address.
	mc.DeadNodeReclaimTime = t.ProbeInterval
	mc.TCPTimeout = max(t.ProbeTimeout*4, time.Second)
	mc.Logger = log.New(&logWriter{log: cfg.Logger}, "", 0)
	m := &Member{cfg: cfg, events: make(chan Event, 256), quit: make(chan struct{}), known: map[string]Event{}}
	mc.Delegate = delegate{m}
	mc.Events = events{m}
	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: start gossip on %s: %w", cfg.Bind, err)
	}
	m.list = list
	// The advertised address is fixed once Create returns; memberlist
	// rewrites the local node's fields on every metadata update, so it is
	// read here, once, and never again.
	n := list.LocalNode()
	m.addr = net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
	m.wg.Add(2)
	go m.deliver()
	go m.joinLoop()
	return m, nil
}

func splitHostPort(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return host, port, nil
}

// Addr is the gossip address other members reach this one at.
func (m *Member) Addr() string { return m.addr }

// Name is this member's name.
func (m *Member) Name() string { return m.cfg.Name }

// Members lists the other members alive in this member's view, as the
// events told them (memberlist's own Members hands out nodes it goes on
// changing under its lock, which a reader would race with).
func (m *Member) Members() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, 0, len(m.known))
	for _, e := range m.known {
		out = append(out, e)
	}
	return out
}

// Publish gossips this member's metadata again (after Meta's answer
// changed).
func (m *Member) Publish(timeout time.Duration) error {
	return m.list.UpdateNode(timeout)
}

// Stop leaves the cluster (the others hear it at once instead of
// detecting a failure) and closes the listener.
func (m *Member) Stop(timeout time.Duration) error { return m.shutdown(true, timeout) }

// shutdown closes the member, leaving first when leave is set (a member
// that does not leave looks killed to the others).
func (m *Member) shutdown(leave bool, timeout time.Duration) error {
	var err error
	m.stop.Do(func() {
		close(m.quit)
		if leave {
			err = m.list.Leave(timeout)
		}
		if e := m.list.Shutdown(); err == nil {
			err = e
		}
		m.wg.Wait()
	})
	return err
}

// joinLoop joins the seeds, and again whenever this member is alone.
func (m *Member) joinLoop() {
	defer m.wg.Done()
	if len(m.cfg.Seeds) == 0 {
		return
	}
	tick := time.NewTicker(m.cfg.Timings.RejoinInterval)
	defer tick.Stop()
	for {
		if len(m.Members()) == 0 {
			if n, err := m.list.Join(m.cfg.Seeds); err != nil && n == 0 {
				m.cfg.Logger.Debug("membership: no seed answered yet", "seeds", m.cfg.Seeds, "error", err)
			}
		}
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
	}
}

// deliver hands events to OnChange, off memberlist's goroutines.
func (m *Member) deliver() {
	defer m.wg.Done()
	for {
		select {
		case e := <-m.events:
			if m.cfg.OnChange != nil {
				m.cfg.OnChange(e)
			}
		case <-m.quit:
			return
		}
	}
}

func (m *Member) notify(kind EventKind, n *memberlist.Node) {
	if n.Name == m.cfg.Name {
		return
	}
	// Called under memberlist's lock: n is read here and nowhere else.
	e := Event{Kind: kind, Name: n.Name, Addr: n.Address(), Meta: bytes.Clone(n.Meta)}
	m.mu.Lock()
	if kind == Left {
		delete(m.known, e.Name)
	} else {
		m.known[e.Name] = e
	}
	m.mu.Unlock()
	select {
	case m.events <- e:
	case <-m.quit:
	}
}

// delegate gives memberlist this member's metadata.
type delegate struct{ m *Member }

func (d delegate) NodeMeta(limit int) []byte {
	if d.m.cfg.Meta == nil {
		return nil
	}
	b := d.m.cfg.Meta()
	if len(b) > limit {
		d.m.cfg.Logger.Error("membership: metadata too large; advertising none", "bytes", len(b), "limit", limit)
		return nil
	}
	return b
}
func (delegate) NotifyMsg([]byte)                {}
func (delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (delegate) LocalState(bool) []byte          { return nil }
func (delegate) MergeRemoteState([]byte, bool)   {}

// events queues memberlist's member events.
type events struct{ m *Member }

func (e events) NotifyJoin(n *memberlist.Node)   { e.m.notify(Joined, n) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.m.notify(Left, n) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.notify(Updated, n) }

var logLevels = []struct {
	prefix string
	level  slog.Level
}{{"[DEBUG]", slog.LevelDebug}, {"[INFO]", slog.LevelInfo}, {"[WARN]", slog.LevelWarn}, {"[ERR]", slog.LevelError}}

// logWriter turns memberlist's "[LEVEL] memberlist: ..." lines into slog
// records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	level := slog.LevelInfo
	for _, p := range logLevels {
		if rest, ok := strings.CutPrefix(line, p.prefix); ok {
			level, line = p.level, strings.TrimSpace(rest)
			break
		}
	}
	w.log.Log(context.Background(), level, line, "lib", "memberlist")
	return len(p), nil
}

var _ io.Writer = (*logWriter)(nil)
