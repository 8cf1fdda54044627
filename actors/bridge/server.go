package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// Metadata headers workers send on every call. The instance token is
// upstream's instance marker and authenticates nothing; AuthHeader does.
const (
	TokenHeader  = "x-snakepit-instance-token"
	WorkerHeader = "x-snakepit-worker-id"
)

// SessionInfo is what the session RPCs need of a session.
type SessionInfo struct {
	ID        string
	Metadata  map[string]string
	CreatedAt time.Time
}

// SessionStore is the session store as the server uses it. Errors match
// sperr.ErrSessionNotFound / sperr.ErrSessionQuotaExceeded.
type SessionStore interface {
	Create(ctx context.Context, id string, md map[string]string) (SessionInfo, error)
	Get(ctx context.Context, id string) (SessionInfo, error)
	Valid(ctx context.Context, id string) bool
	Delete(ctx context.Context, id string) (bool, error)
}

// WorkerConns gives the gRPC client of a worker, for tools it registered.
type WorkerConns interface {
	Client(ctx context.Context, workerID string) (bridgepb.BridgeServiceClient, error)
}

// Server is the host's BridgeService.
type Server struct {
	bridgepb.UnimplementedBridgeServiceServer
	Tools    *Tools
	Sessions SessionStore // nil: the session RPCs answer UNIMPLEMENTED
	Workers  WorkerConns  // nil: Python-registered tools cannot be forwarded
	Logger   *slog.Logger
	// Tracer, when set, records a server span for each host tool call; the
	// call's trace context (traceparent in its metadata, from the calling
	// tool's span) is its parent either way, and the handler's context
	// carries it.
	Tracer trace.Tracer
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Ping answers "pong: <message>".
func (s *Server) Ping(_ context.Context, r *bridgepb.PingRequest) (*bridgepb.PingResponse, error) {
	return &bridgepb.PingResponse{Message: "pong: " + r.GetMessage(), ServerTime: timestamppb.Now()}, nil
}

func (s *Server) sessions() (SessionStore, error) {
	if s.Sessions == nil {
		return nil, status.Error(codes.Unimplemented, "this host keeps no sessions")
	}
	return s.Sessions, nil
}

// InitializeSession creates the session (or touches an existing one) and
// lists the host tools.
func (s *Server) InitializeSession(ctx context.Context, r *bridgepb.InitializeSessionRequest) (*bridgepb.InitializeSessionResponse, error) {
	store, err := s.sessions()
	if err != nil {
		return nil, err
	}
	if _, err := store.Create(ctx, r.GetSessionId(), r.GetMetadata()); err != nil {
		return &bridgepb.InitializeSessionResponse{Success: false, ErrorMessage: err.Error()}, nil
	}
	tools := map[string]*bridgepb.ToolSpec{}
	for _, spec := range s.Tools.exposed() {
		tools[spec.GetName()] = spec
	}
	return &bridgepb.InitializeSessionResponse{Success: true, AvailableTools: tools}, nil
}

// CleanupSession deletes the session.
func (s *Server) CleanupSession(ctx context.Context, r *bridgepb.CleanupSessionRequest) (*bridgepb.CleanupSessionResponse, error) {
	store, err := s.sessions()
	if err != nil {
		return nil, err
	}
	found, err := store.Delete(ctx, r.GetSessionId())
	if err != nil {
		return nil, toStatus(err)
	}
	n := int32(0)
	if found {
		n = 1
	}
	return &bridgepb.CleanupSessionResponse{Success: found, ResourcesCleaned: n}, nil
}

// GetSession returns the session (and touches it); NOT_FOUND when unknown.
func (s *Server) GetSession(ctx context.Context, r *bridgepb.GetSessionRequest) (*bridgepb.GetSessionResponse, error) {
	store, err := s.sessions()
	if err != nil {
		return nil, err
	}
	info, err := store.Get(ctx, r.GetSessionId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &bridgepb.GetSessionResponse{SessionId: info.ID, Metadata: info.Metadata,
		CreatedAt: timestamppb.New(info.CreatedAt), ToolCount: int32(len(s.Tools.HostSpecs()))}, nil
}

// Heartbeat answers with the server time and whether the session is live
// (touching it). It never fails for an unknown session: a worker's own
// heartbeat only needs the host to answer.
func (s *Server) Heartbeat(ctx context.Context, r *bridgepb.HeartbeatRequest) (*bridgepb.HeartbeatResponse, error) {
	valid := false
	if s.Sessions != nil && r.GetSessionId() != "" {
		valid = s.Sessions.Valid(ctx, r.GetSessionId())
	}
	return &bridgepb.HeartbeatResponse{ServerTime: timestamppb.Now(), SessionValid: valid}, nil
}

// RegisterTools records the tools a worker offers to other workers.
func (s *Server) RegisterTools(ctx context.Context, r *bridgepb.RegisterToolsRequest) (*bridgepb.RegisterToolsResponse, error) {
	worker := r.GetWorkerId()
	if self := workerOf(ctx); worker == "" {
		worker = self
	} else if worker != self {
		// A worker's credentials let it act as itself only.
		return nil, status.Errorf(codes.PermissionDenied, "worker %q cannot register tools for worker %q",
			sperr.Truncate(self, 64), sperr.Truncate(worker, 64))
	}
	if worker == "" {
		return nil, status.Error(codes.PermissionDenied, "an unauthenticated caller cannot register tools")
	}
	ids, err := s.Tools.RegisterPython(worker, r.GetTools())
	if err != nil {
		return &bridgepb.RegisterToolsResponse{Success: false, ErrorMessage: err.Error()}, nil
	}
	return &bridgepb.RegisterToolsResponse{Success: true, ToolIds: ids}, nil
}

// GetExposedElixirTools lists the exposed host tools.
func (s *Server) GetExposedElixirTools(context.Context, *bridgepb.GetExposedElixirToolsRequest) (*bridgepb.GetExposedElixirToolsResponse, error) {
	return &bridgepb.GetExposedElixirToolsResponse{Tools: s.Tools.exposed()}, nil
}

// ExecuteElixirTool runs a unary host tool (no binary parameters on this
// RPC; ExecuteTool carries them).
func (s *Server) ExecuteElixirTool(ctx context.Context, r *bridgepb.ExecuteElixirToolRequest) (*bridgepb.ExecuteElixirToolResponse, error) {
	res, err := s.runHost(ctx, r.GetToolName(), r.GetSessionId(), r.GetParameters(), nil, r.GetMetadata())
	if err != nil {
		return nil, err
	}
	return &bridgepb.ExecuteElixirToolResponse{Success: res.Success, Result: res.Result, ErrorMessage: res.ErrorMessage,
		Metadata: res.Metadata, ExecutionTimeMs: res.ExecutionTimeMs, BinaryResult: res.BinaryResult}, nil
}

// ExecuteTool runs a host tool, or forwards a tool a worker registered to
// that worker.
func (s *Server) ExecuteTool(ctx context.Context, r *bridgepb.ExecuteToolRequest) (*bridgepb.ExecuteToolResponse, error) {
	if _, ok := s.Tools.hostTool(r.GetToolName()); ok {
		return s.runHost(ctx, r.GetToolName(), r.GetSessionId(), r.GetParameters(), r.GetBinaryParameters(), r.GetMetadata())
	}
	if workers, _, ok := s.Tools.pythonTool(r.GetToolName()); ok {
		if err := refusePickle(r); err != nil {
			return nil, err
		}
		var last error
		for _, w := range workers {
			c, err := s.worker(ctx, w)
			if err != nil {
				last = err
				continue
			}
			resp, err := c.ExecuteTool(ctx, r)
			if status.Code(err) == codes.Unavailable {
				last = err
				continue
			}
			return resp, err
		}
		return nil, status.Errorf(codes.Unavailable, "tool %q: no worker that registered it answers (%v)", r.GetToolName(), last)
	}
	return nil, status.Errorf(codes.NotFound, "no tool named %q on the host", sperr.Truncate(r.GetToolName(), 200))
}

func (s *Server) worker(ctx context.Context, id string) (bridgepb.BridgeServiceClient, error) {
	if s.Workers == nil {
		return nil, status.Error(codes.Unimplemented, "this host cannot forward to workers")
	}
	return s.Workers.Client(ctx, id)
}

// runHost runs a unary host tool (a streaming one is refused, as a
// worker refuses a generator over unary).
func (s *Server) runHost(ctx context.Context, tool, session string, params map[string]*anypb.Any, binary map[string][]byte, md map[string]string) (*bridgepb.ExecuteToolResponse, error) {
	h, ok := s.Tools.hostTool(tool)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no host tool named %q", sperr.Truncate(tool, 200))
	}
	if h.unary == nil {
		return nil, status.Errorf(codes.InvalidArgument, "host tool %q streams; call it with ExecuteStreamingTool", tool)
	}
	call, err := decodeCall(tool, session, workerOf(ctx), params, binary, md)
	if err != nil {
		return nil, toStatus(err)
	}
	ctx = traceContext.Extract(ctx, propagation.MapCarrier(md))
	var span trace.Span
	if s.Tracer != nil {
		ctx, span = s.Tracer.Start(ctx, "snakepit.host_tool "+tool, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("snakepit.tool", tool), attribute.String("snakepit.worker", workerOf(ctx))))
		defer span.End()
	}
	start := time.Now()
	v, err := s.guard(tool, func() (any, error) { return h.unary(ctx, call) })
	if err != nil && span != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
	}
	resp := &bridgepb.ExecuteToolResponse{Metadata: map[string]string{"tool_type": "host"}}
	if err == nil {
		resp.Result, resp.BinaryResult, resp.Metadata["result_encoding"], err = encodeResult(v)
	}
	resp.ExecutionTimeMs = time.Since(start).Milliseconds()
	if err != nil {
		resp.ErrorMessage = errorPayload(tool, err)
		return resp, nil
	}
	resp.Success = true
	return resp, nil
}

