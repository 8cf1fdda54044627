// Package bridge is the host's side of the Python bridge: the BridgeService
// gRPC server workers call back into (sessions, host tools, tools other
// workers registered), the registry of those tools, and the actor that owns
// the server's lifecycle.
//
// Values follow the bridge's one convention both ways (README_GRPC.md):
// JSON in google.protobuf.Any, bytes as binary_parameters / binary_result,
// stream chunks with metadata["encoding"] json, text, binary or empty.
package bridge

import (
	"context"
	"encoding/json"
	"sort"
	"sync"

	"github.com/snakepit-go/snakepit/internal/names"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// Binary is a bytes value: a binary parameter a host tool receives, or a
// result (or stream item) it returns to be sent as bytes rather than JSON.
type Binary []byte

// ParamSpec describes one parameter of a host tool (shown to Python by
// GetExposedElixirTools).
type ParamSpec struct {
	Name        string
	Type        string // free-form: "string", "integer", "map", …
	Description string
	Required    bool
}

// ToolSpec describes a host tool.
type ToolSpec struct {
	Name        string
	Description string
	Parameters  []ParamSpec
	Metadata    map[string]string
	// Hidden keeps the tool out of GetExposedElixirTools (it can still be
	// called by name).
	Hidden bool
}

// Call is one invocation of a host tool.
type Call struct {
	Tool      string
	SessionID string
	// WorkerID is the calling worker (its x-snakepit-worker-id header).
	WorkerID string
	// Args holds the JSON parameters decoded (numbers as float64, objects as
	// map[string]any) and the binary parameters as Binary values.
	Args map[string]any
	// Raw holds the JSON parameters undecoded, for Bind.
	Raw      map[string]json.RawMessage
	Metadata map[string]string
}

// Bind decodes the JSON parameters into v (a pointer to a struct or map),
// as if they were one JSON object.
func (c *Call) Bind(v any) error {
	raw, err := json.Marshal(c.Raw)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return sperr.Wrap(sperr.CodeInvalidArgument, err, "tool %s: arguments: %v", c.Tool, err)
	}
	return nil
}

// Handler runs a unary host tool. The result is sent as JSON, or as bytes
// when it is Binary or []byte. An error reaches Python as a HostToolError
// carrying its text.
type Handler func(ctx context.Context, call *Call) (any, error)

// StreamHandler runs a streaming host tool: each send is one chunk (JSON;
// Binary or []byte as bytes; string as text; nil empty). send fails once
// the caller is gone; return then.
type StreamHandler func(ctx context.Context, call *Call, send func(any) error) error

type hostTool struct {
	spec   ToolSpec
	unary  Handler
	stream StreamHandler
}

// pyTool is a tool a Python worker registered with RegisterTools.
type pyTool struct {
	reg     *bridgepb.ToolRegistration
	workers []string // in registration order; calls go to the first that answers
}

// Tools is the registry of host tools and of tools Python workers
// registered. It is safe for concurrent use: the gRPC handlers read it on
// every call, so it is a locked map rather than an actor.
type Tools struct {
	mu     sync.RWMutex
	host   map[string]*hostTool
	python map[string]*pyTool
}

// NewTools returns an empty registry.
func NewTools() *Tools {
	return &Tools{host: map[string]*hostTool{}, python: map[string]*pyTool{}}
}

// Register adds a unary host tool; a name already taken is an error.
func (t *Tools) Register(spec ToolSpec, h Handler) error {
	if h == nil {
		return sperr.New(sperr.CodeInvalidArgument, "tool %q: nil handler", spec.Name)
	}
	return t.add(&hostTool{spec: spec, unary: h})
}

// RegisterStream adds a streaming host tool.
func (t *Tools) RegisterStream(spec ToolSpec, h StreamHandler) error {
	if h == nil {
		return sperr.New(sperr.CodeInvalidArgument, "tool %q: nil handler", spec.Name)
	}
	return t.add(&hostTool{spec: spec, stream: h})
}

