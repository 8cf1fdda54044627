package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/anypb"

	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// decodeCall builds a Call from a request's parameters: JSON parameters
// decoded into Args (and kept in Raw), binary parameters as Binary values.
// A binary parameter whose name is also a JSON parameter, or a JSON
// parameter that is not JSON, is invalid_argument; nothing runs then.
func decodeCall(tool, session, worker string, params map[string]*anypb.Any, binary map[string][]byte, md map[string]string) (*Call, error) {
	c := &Call{Tool: tool, SessionID: session, WorkerID: worker, Metadata: md,
		Args: make(map[string]any, len(params)+len(binary)), Raw: make(map[string]json.RawMessage, len(params))}
	for name, a := range params {
		if jsonany.IsBinary(a) {
			return nil, sperr.New(sperr.CodeInvalidArgument, "tool %s: parameter %q is binary; send bytes as binary_parameters", tool, name)
		}
		raw, err := jsonany.Unpack(a)
		if err != nil {
			return nil, sperr.Wrap(sperr.CodeInvalidArgument, err, "tool %s: parameter %q: %v", tool, name, err)
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, sperr.Wrap(sperr.CodeInvalidArgument, err, "tool %s: parameter %q: %v", tool, name, err)
		}
		c.Raw[name], c.Args[name] = raw, v
	}
	for name, b := range binary {
		if _, clash := c.Raw[name]; clash {
			return nil, sperr.New(sperr.CodeInvalidArgument, "tool %s: %q is both a JSON parameter and a binary parameter", tool, name)
		}
		c.Args[name] = Binary(b)
	}
	return c, nil
}

// encodeResult is a tool result's wire form: bytes as binary_result, else
// JSON in an Any of its kind.
func encodeResult(v any) (result *anypb.Any, binary []byte, encoding string, err error) {
	switch b := v.(type) {
	case Binary:
		return nil, []byte(b), "binary", nil
	case []byte:
		return nil, b, "binary", nil
	case json.RawMessage:
		a, err := jsonany.Pack(b)
		return a, nil, "json", err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, nil, "", fmt.Errorf("result is not JSON-encodable: %w", err)
	}
	a, err := jsonany.Pack(raw)
	return a, nil, "json", err
}

// encodeChunk is one stream item's wire form (the worker's convention:
// bytes as-is, text as UTF-8, nil empty, anything else JSON).
func encodeChunk(tool string, n int, v any) (*bridgepb.ToolChunk, error) {
	ch := &bridgepb.ToolChunk{ChunkId: tool + "-" + strconv.Itoa(n), Metadata: map[string]string{}}
	switch x := v.(type) {
	case nil:
		ch.Metadata["encoding"] = "empty"
	case Binary:
		ch.Data, ch.Metadata["encoding"] = x, "binary"
	case []byte:
		ch.Data, ch.Metadata["encoding"] = x, "binary"
	case string:
		ch.Data, ch.Metadata["encoding"] = []byte(x), "text"
	case json.RawMessage:
		ch.Data, ch.Metadata["encoding"] = x, "json"
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("stream item is not JSON-encodable: %w", err)
		}
		ch.Data, ch.Metadata["encoding"] = raw, "json"
	}
	return ch, nil
}

// errorPayload is the failure JSON both sides use in error_message (and in
// a stream's status message): type, message, and for structured errors
// category and code.
func errorPayload(tool string, err error) string {
	p := map[string]any{"type": "HostToolError", "message": err.Error(), "context": map[string]string{"tool_name": tool}}
	var e *sperr.Error
	if errors.As(err, &e) {
		p["category"], p["code"] = string(e.Category), e.Code
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}
