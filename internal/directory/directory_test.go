package directory

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func node(name string, pools ...Pool) Node {
	return Node{Name: name, Address: "127.0.0.1:" + name, Instance: "inst-" + name, Pools: pools}
}

func TestRoute(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name    string
		nodes   []Node
		sent    map[string]int // node → calls in flight to pool "p"
		down    []string       // unreachable until after now
		exclude string
		want    string // "" = no route
	}{
		{name: "no node has it", nodes: []Node{node("a", Pool{"q", 4, 0})}},
		{name: "the only one", nodes: []Node{node("a", Pool{"p", 4, 3})}, want: "a"},
		{name: "least loaded by ratio", nodes: []Node{node("a", Pool{"p", 4, 2}), node("b", Pool{"p", 16, 4})}, want: "b"},
		{name: "own calls in flight count", nodes: []Node{node("a", Pool{"p", 4, 0}), node("b", Pool{"p", 4, 1})},
			sent: map[string]int{"a": 2}, want: "b"},
		{name: "ties go to fewer in flight", nodes: []Node{node("a", Pool{"p", 2, 1}), node("b", Pool{"p", 4, 1})},
			sent: map[string]int{"b": 1}, want: "a"},
		{name: "then by name", nodes: []Node{node("b", Pool{"p", 4, 0}), node("a", Pool{"p", 4, 0})}, want: "a"},
		{name: "unreachable skipped", nodes: []Node{node("a", Pool{"p", 4, 0}), node("b", Pool{"p", 4, 3})},
			down: []string{"a"}, want: "b"},
		{name: "excluded skipped", nodes: []Node{node("a", Pool{"p", 4, 0}), node("b", Pool{"p", 4, 3})},
			exclude: "a", want: "b"},
		{name: "all excluded", nodes: []Node{node("a", Pool{"p", 4, 0})}, exclude: "a"},
		{name: "zero capacity still routable", nodes: []Node{node("a", Pool{"p", 0, 0})}, want: "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := New()
			for _, n := range tc.nodes {
				d.Upsert(n, true)
			}
			for n, k := range tc.sent {
				for range k {
					d.Sent(n, "p")
				}
			}
			for _, n := range tc.down {
				d.MarkUnreachable("127.0.0.1:"+n, now.Add(time.Second))
			}
			got, ok := d.Route("p", now, func(n string) bool { return n == tc.exclude })
			if tc.want == "" {
				assert.False(t, ok, "routed to %q", got.Name)
				return
			}
			require.True(t, ok)
			assert.Equal(t, tc.want, got.Name)
		})
	}
}

func TestUnreachableEndsAndRejoinClearsIt(t *testing.T) {
	d := New()
	now := time.Unix(1000, 0)
	d.Upsert(node("a", Pool{"p", 1, 0}), true)
	assert.True(t, d.Reachable("a", now))
	assert.False(t, d.Reachable("zz", now), "an unknown node is not reachable")
	d.MarkUnreachable("127.0.0.1:a", now.Add(time.Second))
	_, ok := d.Route("p", now, nil)
	assert.False(t, ok)
	assert.False(t, d.Reachable("a", now))
	_, ok = d.Route("p", now.Add(time.Second), nil)
	assert.True(t, ok, "the quarantine ends")
	assert.True(t, d.Reachable("a", now.Add(time.Second)))

	d.MarkUnreachable("127.0.0.1:a", now.Add(time.Hour))
	d.Upsert(node("a", Pool{"p", 1, 0}), false) // a load update: still out
	_, ok = d.Route("p", now, nil)
	assert.False(t, ok)
	d.Upsert(node("a", Pool{"p", 1, 0}), true) // it joined again
	_, ok = d.Route("p", now, nil)
	assert.True(t, ok)
}

