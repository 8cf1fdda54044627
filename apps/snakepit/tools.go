package snakepit

import (
	"context"
	"encoding/json"
	"maps"
	"time"

	"github.com/snakepit-go/snakepit/actors/bridge"
	"github.com/snakepit-go/snakepit/actors/bridge/sessions"
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

// SessionState is a session as the store keeps it.
type SessionState struct {
	ID       string
	Metadata map[string]string // free-form; set at create and by Update
	// Data is the state host tools keep per session; Update sets and
	// deletes keys.
	Data       map[string][]byte
	CreatedAt  time.Time
	LastAccess time.Time     // set when created, read and updated
	TTL        time.Duration // idle time after which the session expires
}

// SessionUpdate changes a session: Metadata and Data keys are set,
// DeleteData keys removed.
type SessionUpdate struct {
	Metadata   map[string]string
	Data       map[string][]byte
	DeleteData []string
}

func sessionState(s sessions.Session) SessionState {
	return SessionState{ID: s.ID, Metadata: s.Metadata, Data: s.Data, CreatedAt: s.CreatedAt, LastAccess: s.LastAccess, TTL: s.TTL}
}

func (u SessionUpdate) internal(id string) sessions.Update {
	return sessions.Update{ID: id, Metadata: maps.Clone(u.Metadata), Data: maps.Clone(u.Data), DeleteData: u.DeleteData}
}