// guard runs a handler, turning a panic into an error.
func (s *Server) guard(tool string, fn func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log().Error("host tool panicked", "tool", tool, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("host tool %s panicked: %v", tool, r)
		}
	}()
	return fn()
}

// traceContext reads a host tool call's W3C trace context.
var traceContext = propagation.TraceContext{}

// ExecuteStreamingTool streams a host tool (a unary one answers one chunk),
// or relays the stream of a tool a worker registered. The stream ends with
// a final chunk (metadata synthetic_final, chunks_sent, execution_time_ms).
func (s *Server) ExecuteStreamingTool(r *bridgepb.ExecuteToolRequest, stream grpc.ServerStreamingServer[bridgepb.ToolChunk]) error {
	ctx := stream.Context()
	tool := r.GetToolName()
	h, ok := s.Tools.hostTool(tool)
	if !ok {
		if workers, _, ok := s.Tools.pythonTool(tool); ok {
			if err := refusePickle(r); err != nil {
				return err
			}
			return s.relay(ctx, workers, r, stream)
		}
		return status.Errorf(codes.NotFound, "no tool named %q on the host", sperr.Truncate(tool, 200))
	}
	call, err := decodeCall(tool, r.GetSessionId(), workerOf(ctx), r.GetParameters(), r.GetBinaryParameters(), r.GetMetadata())
	if err != nil {
		return toStatus(err)
	}
	start := time.Now()
	n := 0
	send := func(v any) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n++
		ch, err := encodeChunk(tool, n, v)
		if err != nil {
			return err
		}
		return stream.Send(ch)
	}
	_, err = s.guard(tool, func() (any, error) {
		if h.stream != nil {
			return nil, h.stream(ctx, call, send)
		}
		v, err := h.unary(ctx, call)
		if err == nil {
			err = send(v)
		}
		return nil, err
	})
	if err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.Internal, errorPayload(tool, err))
	}
	return stream.Send(&bridgepb.ToolChunk{ChunkId: tool + "-final", IsFinal: true, Metadata: map[string]string{
		"synthetic_final": "true", "chunks_sent": strconv.Itoa(n), "encoding": "empty",
		"execution_time_ms": strconv.FormatInt(time.Since(start).Milliseconds(), 10), "tool_type": "host",
	}})
}

