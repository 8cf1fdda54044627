package loadgen

import (
	"testing"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"

	"github.com/snakepit-go/snakepit/proto/poolpb"
)

func deadResult(token string) *actor.DeadLetterEvent {
	return &actor.DeadLetterEvent{Message: &poolpb.Result{ResultJson: []byte(`{"token":"` + token + `"}`)}}
}

// A reply that reaches the dead letters for a call that already had its
// answer counts as late and makes the call answered twice; replies of other
// runs and other messages are not counted.
func TestCounterSeesLateAndDuplicateReplies(t *testing.T) {
	c := &counter{prefix: "run/1/", seen: map[string]int{}}
	c.count("run/1/1", false) // answered
	c.count("run/1/2", false) // answered
	c.onEvent(deadResult("run/1/1"))
	c.onEvent(deadResult("run/1/3"))                                                    // a late reply for a call that got node_down
	c.onEvent(deadResult("run/2/1"))                                                    // another run's
	c.onEvent(&actor.DeadLetterEvent{Message: &poolpb.Chunk{}})                         // not a result
	c.onEvent(&actor.DeadLetterEvent{Message: &poolpb.Result{ResultJson: []byte("[")}}) // not ours
	c.onEvent("not an event")
	assert.Equal(t, map[string]int{"run/1/1": 2, "run/1/2": 1, "run/1/3": 1}, c.seen)
	assert.Equal(t, int64(2), c.late)
}

func TestReportAdd(t *testing.T) {
	var r Report
	r.Add(Report{Calls: 3, OK: 2, NodeDown: 1, FirstNodeDownUnixNano: 50, Errors: map[string]int64{"x": 1},
		ByPool: map[string]PoolCount{"a": {Calls: 3, OK: 2, NodeDown: 1}}})
	r.Add(Report{Calls: 2, OK: 1, Lost: 1, AnsweredTwice: 1, LateReplies: 2, Wrong: 1, FirstNodeDownUnixNano: 40,
		Errors: map[string]int64{"x": 2, "y": 1}, ByPool: map[string]PoolCount{"a": {Calls: 2, OK: 1}}})
	r.Add(Report{FirstNodeDownUnixNano: 0})
	assert.Equal(t, Report{Calls: 5, OK: 3, NodeDown: 1, Lost: 1, AnsweredTwice: 1, LateReplies: 2, Wrong: 1,
		FirstNodeDownUnixNano: 40, Errors: map[string]int64{"x": 3, "y": 1},
		ByPool: map[string]PoolCount{"a": {Calls: 5, OK: 3, NodeDown: 1}}}, r)
}

func TestTokenOf(t *testing.T) {
	assert.Equal(t, "t", tokenOf([]byte(`{"token":"t","x":1}`)))
	assert.Equal(t, "", tokenOf([]byte(`"pong"`)))
	assert.Equal(t, "", tokenOf(nil))
}
