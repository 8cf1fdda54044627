//go:build unix

package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// The launch and wire contract of a Python worker, checked from the Go side
// against the real priv/python/grpc_server.py (README_GRPC.md, "Launching a
// worker"; shared/DESIGN.md §5).

const (
	paramTypeURL  = "type.googleapis.com/google.protobuf.StringValue"
	resultTypeURL = "type.googleapis.com/snakepit."
	callTimeout   = 30 * time.Second
)

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return ctx
}

// params encodes each argument as the host does: JSON bytes in an Any with
// the StringValue type URL.
func params(t *testing.T, args map[string]any) map[string]*anypb.Any {
	t.Helper()
	out := make(map[string]*anypb.Any, len(args))
	for k, v := range args {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		out[k] = &anypb.Any{TypeUrl: paramTypeURL, Value: b}
	}
	return out
}

func execute(t *testing.T, w *pyWorker, req *bridgepb.ExecuteToolRequest) *bridgepb.ExecuteToolResponse {
	t.Helper()
	resp, err := w.client.ExecuteTool(callCtx(t), req)
	require.NoError(t, err, "ExecuteTool %s\nworker output:\n%s", req.GetToolName(), w.output)
	return resp
}

// toolError decodes a failed response's error_message payload.
func toolError(t *testing.T, resp *bridgepb.ExecuteToolResponse) map[string]any {
	t.Helper()
	require.False(t, resp.GetSuccess(), "call should fail")
	var payload map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.GetErrorMessage()), &payload),
		"error_message must be a JSON object, got %q", resp.GetErrorMessage())
	return payload
}

func TestWorkerReadyTCP(t *testing.T) {
	w := startWorker(t, workerOptions{})
	assert.Regexp(t, `^snakepit-bridge\|1\|tcp\|127\.0\.0\.1:[1-9][0-9]*$`, w.ready, "ready file holds the versioned handshake")

	resp, err := w.client.Ping(callCtx(t), &bridgepb.PingRequest{Message: "x"})
	require.NoError(t, err, "Ping over TCP\nworker output:\n%s", w.output)
	assert.Equal(t, "Pong from Python: x", resp.GetMessage())
	assert.NotNil(t, resp.GetServerTime(), "server_time is set")
}

func TestWorkerReadyUnixSocket(t *testing.T) {
	w := startWorker(t, workerOptions{unix: true})
	assert.Equal(t, "snakepit-bridge|1|unix|"+w.socket, w.ready)
	st, err := os.Stat(w.socket)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSocket, st.Mode().Type(), "%s is a socket", w.socket)

	resp, err := w.client.Ping(callCtx(t), &bridgepb.PingRequest{Message: "over a unix socket"})
	require.NoError(t, err, "Ping over the unix socket\nworker output:\n%s", w.output)
	assert.Equal(t, "Pong from Python: over a unix socket", resp.GetMessage())
}

func TestExecuteToolAdd(t *testing.T) {
	w := startWorker(t, workerOptions{})
	tests := []struct {
		name     string
		a, b     any
		kind     string
		wantJSON string
	}{
		{"integers", 2, 3, "integer", "5"},
		{"negative", -7, 3, "integer", "-4"},
		{"floats", 1.5, 2.25, "float", "3.75"},
		{"mixed", 1, 0.5, "float", "1.5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := execute(t, w, &bridgepb.ExecuteToolRequest{
				ToolName:   "add",
				Parameters: params(t, map[string]any{"a": tc.a, "b": tc.b}),
			})
			require.True(t, resp.GetSuccess(), "add failed: %s", resp.GetErrorMessage())
			assert.Equal(t, resultTypeURL+tc.kind, resp.GetResult().GetTypeUrl())
			assert.JSONEq(t, tc.wantJSON, string(resp.GetResult().GetValue()))
		})
	}
}

func TestExecuteToolEchoNestedJSON(t *testing.T) {
	w := startWorker(t, workerOptions{})
	args := map[string]any{
		"text":    "héllo, 世界",
		"integer": 42,
		"float":   2.5,
		"flag":    true,
		"nothing": nil,
		"list":    []any{1, "two", []any{3.5, false}, map[string]any{"k": "v"}},
		"nested": map[string]any{
			"deep":  map[string]any{"deeper": []any{map[string]any{"x": 1}, map[string]any{"y": []any{}}}},
			"empty": map[string]any{},
		},
	}
	resp := execute(t, w, &bridgepb.ExecuteToolRequest{ToolName: "echo", Parameters: params(t, args)})
	require.True(t, resp.GetSuccess(), "echo failed: %s", resp.GetErrorMessage())
	assert.Equal(t, resultTypeURL+"map", resp.GetResult().GetTypeUrl())

	want, err := json.Marshal(args)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(resp.GetResult().GetValue()))
}

