// Package loadgen drives calls through an App's pools by name and counts
// every reply, for the cluster demo and the multi-node tests.
//
// Each call echoes a token unique to it. A reply is counted when Execute
// returns it, and again when a pool's Result for one of this run's tokens
// reaches the actor system's dead letters — which is where a reply lands
// that arrives for a remote call after its caller had its answer (the
// call's inbox is gone). So a call answered twice, or a reply that arrives
// after the call was reported node_down, is seen, not swallowed. (A local
// pool replies over a Go channel that is dropped after the first reply;
// the local path's exactly-once is the chaos suite's to prove.)
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// Spec says what to drive.
type Spec struct {
	// Pools are called in turn, by name (routed by the App: local first,
	// then another node that has the pool).
	Pools []string `json:"pools"`
	// Concurrency is the number of calls in flight (default 4).
	Concurrency int `json:"concurrency,omitempty"`
	// DurationMS is how long new calls are started (default 2000).
	DurationMS int `json:"duration_ms,omitempty"`
	// TimeoutMS bounds each call (default 10000).
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// Idempotent marks the calls WithIdempotent.
	Idempotent bool `json:"idempotent,omitempty"`
}

// PoolCount is a Report's figures for one pool.
type PoolCount struct {
	Calls    int64 `json:"calls"`
	OK       int64 `json:"ok"`
	NodeDown int64 `json:"node_down"`
}

// Report is what a run saw.
type Report struct {
	// Calls were started; each ends OK, NodeDown, in Errors, or Lost.
	Calls    int64 `json:"calls"`
	OK       int64 `json:"ok"`
	NodeDown int64 `json:"node_down"`
	// Errors counts the other failures by error code.
	Errors map[string]int64 `json:"errors,omitempty"`
	// Lost calls had no answer when the run ended (their timeout plus a
	// grace after the last call was started).
	Lost int64 `json:"lost"`
	// AnsweredTwice counts calls with more than one result: an OK answer
	// and a reply after it, or two late replies.
	AnsweredTwice int64 `json:"answered_twice"`
	// LateReplies are results that arrived after their call had its
	// answer (a node_down call whose node did run it, or a duplicate).
	LateReplies int64 `json:"late_replies"`
	// Wrong counts OK answers that carried another call's token.
	Wrong int64 `json:"wrong"`
	// FirstNodeDownUnixNano is when the first node_down answer came (0:
	// none).
	FirstNodeDownUnixNano int64 `json:"first_node_down_unix_nano,omitempty"`
	// PerSecond is OK answers per second over the run.
	PerSecond float64              `json:"per_second"`
	ElapsedMS int64                `json:"elapsed_ms"`
	ByPool    map[string]PoolCount `json:"by_pool"`
}

// Add folds o into r (PerSecond and ElapsedMS are not summed).
func (r *Report) Add(o Report) {
	r.Calls += o.Calls
	r.OK += o.OK
	r.NodeDown += o.NodeDown
	r.Lost += o.Lost
	r.AnsweredTwice += o.AnsweredTwice
	r.LateReplies += o.LateReplies
	r.Wrong += o.Wrong
	if o.FirstNodeDownUnixNano != 0 && (r.FirstNodeDownUnixNano == 0 || o.FirstNodeDownUnixNano < r.FirstNodeDownUnixNano) {
		r.FirstNodeDownUnixNano = o.FirstNodeDownUnixNano
	}
	for k, v := range o.Errors {
		if r.Errors == nil {
			r.Errors = map[string]int64{}
		}
		r.Errors[k] += v
	}
	for k, v := range o.ByPool {
		if r.ByPool == nil {
			r.ByPool = map[string]PoolCount{}
		}
		c := r.ByPool[k]
		c.Calls += v.Calls
		c.OK += v.OK
		c.NodeDown += v.NodeDown
		r.ByPool[k] = c
	}
}

// runs makes every run's tokens unique in this process.
var runs atomic.Int64

// counter is the run's reply ledger: replies per token.
type counter struct {
	prefix string
	mu     sync.Mutex
	seen   map[string]int // token → results counted
	late   int64
}

func (c *counter) count(token string, late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[token]++
	if late {
		c.late++
	}
}

