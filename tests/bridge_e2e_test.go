//go:build unix

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

func decodeJSON(t *testing.T, r *snakepit.Result) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(r.JSON, &v), "%s", r.JSON)
	return v
}

func TestPythonCallsGoHostToolsInASession(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "b", Size: 1}}})
	ctx := t.Context()
	require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "lookup", Description: "reads the session"},
		func(ctx context.Context, call *snakepit.ToolCall) (any, error) {
			sess, err := app.Session(ctx, call.SessionID)
			if err != nil {
				return nil, err
			}
			st, err := sess.State(ctx)
			if err != nil {
				return nil, err
			}
			var in struct{ X int }
			if err := call.Bind(&in); err != nil {
				return nil, err
			}
			return map[string]any{"user": string(st.Data["user"]), "x2": in.X * 2, "session": call.SessionID, "worker": call.WorkerID}, nil
		}))
	require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "deny"}, func(context.Context, *snakepit.ToolCall) (any, error) {
		return nil, errors.New("access denied for ada")
	}))
	require.NoError(t, app.RegisterStreamTool(snakepit.ToolSpec{Name: "ticks"},
		func(ctx context.Context, call *snakepit.ToolCall, send func(any) error) error {
			n, _ := call.Args["n"].(float64)
			for i := range int(n) {
				if err := send(map[string]int{"tick": i}); err != nil {
					return err
				}
			}
			return send(snakepit.Binary("end"))
		}))
	require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "reverse"}, func(_ context.Context, call *snakepit.ToolCall) (any, error) {
		b, ok := call.Args["data"].(snakepit.Binary)
		if !ok {
			return nil, fmt.Errorf("data is %T", call.Args["data"])
		}
		out := make([]byte, len(b))
		for i := range b {
			out[len(b)-1-i] = b[i]
		}
		return out, nil
	}))

	sess, err := app.Session(ctx, "user-42")
	require.NoError(t, err)
	_, err = sess.Update(ctx, snakepit.SessionUpdate{Data: map[string][]byte{"user": []byte("ada")}})
	require.NoError(t, err)

	res, err := sess.Execute(ctx, "call_host", map[string]any{"tool": "lookup", "args": map[string]any{"x": 21}})
	require.NoError(t, err)
	got := decodeJSON(t, res).(map[string]any)
	require.Equal(t, "ada", got["user"], "the Go tool saw the session's state")
	require.Equal(t, float64(42), got["x2"])
	require.Equal(t, "user-42", got["session"])
	require.Equal(t, res.WorkerID, got["worker"], "the host knows which worker called")

	_, err = sess.Execute(ctx, "call_host", map[string]any{"tool": "deny"})
	var serr *snakepit.Error
	require.ErrorAs(t, err, &serr)
	require.Equal(t, snakepit.CodePythonException, serr.Code)
	require.Equal(t, "HostToolError", serr.PythonType)
	require.Contains(t, serr.Message, "access denied for ada", "the Go error text reached Python")

	res, err = sess.Execute(ctx, "stream_host", map[string]any{"tool": "ticks", "args": map[string]any{"n": 3}})
	require.NoError(t, err)
	require.Equal(t, []any{map[string]any{"tick": float64(0)}, map[string]any{"tick": float64(1)},
		map[string]any{"tick": float64(2)}, map[string]any{"binary_len": float64(3)}}, decodeJSON(t, res))

	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	res, err = sess.Execute(ctx, "call_host_binary", map[string]any{"tool": "reverse"}, snakepit.WithBinary(map[string][]byte{"data": payload}))
	require.NoError(t, err)
	require.True(t, res.IsBinary)
	require.Len(t, res.Binary, len(payload))
	require.Equal(t, payload[len(payload)-1], res.Binary[0])
	require.Equal(t, payload[0], res.Binary[len(res.Binary)-1])
}