func (t *Tools) add(ht *hostTool) error {
	if !validToolName(ht.spec.Name) {
		return sperr.New(sperr.CodeInvalidArgument, "tool name %q: letters, digits, '_', '-' and '.' only", ht.spec.Name)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.host[ht.spec.Name]; ok {
		return sperr.New(sperr.CodeInvalidArgument, "host tool %q is already registered", ht.spec.Name)
	}
	t.host[ht.spec.Name] = ht
	return nil
}

func validToolName(s string) bool {
	for _, part := range splitDots(s) {
		if !names.Valid(part) {
			return false
		}
	}
	return s != ""
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// Unregister removes a host tool; it reports whether there was one.
func (t *Tools) Unregister(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.host[name]
	delete(t.host, name)
	return ok
}

// host returns a host tool by name.
func (t *Tools) hostTool(name string) (*hostTool, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	h, ok := t.host[name]
	return h, ok
}

// HostSpecs returns the exposed host tools, sorted by name.
func (t *Tools) HostSpecs() []ToolSpec {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]ToolSpec, 0, len(t.host))
	for _, h := range t.host {
		if !h.spec.Hidden {
			out = append(out, h.spec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// exposed is the wire form of the exposed host tools, sorted by name.
func (t *Tools) exposed() []*bridgepb.ToolSpec {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*bridgepb.ToolSpec, 0, len(t.host))
	for _, h := range t.host {
		if !h.spec.Hidden {
			out = append(out, toProtoSpec(h.spec, h.stream != nil))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

// RegisterPython records the tools a worker registered; a worker that
// registers again (restarted) is moved to the end of each tool's list.
// It returns the tool ids (name → "<worker>:<name>").
func (t *Tools) RegisterPython(workerID string, regs []*bridgepb.ToolRegistration) (map[string]string, error) {
	if workerID == "" {
		return nil, sperr.New(sperr.CodeInvalidArgument, "RegisterTools: worker_id is required")
	}
	ids := make(map[string]string, len(regs))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range regs {
		if !validToolName(r.GetName()) {
			return nil, sperr.New(sperr.CodeInvalidArgument, "RegisterTools: tool name %q is not valid", r.GetName())
		}
	}
	for _, r := range regs {
		p, ok := t.python[r.GetName()]
		if !ok {
			p = &pyTool{}
			t.python[r.GetName()] = p
		}
		p.reg = r
		p.workers = append(removeString(p.workers, workerID), workerID)
		ids[r.GetName()] = workerID + ":" + r.GetName()
	}
	return ids, nil
}

// DropWorker forgets every registration of a worker.
func (t *Tools) DropWorker(workerID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, p := range t.python {
		p.workers = removeString(p.workers, workerID)
		if len(p.workers) == 0 {
			delete(t.python, name)
		}
	}
}

// pythonTool returns the workers that registered name (a copy) and its registration.
func (t *Tools) pythonTool(name string) ([]string, *bridgepb.ToolRegistration, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	p, ok := t.python[name]
	if !ok {
		return nil, nil, false
	}
	return append([]string(nil), p.workers...), p.reg, true
}

// PythonTools lists the names of the tools Python workers registered.
func (t *Tools) PythonTools() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]string, 0, len(t.python))
	for n := range t.python {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

// toProtoSpec is the wire form of a host tool.
func toProtoSpec(s ToolSpec, streaming bool) *bridgepb.ToolSpec {
	ps := make([]*bridgepb.ParameterSpec, len(s.Parameters))
	for i, p := range s.Parameters {
		ps[i] = &bridgepb.ParameterSpec{Name: p.Name, Type: p.Type, Description: p.Description, Required: p.Required}
	}
	md := map[string]string{"origin": "host"}
	for k, v := range s.Metadata {
		md[k] = v
	}
	return &bridgepb.ToolSpec{Name: s.Name, Description: s.Description, Parameters: ps, Metadata: md, SupportsStreaming: streaming}
}