// onEvent counts a dead-lettered Result of this run.
func (c *counter) onEvent(ev any) {
	dl, ok := ev.(*actor.DeadLetterEvent)
	if !ok {
		return
	}
	res, ok := dl.Message.(*poolpb.Result)
	if !ok {
		return
	}
	if tok := tokenOf(res.GetResultJson()); strings.HasPrefix(tok, c.prefix) {
		c.count(tok, true)
	}
}

func tokenOf(js []byte) string {
	var m struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(js, &m) != nil {
		return ""
	}
	return m.Token
}

// Run drives spec's calls through app until its duration has passed and
// every call has its answer (or its timeout and a grace have passed), and
// reports what it saw. ctx ends it early.
func Run(ctx context.Context, app *snakepit.App, spec Spec) (Report, error) {
	if len(spec.Pools) == 0 {
		return Report{}, errors.New("loadgen: no pools to call")
	}
	conc := cmpOr(spec.Concurrency, 4)
	dur := time.Duration(cmpOr(spec.DurationMS, 2000)) * time.Millisecond
	timeout := time.Duration(cmpOr(spec.TimeoutMS, 10000)) * time.Millisecond

	c := &counter{prefix: fmt.Sprintf("%s/%d/", app.RunID(), runs.Add(1)), seen: map[string]int{}}
	sub := app.System().EventStream.Subscribe(c.onEvent)

	var (
		mu        sync.Mutex
		rep       = Report{ByPool: map[string]PoolCount{}}
		answered  atomic.Int64
		issued    atomic.Int64
		firstDown atomic.Int64
	)
	optsFor := map[string][]snakepit.ExecuteOption{} // built once, read by every caller
	for _, p := range spec.Pools {
		o := []snakepit.ExecuteOption{snakepit.WithTimeout(timeout), snakepit.WithPool(p)}
		if spec.Idempotent {
			o = append(o, snakepit.WithIdempotent())
		}
		optsFor[p] = o
	}
	start := time.Now()
	until := start.Add(dur)
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(until) && ctx.Err() == nil; i++ {
				pool := spec.Pools[(w+i)%len(spec.Pools)]
				seq := issued.Add(1)
				token := c.prefix + strconv.FormatInt(seq, 10)
				res, err := app.Execute(ctx, "echo", map[string]any{"token": token}, optsFor[pool]...)
				answered.Add(1)
				mu.Lock()
				pc := rep.ByPool[pool]
				pc.Calls++
				switch {
				case err == nil:
					pc.OK++
					rep.OK++
					if got := tokenOf(res.JSON); got != token {
						rep.Wrong++
					}
					c.count(token, false)
				case errors.Is(err, snakepit.ErrNodeDown):
					pc.NodeDown++
					rep.NodeDown++
					firstDown.CompareAndSwap(0, time.Now().UnixNano())
				default:
					if rep.Errors == nil {
						rep.Errors = map[string]int64{}
					}
					rep.Errors[codeOf(err)]++
				}
				rep.ByPool[pool] = pc
				mu.Unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	grace := time.NewTimer(dur + timeout + 5*time.Second)
	defer grace.Stop()
	select {
	case <-finished:
	case <-grace.C:
	}
	elapsed := time.Since(start)
	// Replies still on their way (a late one from a node that was only
	// slow) get a moment to arrive before the ledger is read.
	time.Sleep(200 * time.Millisecond)
	app.System().EventStream.Unsubscribe(sub)

	mu.Lock()
	defer mu.Unlock()
	out := rep
	out.ByPool = map[string]PoolCount{}
	for k, v := range rep.ByPool {
		out.ByPool[k] = v
	}
	out.Errors = nil
	for k, v := range rep.Errors {
		if out.Errors == nil {
			out.Errors = map[string]int64{}
		}
		out.Errors[k] = v
	}
	out.Calls = issued.Load()
	out.Lost = out.Calls - answered.Load()
	out.FirstNodeDownUnixNano = firstDown.Load()
	out.ElapsedMS = elapsed.Milliseconds()
	if elapsed > 0 {
		out.PerSecond = float64(out.OK) / elapsed.Seconds()
	}
	c.mu.Lock()
	for _, n := range c.seen {
		if n > 1 {
			out.AnsweredTwice++
		}
	}
	out.LateReplies = c.late
	c.mu.Unlock()
	return out, nil
}

func codeOf(err error) string {
	var e *snakepit.Error
	if errors.As(err, &e) {
		return string(e.Code)
	}
	return "other"
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
