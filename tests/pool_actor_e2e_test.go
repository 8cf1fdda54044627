//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

func TestActorUsesPoolDirectlyInEmbeddedSystem(t *testing.T) {
	testutil.Python(t)
	system := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10 * time.Millisecond))
	defer system.Shutdown()
	cfg := onePool(1, nil)
	cfg.PrivDir = repoPriv(t)
	cfg.Logger = testutil.QuietLogger(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	app, err := snakepit.StartIn(ctx, system, cfg)
	require.NoError(t, err)
	defer stopAndCheck(t, app)
	require.NoError(t, app.AwaitReady(ctx))

	c := testutil.NewPoolCaller(app.Pool(""))
	pid := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return c }))
	defer func() { _ = system.Root.StopFuture(pid).Wait() }()

	system.Root.Send(pid, &poolpb.Execute{RequestId: "r1", Tool: "add", ArgsJson: []byte(`{"a":1,"b":2}`)})
	res := c.Next(t).(*poolpb.Result)
	require.Nil(t, res.GetError())
	assert.Equal(t, "r1", res.GetRequestId())
	assert.JSONEq(t, "3", string(res.GetResultJson()))

	system.Root.Send(pid, &poolpb.Execute{RequestId: "r2", Tool: "stream_count", ArgsJson: []byte(`{"n":3}`), Stream: true})
	var indexes []int
	for {
		ch := c.Next(t).(*poolpb.Chunk)
		require.Nil(t, ch.GetError())
		if len(ch.GetData()) > 0 && ch.GetMetadata()["synthetic_final"] != "true" {
			var m struct{ Index int }
			require.NoError(t, json.Unmarshal(ch.GetData(), &m))
			indexes = append(indexes, m.Index)
		}
		if ch.GetIsFinal() {
			break
		}
	}
	assert.Equal(t, []int{0, 1, 2}, indexes)

	system.Root.Send(pid, &poolpb.Execute{RequestId: "r3", Tool: "raise_error", ArgsJson: []byte(`{"kind":"key","message":"k"}`)})
	res = c.Next(t).(*poolpb.Result)
	serr := snakepit.ErrorFromProto(res.GetError())
	require.NotNil(t, serr)
	assert.Equal(t, "KeyError", serr.PythonType)
}
