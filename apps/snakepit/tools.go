package snakepit

import (
	"context"
	"encoding/json"

	"github.com/snakepit-go/snakepit/actors/bridge"
	"github.com/snakepit-go/snakepit/internal/sperr"
)

// Binary is a bytes value: a binary parameter a host tool receives, or a
// result (or stream item) it returns to be sent as bytes rather than JSON.
type Binary []byte

// ToolSpec describes a host tool.
type ToolSpec struct {
	Name        string
	Description string
	Parameters  []ParamSpec
	Metadata    map[string]string
	// Hidden keeps the tool out of the list Python workers are shown (it can
	// still be called by name).
	Hidden bool
}

// ParamSpec describes one parameter of a host tool.
type ParamSpec struct {
	Name        string
	Type        string // free-form: "string", "integer", "map", …
	Description string
	Required    bool
}

func (s ToolSpec) internal() bridge.ToolSpec {
	out := bridge.ToolSpec{Name: s.Name, Description: s.Description, Metadata: s.Metadata, Hidden: s.Hidden}
	for _, p := range s.Parameters {
		out.Parameters = append(out.Parameters, bridge.ParamSpec(p))
	}
	return out
}

// ToolCall is one call of a host tool.
type ToolCall struct {
	Tool      string
	SessionID string
	// WorkerID is the calling worker.
	WorkerID string
	// Args holds the JSON parameters decoded (numbers as float64, objects as
	// map[string]any) and the binary parameters as Binary values.
	Args map[string]any
	// Raw holds the JSON parameters undecoded, for Bind.
	Raw      map[string]json.RawMessage
	Metadata map[string]string
}

// Bind decodes the JSON parameters into v (a pointer to a struct or map),
// as if they were one JSON object; it fails with invalid_argument.
func (c *ToolCall) Bind(v any) error {
	raw, err := json.Marshal(c.Raw)
	if err == nil {
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		return public(sperr.Wrap(sperr.CodeInvalidArgument, err, "tool %s: arguments: %v", c.Tool, err))
	}
	return nil
}

// ToolHandler runs a unary host tool. The result is sent as JSON, or as
// bytes when it is Binary or []byte. An error reaches Python as a
// HostToolError carrying its text (an *Error keeps its code).
type ToolHandler func(ctx context.Context, call *ToolCall) (any, error)

// StreamToolHandler runs a streaming host tool: each send is one chunk
// (JSON; Binary or []byte as bytes; string as text; nil empty). send fails
// once the caller is gone; return then.
type StreamToolHandler func(ctx context.Context, call *ToolCall, send func(any) error) error

// toolCall is the public view of a bridge call.
func toolCall(c *bridge.Call) *ToolCall {
	out := &ToolCall{Tool: c.Tool, SessionID: c.SessionID, WorkerID: c.WorkerID, Raw: c.Raw, Metadata: c.Metadata,
		Args: make(map[string]any, len(c.Args))}
	for k, v := range c.Args {
		if b, ok := v.(bridge.Binary); ok {
			v = Binary(b)
		}
		out.Args[k] = v
	}
	return out
}

// outgoing is a handler's value as the bridge encodes it.
func outgoing(v any) any {
	if b, ok := v.(Binary); ok {
		return bridge.Binary(b)
	}
	return v
}

// RegisterTool exposes a Go function to Python workers as a host tool:
// SessionContext.call_host_tool(name, **kwargs) runs it and gets its result
// (JSON, or bytes for Binary / []byte). Its error reaches Python as a
// HostToolError carrying the error text.
func (a *App) RegisterTool(spec ToolSpec, h ToolHandler) error {
	if h == nil {
		return public(sperr.New(sperr.CodeInvalidArgument, "tool %q: nil handler", spec.Name))
	}
	return public(a.tools.Register(spec.internal(), func(ctx context.Context, c *bridge.Call) (any, error) {
		v, err := h(ctx, toolCall(c))
		return outgoing(v), toInternal(err)
	}))
}

// RegisterStreamTool exposes a streaming Go function: Python iterates its
// chunks with SessionContext.stream_host_tool(name, **kwargs).
func (a *App) RegisterStreamTool(spec ToolSpec, h StreamToolHandler) (err error) {
	defer func() { err = public(err) }()
	if h == nil {
		return sperr.New(sperr.CodeInvalidArgument, "tool %q: nil handler", spec.Name)
	}
	return a.tools.RegisterStream(spec.internal(), func(ctx context.Context, c *bridge.Call, send func(any) error) error {
		return toInternal(h(ctx, toolCall(c), func(v any) error { return public(send(outgoing(v))) }))
	})
}