func TestBinaryRoundTripOf10MB(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "bin", Size: 1}}})
	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	res, err := app.Execute(t.Context(), "echo_binary", map[string]any{"note": "big"}, snakepit.WithBinary(map[string][]byte{"data": big}))
	require.NoError(t, err)
	require.True(t, res.IsBinary)
	require.True(t, bytes.Equal(big, res.Binary), "10 MB intact")
}

func TestSessionTTLExpiry(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "ttl", Size: 1}},
		Sessions: snakepit.SessionConfig{TTL: 300 * time.Millisecond, SweepInterval: 50 * time.Millisecond}})
	ctx := t.Context()
	sess, err := app.Session(ctx, "short-lived")
	require.NoError(t, err)
	_, err = sess.Execute(ctx, "ping", nil)
	require.NoError(t, err)
	// Watch the counters (reading the session itself would keep it alive).
	require.Eventually(t, func() bool {
		st, err := app.SessionStats(ctx)
		return err == nil && st.Expired == 1 && st.Active == 0
	}, 5*time.Second, 20*time.Millisecond, "the idle session expires and is swept")
	_, err = sess.State(ctx)
	require.ErrorIs(t, err, snakepit.ErrSessionNotFound)
	_, err = sess.Execute(ctx, "ping", nil)
	require.ErrorIs(t, err, snakepit.ErrSessionNotFound, "calls in an expired session fail clearly")
}

func TestSessionQuota(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "q", Size: 1}}, Sessions: snakepit.SessionConfig{MaxSessions: 2}})
	ctx := t.Context()
	a, err := app.Session(ctx, "a")
	require.NoError(t, err)
	_, err = app.Session(ctx, "b")
	require.NoError(t, err)
	_, err = app.Session(ctx, "c")
	require.ErrorIs(t, err, snakepit.ErrSessionQuotaExceeded)
	_, err = a.State(ctx)
	require.NoError(t, err, "nothing was evicted")
	require.NoError(t, a.Close(ctx))
	_, err = app.Session(ctx, "c")
	require.NoError(t, err)
}

