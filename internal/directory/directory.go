// Package directory is a node's table of the pools other nodes of its
// cluster serve: which node has a pool of a name, at which actor address,
// with what capacity and load, and where a call for that pool goes. It is
// pure (no goroutines, no clock of its own, not safe for concurrent use):
// the App feeds it membership events and asks it for routes under its own
// lock.
package directory

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Pool is one pool a node advertises.
type Pool struct {
	Name string `json:"n"`
	// Capacity is how many calls the pool runs at once (its workers'
	// capacity); Load how many it has running or queued.
	Capacity int `json:"c"`
	Load     int `json:"l"`
}

// Node is what a member of the cluster advertises: its actor system's
// address, its instance (which makes its pools' stable PID ids) and its
// pools.
type Node struct {
	Name     string `json:"-"`
	Address  string `json:"a"`
	Instance string `json:"i"`
	Pools    []Pool `json:"p"`
}

// Version is the metadata format's version; a node ignores members that
// advertise another.
const Version = 1

type wire struct {
	V int `json:"v"`
	Node
}

// Encode is n's metadata.
func Encode(n Node) []byte {
	b, _ := json.Marshal(wire{V: Version, Node: n}) // plain strings and ints: cannot fail
	return b
}

// ErrMeta is returned for metadata that is not a node's.
var ErrMeta = errors.New("directory: not a snakepit node's metadata")

// Decode reads a member's metadata.
func Decode(name string, meta []byte) (Node, error) {
	var w wire
	if err := json.Unmarshal(meta, &w); err != nil {
		return Node{}, fmt.Errorf("%w: %v", ErrMeta, err)
	}
	if w.V != Version || w.Address == "" || w.Instance == "" {
		return Node{}, fmt.Errorf("%w: version %d, address %q, instance %q", ErrMeta, w.V, w.Address, w.Instance)
	}
	w.Name = name
	return w.Node, nil
}

// PoolID is the stable id of pool name's actor on a node of instance: it
// does not change when the node restarts.
func PoolID(instance, pool string) string { return "snakepit/" + instance + "/pool/" + pool }

type entry struct {
	node Node
	// inflight counts the calls this node has sent to each of the node's
	// pools and not had answered: load the node's advertisement cannot
	// show yet.
	inflight map[string]int
	// unreachable: a connection to the node was lost; no route goes there
	// until then (or until membership reports it again).
	unreachable time.Time
}

// Directory is the table.
type Directory struct {
	nodes map[string]*entry
}

// New returns an empty directory.
func New() *Directory { return &Directory{nodes: map[string]*entry{}} }

// Upsert records node n (joined or updated). A node that (re)joins is
// reachable again.
func (d *Directory) Upsert(n Node, joined bool) {
	e, ok := d.nodes[n.Name]
	if !ok {
		e = &entry{inflight: map[string]int{}}
		d.nodes[n.Name] = e
	}
	if joined || e.node.Address != n.Address {
		e.unreachable = time.Time{}
	}
	e.node = n
}

// Remove forgets node name (it left or died) and returns it.
func (d *Directory) Remove(name string) (Node, bool) {
	e, ok := d.nodes[name]
	if !ok {
		return Node{}, false
	}
	delete(d.nodes, name)
	return e.node, true
}

// ByAddress returns the node whose actor system is at address.
func (d *Directory) ByAddress(address string) (Node, bool) {
	for _, e := range d.nodes {
		if e.node.Address == address {
			return e.node, true
		}
	}
	return Node{}, false
}

// MarkUnreachable takes the node at address out of routing until until.
func (d *Directory) MarkUnreachable(address string, until time.Time) {
	for _, e := range d.nodes {
		if e.node.Address == address {
			e.unreachable = until
		}
	}
}

// Reachable reports whether node is in the directory and not quarantined
// as unreachable at now.
func (d *Directory) Reachable(node string, now time.Time) bool {
	e, ok := d.nodes[node]
	return ok && !now.Before(e.unreachable)
}

// Has reports whether some node advertises pool.
func (d *Directory) Has(pool string) bool {
	for _, e := range d.nodes {
		if e.has(pool) >= 0 {
			return true
		}
	}
	return false
}

func (e *entry) has(pool string) int {
	return slices.IndexFunc(e.node.Pools, func(p Pool) bool { return p.Name == pool })
}

// Route picks the node for a call to pool: among the reachable nodes that
// advertise it and are not excluded, the least loaded — (advertised load +
// this node's calls in flight there) / capacity — ties broken by fewer
// calls in flight, then by name. ok is false when none qualifies.
func (d *Directory) Route(pool string, now time.Time, exclude func(node string) bool) (_ Node, ok bool) {
	var best *entry
	var bestScore float64
	for name, e := range d.nodes {
		i := e.has(pool)
		if i < 0 || now.Before(e.unreachable) || (exclude != nil && exclude(name)) {
			continue
		}
		p := e.node.Pools[i]
		score := float64(p.Load+e.inflight[pool]) / float64(max(p.Capacity, 1))
		if best == nil || score < bestScore ||
			(score == bestScore && (e.inflight[pool] < best.inflight[pool] ||
				(e.inflight[pool] == best.inflight[pool] && name < best.node.Name))) {
			best, bestScore = e, score
		}
	}
	if best == nil {
		return Node{}, false
	}
	return best.node, true
}

// Sent counts a call sent to node's pool; Done counts its answer.
func (d *Directory) Sent(node, pool string) {
	if e, ok := d.nodes[node]; ok {
		e.inflight[pool]++
	}
}

// Done counts the answer of a call Sent to node's pool.
func (d *Directory) Done(node, pool string) {
	if e, ok := d.nodes[node]; ok && e.inflight[pool] > 0 {
		e.inflight[pool]--
	}
}

// Nodes lists the nodes by name.
func (d *Directory) Nodes() []Node {
	out := make([]Node, 0, len(d.nodes))
	for _, e := range d.nodes {
		out = append(out, e.node)
	}
	slices.SortFunc(out, func(a, b Node) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}