func TestRemoveAndLookups(t *testing.T) {
	d := New()
	d.Upsert(node("b", Pool{"p", 1, 0}), true)
	d.Upsert(node("a", Pool{"q", 1, 0}), true)
	assert.True(t, d.Has("p"))
	assert.False(t, d.Has("r"))
	n, ok := d.ByAddress("127.0.0.1:a")
	require.True(t, ok)
	assert.Equal(t, "a", n.Name)
	assert.Equal(t, []string{"a", "b"}, names(d.Nodes()))
	d.Sent("b", "p")
	d.Done("b", "p")
	d.Done("b", "p") // never below zero
	d.Sent("gone", "p")
	got, ok := d.Remove("b")
	require.True(t, ok)
	assert.Equal(t, "b", got.Name)
	assert.False(t, d.Has("p"))
	_, ok = d.Remove("b")
	assert.False(t, ok)
}

func names(ns []Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Name)
	}
	return out
}

func TestMetaRoundTripAndSize(t *testing.T) {
	n := node("a", Pool{"default", 4, 1}, Pool{"gpu", 2, 0})
	got, err := Decode("a", Encode(n))
	require.NoError(t, err)
	assert.Equal(t, n, got)

	for _, bad := range []string{"", "{", `{"v":2,"a":"x","i":"y"}`, `{"v":1,"i":"y"}`, `{"v":1,"a":"x"}`} {
		_, err := Decode("a", []byte(bad))
		assert.ErrorIs(t, err, ErrMeta, bad)
	}
	// Eight pools with 20-character names and large numbers fit memberlist's
	// 512 bytes, with a 40-character instance name.
	var pools []Pool
	for i := range 8 {
		pools = append(pools, Pool{fmt.Sprintf("pool-%015d", i), 1 << 20, 1 << 20})
	}
	big := Node{Address: "255.255.255.255:65535", Instance: fmt.Sprintf("%040d", 0), Pools: pools}
	assert.LessOrEqual(t, len(Encode(big)), 512, "%s", Encode(big))
	assert.Equal(t, "snakepit/i/pool/p", PoolID("i", "p"))
}

// Properties: a route always names a reachable, not excluded node that
// advertises the pool, and no such node is less loaded.
func TestRouteProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		d := New()
		now := time.Unix(1000, 0)
		count := rapid.IntRange(0, 6).Draw(t, "nodes")
		for i := range count {
			name := fmt.Sprintf("n%d", i)
			var pools []Pool
			for _, p := range []string{"p", "q"} {
				if rapid.Bool().Draw(t, name+p) {
					pools = append(pools, Pool{p, rapid.IntRange(0, 8).Draw(t, name+p+"cap"), rapid.IntRange(0, 8).Draw(t, name+p+"load")})
				}
			}
			d.Upsert(node(name, pools...), true)
			for range rapid.IntRange(0, 4).Draw(t, name+"sent") {
				d.Sent(name, "p")
			}
			if rapid.Bool().Draw(t, name+"down") {
				d.MarkUnreachable("127.0.0.1:"+name, now.Add(time.Second))
			}
		}
		excluded := rapid.IntRange(-1, count).Draw(t, "exclude")
		exclude := func(n string) bool { return n == fmt.Sprintf("n%d", excluded) }
		got, ok := d.Route("p", now, exclude)
		score := func(e *entry) float64 {
			p := e.node.Pools[e.has("p")]
			return float64(p.Load+e.inflight["p"]) / float64(max(p.Capacity, 1))
		}
		eligible := 0
		for name, e := range d.nodes {
			if e.has("p") < 0 || now.Before(e.unreachable) || exclude(name) {
				if ok && got.Name == name {
					t.Fatalf("routed to ineligible %s", name)
				}
				continue
			}
			eligible++
			if ok && score(e) < score(d.nodes[got.Name]) {
				t.Fatalf("%s (%.2f) is less loaded than the route %s (%.2f)", name, score(e), got.Name, score(d.nodes[got.Name]))
			}
		}
		if ok != (eligible > 0) {
			t.Fatalf("ok=%v with %d eligible nodes", ok, eligible)
		}
	})
}
