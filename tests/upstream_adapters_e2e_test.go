//go:build unix

package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// upstreamAdapters is the directory of adapters written in upstream
// Snakepit 0.13's style (tests/testdata/upstream/upstream_style.py).
func upstreamAdapters(t *testing.T) string {
	return filepath.Join(testutil.RepoRoot(t), "tests", "testdata", "upstream")
}

// Adapters written for upstream Snakepit load and run unchanged: they assign
// self.session_context, dispatch in their own execute_tool, stream chunk
// objects, take and return bytes, call host tools by upstream's name, list
// and register their tools and import the top-level protobuf modules.
func TestUpstreamStyleAdaptersRunUnchanged(t *testing.T) {
	app := startApp(t, snakepit.Config{
		PythonPath: []string{upstreamAdapters(t)},
		Pools: []snakepit.PoolConfig{
			{Name: "up", Size: 1, Adapter: "upstream_style.UpstreamStyleAdapter"},
			{Name: "plain", Size: 1, Adapter: "upstream_style.PlainExecuteToolAdapter"},
		},
	})
	require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "triple", Description: "x3"},
		func(_ context.Context, call *snakepit.ToolCall) (any, error) {
			var in struct{ Value int }
			if err := call.Bind(&in); err != nil {
				return nil, err
			}
			return map[string]any{"tripled": in.Value * 3, "session": call.SessionID}, nil
		}))
	ctx := t.Context()
	up := snakepit.WithPool("up")

	t.Run("unary through the adapter's own handlers", func(t *testing.T) {
		res, err := app.Execute(ctx, "ping", map[string]any{"message": "hi"}, up)
		require.NoError(t, err)
		got := decodeJSON(t, res).(map[string]any)
		assert.Equal(t, "hi", got["message"])
		assert.Equal(t, true, got["initialized"], "initialize() ran before the first call")
	})
	t.Run("unary through self.call_tool, sync and async", func(t *testing.T) {
		res, err := app.Execute(ctx, "add", map[string]any{"a": 2, "b": 40.5}, up)
		require.NoError(t, err)
		assert.Equal(t, 42.5, decodeJSON(t, res))
		res, err = app.Execute(ctx, "slow_echo", map[string]any{"text": "later"}, up)
		require.NoError(t, err)
		assert.Equal(t, "later", decodeJSON(t, res))
	})
	t.Run("streaming chunk objects, from execute_tool and from a tool", func(t *testing.T) {
		st, err := app.ExecuteStream(ctx, "count_chunks", map[string]any{"count": 3}, up)
		require.NoError(t, err)
		var squares []int
		var final bool
		for c, err := range st.Chunks() {
			require.NoError(t, err)
			var m struct {
				Square *int
				Done   bool
			}
			require.NoError(t, c.Decode(&m))
			if m.Square != nil {
				squares = append(squares, *m.Square)
				assert.Equal(t, fmt.Sprint(len(squares)-1), c.Metadata["n"], "the chunk's metadata travels")
			}
			final = c.Final && m.Done
		}
		assert.Equal(t, []int{0, 1, 4}, squares)
		assert.True(t, final, "the chunk the adapter marked final ends the stream")

		st, err = app.ExecuteStream(ctx, "words", map[string]any{"text": "one two three"}, up)
		require.NoError(t, err)
		var words []string
		for c, err := range st.Chunks() {
			require.NoError(t, err)
			if len(c.Data) > 0 {
				words = append(words, string(c.Data))
			}
		}
		assert.Equal(t, []string{"one", "two", "three"}, words)
	})
	t.Run("binary in and out", func(t *testing.T) {
		blob := []byte("\x00\x01upstream\xff")
		res, err := app.Execute(ctx, "digest", map[string]any{}, up, snakepit.WithBinary(map[string][]byte{"blob": blob}))
		require.NoError(t, err)
		sum := sha256.Sum256(blob)
		assert.Equal(t, map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": float64(len(blob))}, decodeJSON(t, res))
		res, err = app.Execute(ctx, "reverse_bytes", map[string]any{}, up, snakepit.WithBinary(map[string][]byte{"blob": blob}))
		require.NoError(t, err)
		require.True(t, res.IsBinary, "bytes come back as bytes (upstream turned them into a string)")
		assert.Equal(t, []byte("\xffmaertspu\x01\x00"), res.Binary)
	})
	t.Run("sessions: the context the adapter assigned is the call's", func(t *testing.T) {
		for _, id := range []string{"up-sess-a", "up-sess-b"} {
			sess, err := app.Session(ctx, id, up)
			require.NoError(t, err)
			res, err := sess.Execute(ctx, "session_echo", map[string]any{"value": id})
			require.NoError(t, err)
			got := decodeJSON(t, res).(map[string]any)
			assert.Equal(t, id, got["value"])
			for _, k := range []string{"context_session", "attribute_session", "private_session", "property_session"} {
				assert.Equal(t, id, got[k], k)
			}
			assert.Equal(t, true, got["same_object"], "self.session_context is the context execute_tool got")
			assert.Greater(t, got["contexts_seen"], float64(0), "the adapter's own set_session_context was called")
		}
	})
	t.Run("host tools by upstream's names", func(t *testing.T) {
		sess, err := app.Session(ctx, "up-host", up)
		require.NoError(t, err)
		res, err := sess.Execute(ctx, "ask_host", map[string]any{"name": "triple", "value": 14})
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"tripled": float64(42), "session": "up-host"}, decodeJSON(t, res))
		res, err = sess.Execute(ctx, "host_tool_names", nil)
		require.NoError(t, err)
		assert.Contains(t, decodeJSON(t, res), "triple")
		res, err = sess.Execute(ctx, "ask_missing", nil)
		require.NoError(t, err)
		assert.Contains(t, decodeJSON(t, res), "ValueError: ", "an unknown host tool is a ValueError, as upstream's")
	})
	t.Run("get_tools, register_with_session and the top-level protobuf modules", func(t *testing.T) {
		sess, err := app.Session(ctx, "up-reg", up)
		require.NoError(t, err)
		res, err := sess.Execute(ctx, "register_again", nil)
		require.NoError(t, err)
		assert.Greater(t, decodeJSON(t, res).(map[string]any)["registered"], float64(5),
			"registering again through the context's stub is accepted")
		res, err = app.Execute(ctx, "describe", nil, up)
		require.NoError(t, err)
		got := decodeJSON(t, res).(map[string]any)
		assert.Contains(t, got["names"], "add")
		assert.Contains(t, got["names"], "ask_host")
		assert.Equal(t, true, got["all_registrations"])
		assert.Equal(t, "built by the adapter", got["own"])
		assert.Equal(t, "UpstreamStyleAdapter", got["metadata"].(map[string]any)["adapter_class"])
		assert.Equal(t, map[string]any{"description": "Adds two numbers", "supports_streaming": true}, got["decorator"])
	})
	t.Run("errors keep the adapter's exception type", func(t *testing.T) {
		for tool, want := range map[string]string{"explode": "RuntimeError", "no_such_tool": "ValueError"} {
			_, err := app.Execute(ctx, tool, map[string]any{"reason": "on purpose"}, up)
			var serr *snakepit.Error
			require.ErrorAs(t, err, &serr, tool)
			assert.Equal(t, snakepit.CodePythonException, serr.Code, tool)
			assert.Equal(t, want, serr.PythonType, tool)
		}
		res, err := app.Execute(ctx, "ping", nil, up)
		require.NoError(t, err, "the worker serves on after its adapter's errors")
		assert.Equal(t, "ping", decodeJSON(t, res).(map[string]any)["message"])
	})
	t.Run("an adapter that is only execute_tool", func(t *testing.T) {
		plain := snakepit.WithPool("plain")
		res, err := app.Execute(ctx, "shout", map[string]any{"text": "quiet"}, plain)
		require.NoError(t, err)
		assert.Equal(t, "QUIET", decodeJSON(t, res))
		st, err := app.ExecuteStream(ctx, "numbers", nil, plain)
		require.NoError(t, err)
		var nums []string
		for c, err := range st.Chunks() {
			require.NoError(t, err)
			if len(c.Data) > 0 {
				nums = append(nums, string(c.Data))
			}
		}
		assert.Equal(t, []string{"1", "2", "3"}, nums)
		_, err = app.Execute(ctx, "missing", nil, plain)
		var serr *snakepit.Error
		require.ErrorAs(t, err, &serr)
		assert.Equal(t, "AttributeError", serr.PythonType)
	})
}