func TestExecuteStreamingToolCount(t *testing.T) {
	w := startWorker(t, workerOptions{})
	const n = 5
	stream, err := w.client.ExecuteStreamingTool(callCtx(t), &bridgepb.ExecuteToolRequest{
		ToolName:   "stream_count",
		Parameters: params(t, map[string]any{"n": n}),
		Stream:     true,
	})
	require.NoError(t, err)

	var chunks []*bridgepb.ToolChunk
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		require.NoError(t, err, "stream_count stream\nworker output:\n%s", w.output)
		chunks = append(chunks, chunk)
	}
	require.Len(t, chunks, n+1, "n data chunks and a final one")
	for i, c := range chunks[:n] {
		assert.Equal(t, fmt.Sprintf("stream_count-%d", i+1), c.GetChunkId())
		assert.JSONEq(t, fmt.Sprintf(`{"index": %d}`, i), string(c.GetData()), "chunk %d", i)
		assert.False(t, c.GetIsFinal(), "chunk %d is not final", i)
	}
	final := chunks[n]
	assert.Equal(t, fmt.Sprintf("stream_count-%d", n+1), final.GetChunkId())
	assert.True(t, final.GetIsFinal(), "last chunk is final")
}

func TestExecuteToolBinaryEcho(t *testing.T) {
	w := startWorker(t, workerOptions{})
	data := make([]byte, 1<<20)
	_, err := rand.Read(data)
	require.NoError(t, err)

	resp := execute(t, w, &bridgepb.ExecuteToolRequest{
		ToolName:         "echo_binary",
		BinaryParameters: map[string][]byte{"data": data},
	})
	require.True(t, resp.GetSuccess(), "echo_binary failed: %s", resp.GetErrorMessage())
	require.Len(t, resp.GetBinaryResult(), len(data))
	assert.True(t, bytes.Equal(data, resp.GetBinaryResult()), "1 MiB came back intact")
}

func TestExecuteToolPythonError(t *testing.T) {
	w := startWorker(t, workerOptions{})
	resp := execute(t, w, &bridgepb.ExecuteToolRequest{
		ToolName:   "raise_error",
		Parameters: params(t, map[string]any{"kind": "value", "message": "boom"}),
	})
	payload := toolError(t, resp)

	assert.Equal(t, "ValueError", payload["type"])
	assert.Equal(t, "boom", payload["message"])
	tb, ok := payload["traceback"].(string)
	if assert.True(t, ok, "traceback is a string: %v", payload["traceback"]) {
		assert.Contains(t, tb, "ValueError: boom")
	}
	stack, ok := payload["stacktrace"].([]any)
	if assert.True(t, ok, "stacktrace is a list: %v", payload["stacktrace"]) {
		assert.NotEmpty(t, stack)
	}
	ctx, ok := payload["context"].(map[string]any)
	if assert.True(t, ok, "context is an object: %v", payload["context"]) {
		assert.Equal(t, "raise_error", ctx["tool_name"])
	}
}

func TestExecuteToolUnknown(t *testing.T) {
	w := startWorker(t, workerOptions{})
	resp := execute(t, w, &bridgepb.ExecuteToolRequest{ToolName: "no_such_tool"})
	payload := toolError(t, resp)
	assert.Equal(t, "ToolNotFoundError", payload["type"])
	assert.Contains(t, payload["message"], "no_such_tool")
	if ctx, ok := payload["context"].(map[string]any); assert.True(t, ok, "context is an object") {
		assert.Equal(t, "no_such_tool", ctx["tool_name"])
	}
}

func TestWorkerExitsOnStdinEOF(t *testing.T) {
	w := startWorker(t, workerOptions{})
	_, err := w.client.Ping(callCtx(t), &bridgepb.PingRequest{Message: "alive"})
	require.NoError(t, err)

	require.NoError(t, w.stdin.Close())
	code := w.waitExit(exitTimeout)
	assert.Equal(t, 0, code, "exit code after stdin EOF\noutput:\n%s", w.output)
}

func TestWorkerExitsOnSIGTERM(t *testing.T) {
	w := startWorker(t, workerOptions{})
	_, err := w.client.Ping(callCtx(t), &bridgepb.PingRequest{Message: "alive"})
	require.NoError(t, err)

	require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	code := w.waitExit(exitTimeout)
	assert.Equal(t, 0, code, "exit code after SIGTERM\noutput:\n%s", w.output)
}