func TestAffinityModesUnderContention(t *testing.T) {
	app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "aff", Size: 2}}})
	ctx := t.Context()
	sleep := func(ms int) map[string]any { return map[string]any{"ms": ms} }

	t.Run("strict_queue keeps each session on its worker", func(t *testing.T) {
		var wg sync.WaitGroup
		type res struct {
			session, worker string
			err             error
		}
		results := make(chan res, 3*4)
		for s := range 3 {
			sess, err := app.Session(ctx, fmt.Sprintf("sq-%d", s), snakepit.WithAffinity(snakepit.AffinityStrictQueue))
			require.NoError(t, err)
			first, err := sess.Execute(ctx, "ping", nil) // binds the session
			require.NoError(t, err)
			results <- res{sess.ID(), first.WorkerID, nil}
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r, err := sess.Execute(ctx, "sleep", sleep(30))
					if err != nil {
						results <- res{sess.ID(), "", err}
						return
					}
					results <- res{sess.ID(), r.WorkerID, nil}
				}()
			}
		}
		wg.Wait()
		close(results)
		workerOf := map[string]string{}
		for r := range results {
			require.NoError(t, r.err)
			if w, ok := workerOf[r.session]; ok {
				require.Equal(t, w, r.worker, "session %s left its worker", r.session)
			}
			workerOf[r.session] = r.worker
		}
		require.Len(t, workerOf, 3)
	})

	// Bind a session to a worker and keep that worker busy with a long call.
	busy := func(t *testing.T, id string, aff snakepit.Affinity) (*snakepit.Session, string, func()) {
		sess, err := app.Session(ctx, id, snakepit.WithAffinity(aff))
		require.NoError(t, err)
		first, err := sess.Execute(ctx, "ping", nil)
		require.NoError(t, err)
		// No wait here: the pool has the slot back before the ping's reply
		// reaches us, so the next strict call finds the worker free.
		done := make(chan error, 1)
		go func() { _, err := sess.Execute(ctx, "sleep", sleep(700)); done <- err }()
		waitStats(t, app, "aff", "the bound worker is busy", func(s statsView) bool { return s.Busy >= 1 })
		return sess, first.WorkerID, func() { require.NoError(t, <-done) }
	}

	t.Run("strict_fail_fast answers worker_busy", func(t *testing.T) {
		sess, _, wait := busy(t, "ff", snakepit.AffinityStrictFailFast)
		_, err := sess.Execute(ctx, "ping", nil)
		require.ErrorIs(t, err, snakepit.ErrWorkerBusy)
		wait()
	})

	t.Run("hint falls back to another worker", func(t *testing.T) {
		sess, bound, wait := busy(t, "hint", snakepit.AffinityHint)
		r, err := sess.Execute(ctx, "ping", nil)
		require.NoError(t, err)
		require.NotEqual(t, bound, r.WorkerID, "the busy bound worker was not waited for")
		wait()
	})

	t.Run("strict modes answer session_worker_unavailable when the worker is gone; state survives", func(t *testing.T) {
		sess, err := app.Session(ctx, "gone", snakepit.WithAffinity(snakepit.AffinityStrictQueue))
		require.NoError(t, err)
		_, err = sess.Update(ctx, snakepit.SessionUpdate{Data: map[string][]byte{"k": []byte("v")}})
		require.NoError(t, err)
		who, err := sess.Execute(ctx, "whoami", nil)
		require.NoError(t, err)
		pid := int(decodeJSON(t, who).(map[string]any)["pid"].(float64))
		before := waitStats(t, app, "aff", "idle", func(s statsView) bool { return s.Ready == 2 })
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
		waitStats(t, app, "aff", "the worker replaced", func(s statsView) bool { return s.Restarts > before.Restarts && s.Ready == 2 })
		_, err = sess.Execute(ctx, "ping", nil)
		require.ErrorIs(t, err, snakepit.ErrSessionWorkerUnavailable)
		st, err := sess.State(ctx)
		require.NoError(t, err)
		require.Equal(t, "v", string(st.Data["k"]), "the session's state lives on the host")
		// A hint call in the same session runs, and rebinds it.
		_, err = sess.Execute(ctx, "ping", nil, snakepit.WithAffinity(snakepit.AffinityHint))
		require.NoError(t, err)
		_, err = sess.Execute(ctx, "ping", nil)
		require.NoError(t, err, "strict again, on the new binding")
	})
}

func TestBridgeListenerModes(t *testing.T) {
	hello := func(context.Context, *snakepit.ToolCall) (any, error) { return "hello from Go", nil }
	t.Run("unix socket", func(t *testing.T) {
		app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "u", Size: 1}}, Bridge: snakepit.BridgeConfig{Mode: snakepit.BridgeUnix}})
		require.True(t, strings.HasPrefix(app.BridgeAddress(), "unix:"), app.BridgeAddress())
		require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "hello"}, hello))
		res, err := app.Execute(t.Context(), "call_host", map[string]any{"tool": "hello"})
		require.NoError(t, err)
		require.Equal(t, "hello from Go", decodeJSON(t, res))
		stopAndCheck(t, app)
		_, err = os.Stat(strings.TrimPrefix(app.BridgeAddress(), "unix:"))
		require.ErrorIs(t, err, os.ErrNotExist, "the socket is removed at stop")
	})
	t.Run("off", func(t *testing.T) {
		app := startApp(t, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "o", Size: 1}}, Bridge: snakepit.BridgeConfig{Mode: snakepit.BridgeOff}})
		require.Empty(t, app.BridgeAddress())
		_, err := app.Execute(t.Context(), "call_host", map[string]any{"tool": "hello"})
		require.ErrorIs(t, err, snakepit.ErrPythonException)
		require.ErrorContains(t, err, "no host connection")
	})
}