// relay forwards a streaming call to the first worker that takes it.
func (s *Server) relay(ctx context.Context, workers []string, r *bridgepb.ExecuteToolRequest, out grpc.ServerStreamingServer[bridgepb.ToolChunk]) error {
	var last error
	for _, w := range workers {
		c, err := s.worker(ctx, w)
		if err != nil {
			last = err
			continue
		}
		in, err := c.ExecuteStreamingTool(ctx, r)
		if err != nil {
			last = err
			continue
		}
		first := true
		for {
			ch, err := in.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if first && status.Code(err) == codes.Unavailable {
					last = err
					break
				}
				return err
			}
			first = false
			if err := out.Send(ch); err != nil {
				return err
			}
		}
	}
	return status.Errorf(codes.Unavailable, "tool %q: no worker that registered it answers (%v)", r.GetToolName(), last)
}

// workerOf is the calling worker's authenticated id ("" for an
// unauthenticated caller).
func workerOf(ctx context.Context) string {
	id, _ := Identity(ctx)
	return id
}

// refusePickle: a call forwarded through the bridge never has pickled
// parameters decoded, whatever its worker's pool allows.
func refusePickle(r *bridgepb.ExecuteToolRequest) error {
	for k, v := range r.GetMetadata() {
		if strings.HasPrefix(k, "binary_format:") && strings.EqualFold(strings.TrimSpace(v), "pickle") {
			return status.Errorf(codes.InvalidArgument,
				"binary parameter %q: pickle is never accepted through the host bridge",
				sperr.Truncate(strings.TrimPrefix(k, "binary_format:"), 64))
		}
	}
	return nil
}

// toStatus maps a structured error to a gRPC status.
func toStatus(err error) error {
	var e *sperr.Error
	if !errors.As(err, &e) {
		return status.Error(codes.Internal, err.Error())
	}
	code := codes.Internal
	switch e.Code {
	case sperr.CodeInvalidArgument:
		code = codes.InvalidArgument
	case sperr.CodeToolNotFound, sperr.CodeSessionNotFound:
		code = codes.NotFound
	case sperr.CodeSessionQuotaExceeded:
		code = codes.ResourceExhausted
	case sperr.CodeDeadlineExceeded:
		code = codes.DeadlineExceeded
	case sperr.CodeCancelled:
		code = codes.Canceled
	}
	return status.Error(code, e.Error())
}
