package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/snakepit-go/snakepit/internal/jsonany"
	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// testCreds knows the secrets of the workers tests call as.
var testCreds = func() *Credentials {
	c := NewCredentials()
	for _, w := range []string{"w-test", "w1", "w2", "w3", "w-other"} {
		c.Grant(w, "secret-of-"+w)
	}
	return c
}()

// as is ctx with worker w's credentials.
func as(ctx context.Context, w string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, WorkerHeader, w, AuthHeader, "secret-of-"+w)
}

// memSessions is an in-memory SessionStore with a quota.
type memSessions struct {
	mu    sync.Mutex
	m     map[string]SessionInfo
	limit int
}

func (s *memSessions) Create(_ context.Context, id string, md map[string]string) (SessionInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.m[id]; ok {
		return info, nil
	}
	if len(s.m) >= s.limit {
		return SessionInfo{}, sperr.New(sperr.CodeSessionQuotaExceeded, "quota of %d sessions reached", s.limit)
	}
	s.m[id] = SessionInfo{ID: id, Metadata: md, CreatedAt: time.Now()}
	return s.m[id], nil
}
func (s *memSessions) Get(_ context.Context, id string) (SessionInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.m[id]; ok {
		return info, nil
	}
	return SessionInfo{}, sperr.New(sperr.CodeSessionNotFound, "no session %q", id)
}
func (s *memSessions) Valid(_ context.Context, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}
func (s *memSessions) Delete(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	delete(s.m, id)
	return ok, nil
}

// fakeWorkers maps worker ids to clients.
type fakeWorkers map[string]bridgepb.BridgeServiceClient

func (f fakeWorkers) Client(_ context.Context, id string) (bridgepb.BridgeServiceClient, error) {
	if c, ok := f[id]; ok {
		return c, nil
	}
	return nil, status.Errorf(codes.Unavailable, "worker %s is gone", id)
}

// serve starts s on loopback with the token check and returns a client.
func serve(t *testing.T, s *Server) bridgepb.BridgeServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := NewGRPCServer(s, ServerOptions{Credentials: testCreds, MaxMessage: 64 << 20})
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(); g.Stop() })
	return bridgepb.NewBridgeServiceClient(conn)
}

func authed(ctx context.Context) context.Context {
	return as(ctx, "w-test")
}

func jsonArg(t *testing.T, v any) *anypb.Any {
	t.Helper()
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	a, err := jsonany.Pack(raw)
	require.NoError(t, err)
	return a
}

func decodeAny(t *testing.T, a *anypb.Any) any {
	t.Helper()
	raw, err := jsonany.Unpack(a)
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(raw, &v))
	return v
}

type fixture struct {
	client bridgepb.BridgeServiceClient
	tools  *Tools
	ran    atomic.Int64
	last   atomic.Pointer[Call]
}

func newFixture(t *testing.T, workers WorkerConns) *fixture {
	t.Helper()
	f := &fixture{tools: NewTools()}
	require.NoError(t, f.tools.Register(ToolSpec{Name: "add", Description: "a+b", Parameters: []ParamSpec{{Name: "a", Type: "number", Required: true}}},
		func(_ context.Context, c *Call) (any, error) {
			f.ran.Add(1)
			f.last.Store(c)
			var in struct{ A, B float64 }
			if err := c.Bind(&in); err != nil {
				return nil, err
			}
			return in.A + in.B, nil
		}))
	require.NoError(t, f.tools.Register(ToolSpec{Name: "inspect"}, func(_ context.Context, c *Call) (any, error) {
		f.ran.Add(1)
		f.last.Store(c)
		out := map[string]any{"session": c.SessionID, "worker": c.WorkerID}
		for k, v := range c.Args {
			if b, ok := v.(Binary); ok {
				out[k] = map[string]any{"binary_len": len(b)}
			} else {
				out[k] = v
			}
		}
		return out, nil
	}))
	require.NoError(t, f.tools.Register(ToolSpec{Name: "echo_bin", Hidden: true}, func(_ context.Context, c *Call) (any, error) {
		b, _ := c.Args["data"].(Binary)
		return b, nil
	}))
	require.NoError(t, f.tools.Register(ToolSpec{Name: "fail"}, func(context.Context, *Call) (any, error) {
		return nil, errors.New("the ledger is locked")
	}))
	require.NoError(t, f.tools.Register(ToolSpec{Name: "panics"}, func(context.Context, *Call) (any, error) { panic("boom") }))
	require.NoError(t, f.tools.RegisterStream(ToolSpec{Name: "count"}, func(ctx context.Context, c *Call, send func(any) error) error {
		n, _ := c.Args["n"].(float64)
		for i := range int(n) {
			if err := send(map[string]int{"i": i}); err != nil {
				return err
			}
		}
		if c.Args["fail"] == true {
			return errors.New("ran out of numbers")
		}
		return send(Binary("raw"))
	}))
	f.client = serve(t, &Server{Tools: f.tools, Sessions: &memSessions{m: map[string]SessionInfo{}, limit: 2}, Workers: workers})
	return f
}

func TestAWorkerSecretIsRequiredOnEveryCall(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	denied := map[string]context.Context{
		"no credentials":                          ctx,
		"a wrong secret":                          metadata.AppendToOutgoingContext(ctx, WorkerHeader, "w-test", AuthHeader, "wrong"),
		"another's secret":                        metadata.AppendToOutgoingContext(ctx, WorkerHeader, "w-test", AuthHeader, "secret-of-w1"),
		"an unknown worker":                       metadata.AppendToOutgoingContext(ctx, WorkerHeader, "w-9", AuthHeader, "secret-of-w-9"),
		"only the instance token (what ps shows)": metadata.AppendToOutgoingContext(ctx, TokenHeader, "tok-123", WorkerHeader, "w-test"),
	}
	for name, call := range map[string]func(context.Context) error{
		"ping": func(c context.Context) error { _, err := f.client.Ping(c, &bridgepb.PingRequest{}); return err },
		"tool": func(c context.Context) error {
			_, err := f.client.ExecuteElixirTool(c, &bridgepb.ExecuteElixirToolRequest{ToolName: "add"})
			return err
		},
		"stream": func(c context.Context) error {
			s, err := f.client.ExecuteStreamingTool(c, &bridgepb.ExecuteToolRequest{ToolName: "count"})
			if err != nil {
				return err
			}
			_, err = s.Recv()
			return err
		},
	} {
		for how, c := range denied {
			require.Equal(t, codes.Unauthenticated, status.Code(call(c)), "%s with %s", name, how)
		}
	}
	require.Zero(t, f.ran.Load(), "nothing ran")
	resp, err := f.client.Ping(authed(ctx), &bridgepb.PingRequest{Message: "hi"})
	require.NoError(t, err)
	require.Equal(t, "pong: hi", resp.GetMessage())
}

func TestUnaryHostTools(t *testing.T) {
	f := newFixture(t, nil)
	ctx := authed(context.Background())
	resp, err := f.client.ExecuteElixirTool(ctx, &bridgepb.ExecuteElixirToolRequest{
		SessionId: "s1", ToolName: "add", Parameters: map[string]*anypb.Any{"a": jsonArg(t, 2), "b": jsonArg(t, 40.5)},
	})
	require.NoError(t, err)
	require.True(t, resp.GetSuccess(), resp.GetErrorMessage())
	require.Equal(t, 42.5, decodeAny(t, resp.GetResult()))
	require.Equal(t, "s1", f.last.Load().SessionID)
	require.Equal(t, "w-test", f.last.Load().WorkerID, "from the worker header")

	resp, err = f.client.ExecuteElixirTool(ctx, &bridgepb.ExecuteElixirToolRequest{ToolName: "fail"})
	require.NoError(t, err)
	require.False(t, resp.GetSuccess())
	var payload map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.GetErrorMessage()), &payload))
	require.Equal(t, "the ledger is locked", payload["message"], "the Go error text reaches Python")

	resp, err = f.client.ExecuteElixirTool(ctx, &bridgepb.ExecuteElixirToolRequest{ToolName: "panics"})
	require.NoError(t, err)
	require.False(t, resp.GetSuccess())
	require.Contains(t, resp.GetErrorMessage(), "panicked: boom")

	resp, err = f.client.ExecuteElixirTool(ctx, &bridgepb.ExecuteElixirToolRequest{ToolName: "add",
		Parameters: map[string]*anypb.Any{"a": jsonArg(t, "two")}})
	require.NoError(t, err)
	require.False(t, resp.GetSuccess(), "a Bind failure is the tool's error")
	require.Contains(t, resp.GetErrorMessage(), "invalid_argument")

	_, err = f.client.ExecuteElixirTool(ctx, &bridgepb.ExecuteElixirToolRequest{ToolName: "nope"})
	require.Equal(t, codes.NotFound, status.Code(err))
	_, err = f.client.ExecuteElixirTool(ctx, &bridgepb.ExecuteElixirToolRequest{ToolName: "count"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a streaming tool over unary is refused")
}

func TestBinaryParameterSemantics(t *testing.T) {
	f := newFixture(t, nil)
	ctx := authed(context.Background())
	resp, err := f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "inspect",
		Parameters:       map[string]*anypb.Any{"label": jsonArg(t, "cat")},
		BinaryParameters: map[string][]byte{"image": bytes.Repeat([]byte{7}, 1000)},
	})
	require.NoError(t, err)
	require.True(t, resp.GetSuccess(), resp.GetErrorMessage())
	got := decodeAny(t, resp.GetResult()).(map[string]any)
	require.Equal(t, "cat", got["label"])
	require.Equal(t, map[string]any{"binary_len": float64(1000)}, got["image"], "a binary parameter arrives as Binary next to the decoded ones")
	require.Equal(t, Binary(bytes.Repeat([]byte{7}, 1000)), f.last.Load().Args["image"])

	before := f.ran.Load()
	_, err = f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "inspect",
		Parameters:       map[string]*anypb.Any{"image": jsonArg(t, "x")},
		BinaryParameters: map[string][]byte{"image": []byte("y")},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a name clash is refused")
	require.Contains(t, status.Convert(err).Message(), "both a JSON parameter and a binary parameter")
	_, err = f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "inspect",
		Parameters: map[string]*anypb.Any{"raw": {TypeUrl: jsonany.TypeURLPrefix + jsonany.KindBinary, Value: []byte{1, 2}}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "bytes must travel as binary_parameters")
	_, err = f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "inspect",
		Parameters: map[string]*anypb.Any{"x": {TypeUrl: "type.googleapis.com/foo", Value: []byte{0xff, 0x00}}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a value that is not JSON is refused")
	require.Equal(t, before, f.ran.Load(), "no tool ran for a refused call")

	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(i * 31)
	}
	resp, err = f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "echo_bin", BinaryParameters: map[string][]byte{"data": big}})
	require.NoError(t, err)
	require.True(t, resp.GetSuccess())
	require.Equal(t, "binary", resp.GetMetadata()["result_encoding"])
	require.True(t, bytes.Equal(big, resp.GetBinaryResult()), "10 MB round trip intact")
}

func recvAll(t *testing.T, s grpc.ServerStreamingClient[bridgepb.ToolChunk]) ([]*bridgepb.ToolChunk, error) {
	t.Helper()
	var out []*bridgepb.ToolChunk
	for {
		ch, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ch)
	}
}

func TestStreamingHostTools(t *testing.T) {
	f := newFixture(t, nil)
	ctx := authed(context.Background())
	s, err := f.client.ExecuteStreamingTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "count", Parameters: map[string]*anypb.Any{"n": jsonArg(t, 3)}})
	require.NoError(t, err)
	chunks, err := recvAll(t, s)
	require.NoError(t, err)
	require.Len(t, chunks, 5)
	for i := range 3 {
		require.Equal(t, "json", chunks[i].GetMetadata()["encoding"])
		require.JSONEq(t, `{"i":`+string(rune('0'+i))+`}`, string(chunks[i].GetData()))
		require.False(t, chunks[i].GetIsFinal())
	}
	require.Equal(t, "binary", chunks[3].GetMetadata()["encoding"])
	require.Equal(t, []byte("raw"), chunks[3].GetData())
	require.True(t, chunks[4].GetIsFinal())
	require.Equal(t, "4", chunks[4].GetMetadata()["chunks_sent"])

	s, err = f.client.ExecuteStreamingTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "count",
		Parameters: map[string]*anypb.Any{"n": jsonArg(t, 2), "fail": jsonArg(t, true)}})
	require.NoError(t, err)
	chunks, err = recvAll(t, s)
	require.Len(t, chunks, 2, "chunks before the failure arrive")
	require.Equal(t, codes.Internal, status.Code(err))
	require.Contains(t, status.Convert(err).Message(), "ran out of numbers")

	s, err = f.client.ExecuteStreamingTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "add",
		Parameters: map[string]*anypb.Any{"a": jsonArg(t, 1), "b": jsonArg(t, 1)}})
	require.NoError(t, err)
	chunks, err = recvAll(t, s)
	require.NoError(t, err)
	require.Len(t, chunks, 2, "a unary tool streams its one value, then the final chunk")
	require.Equal(t, "2", string(chunks[0].GetData()))
}

func TestSessionRPCs(t *testing.T) {
	f := newFixture(t, nil)
	ctx := authed(context.Background())
	init, err := f.client.InitializeSession(ctx, &bridgepb.InitializeSessionRequest{SessionId: "s1", Metadata: map[string]string{"user": "ada"}})
	require.NoError(t, err)
	require.True(t, init.GetSuccess())
	require.Contains(t, init.GetAvailableTools(), "add")
	require.NotContains(t, init.GetAvailableTools(), "echo_bin", "hidden tools are not listed")
	require.True(t, init.GetAvailableTools()["count"].GetSupportsStreaming())

	got, err := f.client.GetSession(ctx, &bridgepb.GetSessionRequest{SessionId: "s1"})
	require.NoError(t, err)
	require.Equal(t, "ada", got.GetMetadata()["user"])
	hb, err := f.client.Heartbeat(ctx, &bridgepb.HeartbeatRequest{SessionId: "s1"})
	require.NoError(t, err)
	require.True(t, hb.GetSessionValid())

	_, err = f.client.InitializeSession(ctx, &bridgepb.InitializeSessionRequest{SessionId: "s2"})
	require.NoError(t, err)
	over, err := f.client.InitializeSession(ctx, &bridgepb.InitializeSessionRequest{SessionId: "s3"})
	require.NoError(t, err)
	require.False(t, over.GetSuccess())
	require.Contains(t, over.GetErrorMessage(), "quota")

	clean, err := f.client.CleanupSession(ctx, &bridgepb.CleanupSessionRequest{SessionId: "s1"})
	require.NoError(t, err)
	require.True(t, clean.GetSuccess())
	_, err = f.client.GetSession(ctx, &bridgepb.GetSessionRequest{SessionId: "s1"})
	require.Equal(t, codes.NotFound, status.Code(err))
	hb, err = f.client.Heartbeat(ctx, &bridgepb.HeartbeatRequest{SessionId: "s1"})
	require.NoError(t, err, "a heartbeat never fails for an unknown session")
	require.False(t, hb.GetSessionValid())

	exposed, err := f.client.GetExposedElixirTools(ctx, &bridgepb.GetExposedElixirToolsRequest{})
	require.NoError(t, err)
	var names []string
	for _, tl := range exposed.GetTools() {
		names = append(names, tl.GetName())
	}
	require.Equal(t, []string{"add", "count", "fail", "inspect", "panics"}, names)
}

// workerService is a fake worker's BridgeService for forwarding.
type workerService struct {
	bridgepb.UnimplementedBridgeServiceServer
	id string
}

func (w *workerService) ExecuteTool(_ context.Context, r *bridgepb.ExecuteToolRequest) (*bridgepb.ExecuteToolResponse, error) {
	a, _ := jsonany.Pack([]byte(`"` + w.id + ":" + r.GetToolName() + ":" + r.GetSessionId() + `"`))
	return &bridgepb.ExecuteToolResponse{Success: true, Result: a}, nil
}

func (w *workerService) ExecuteStreamingTool(r *bridgepb.ExecuteToolRequest, s grpc.ServerStreamingServer[bridgepb.ToolChunk]) error {
	for _, c := range []string{"a", "b"} {
		if err := s.Send(&bridgepb.ToolChunk{ChunkId: c, Data: []byte(`"` + c + `"`)}); err != nil {
			return err
		}
	}
	return s.Send(&bridgepb.ToolChunk{ChunkId: "end", IsFinal: true})
}

func TestPythonRegisteredToolsAreForwarded(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	bridgepb.RegisterBridgeServiceServer(g, &workerService{id: "w2"})
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()

	// w1 registered first but is gone: the call moves on to w2.
	f := newFixture(t, fakeWorkers{"w2": bridgepb.NewBridgeServiceClient(conn)})
	ctx := authed(context.Background())
	for _, w := range []string{"w1", "w2"} {
		reg, err := f.client.RegisterTools(as(context.Background(), w), &bridgepb.RegisterToolsRequest{WorkerId: w, Tools: []*bridgepb.ToolRegistration{{Name: "py_tool"}}})
		require.NoError(t, err)
		require.True(t, reg.GetSuccess())
		require.Equal(t, w+":py_tool", reg.GetToolIds()["py_tool"])
	}
	resp, err := f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "py_tool", SessionId: "s9"})
	require.NoError(t, err)
	require.Equal(t, "w2:py_tool:s9", decodeAny(t, resp.GetResult()))

	s, err := f.client.ExecuteStreamingTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "py_tool"})
	require.NoError(t, err)
	chunks, err := recvAll(t, s)
	require.NoError(t, err)
	require.Len(t, chunks, 3)
	require.True(t, chunks[2].GetIsFinal())

	reg, err := f.client.RegisterTools(as(context.Background(), "w3"), &bridgepb.RegisterToolsRequest{WorkerId: "w3", Tools: []*bridgepb.ToolRegistration{{Name: "bad name"}}})
	require.NoError(t, err)
	require.False(t, reg.GetSuccess())
	require.True(t, strings.Contains(reg.GetErrorMessage(), "bad name"))

	// Pickled parameters are never forwarded, whatever the worker allows.
	for _, v := range []string{"pickle", " PICKLE "} {
		_, err = f.client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "py_tool",
			BinaryParameters: map[string][]byte{"x": []byte("\x80")}, Metadata: map[string]string{"binary_format:x": v}})
		require.Equal(t, codes.InvalidArgument, status.Code(err), "unary %q", v)
		require.ErrorContains(t, err, "never accepted through the host bridge")
		s, err := f.client.ExecuteStreamingTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "py_tool",
			BinaryParameters: map[string][]byte{"x": []byte("\x80")}, Metadata: map[string]string{"binary_format:x": v}})
		require.NoError(t, err)
		_, err = s.Recv()
		require.Equal(t, codes.InvalidArgument, status.Code(err), "stream %q", v)
	}
}

func TestAWorkerActsOnlyAsItself(t *testing.T) {
	f := newFixture(t, nil)
	ctx := as(context.Background(), "w1")
	_, err := f.client.RegisterTools(ctx, &bridgepb.RegisterToolsRequest{WorkerId: "w2", Tools: []*bridgepb.ToolRegistration{{Name: "hijack"}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "w1 registering tools as w2")
	_, _, ok := f.tools.pythonTool("hijack")
	require.False(t, ok)
	reg, err := f.client.RegisterTools(ctx, &bridgepb.RegisterToolsRequest{Tools: []*bridgepb.ToolRegistration{{Name: "mine"}}})
	require.NoError(t, err)
	require.Equal(t, "w1:mine", reg.GetToolIds()["mine"], "no worker id: the caller's own")
	// A host tool sees the authenticated id, not a header the caller chose.
	_, err = f.client.ExecuteTool(metadata.AppendToOutgoingContext(context.Background(), WorkerHeader, "w1",
		AuthHeader, "secret-of-w1"), &bridgepb.ExecuteToolRequest{ToolName: "inspect"})
	require.NoError(t, err)
	require.Equal(t, "w1", f.last.Load().WorkerID)
	// A revoked secret (its process ended) no longer works.
	c := NewCredentials()
	c.Grant("w", "s1")
	c.Grant("w", "s2") // a replacement's newer secret
	c.Revoke("w", "s1")
	require.True(t, c.Check("w", "s2"), "revoking the old secret keeps the replacement's")
	c.Revoke("w", "s2")
	require.False(t, c.Check("w", "s2"))
}

func TestUnauthenticatedCallersWhenAllowed(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tools := NewTools()
	require.NoError(t, tools.Register(ToolSpec{Name: "who"}, func(_ context.Context, c *Call) (any, error) { return c.WorkerID, nil }))
	g := NewGRPCServer(&Server{Tools: tools}, ServerOptions{Credentials: testCreds, AllowUnauthenticated: true, MaxMessage: 1 << 20})
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := bridgepb.NewBridgeServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), WorkerHeader, "w1") // claims w1, proves nothing
	resp, err := client.ExecuteTool(ctx, &bridgepb.ExecuteToolRequest{ToolName: "who"})
	require.NoError(t, err)
	require.Equal(t, "", decodeAny(t, resp.GetResult()), "an unauthenticated caller is nobody")
	reg, err := client.RegisterTools(ctx, &bridgepb.RegisterToolsRequest{Tools: []*bridgepb.ToolRegistration{{Name: "t"}}})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "%v", reg)
	_, err = client.Ping(metadata.AppendToOutgoingContext(context.Background(), WorkerHeader, "w1", AuthHeader, "wrong"), &bridgepb.PingRequest{})
	require.Equal(t, codes.Unauthenticated, status.Code(err), "a wrong secret is refused even so")
}

func TestToolsRegistry(t *testing.T) {
	tools := NewTools()
	noop := func(context.Context, *Call) (any, error) { return nil, nil }
	require.NoError(t, tools.Register(ToolSpec{Name: "ns.tool-1"}, noop))
	require.ErrorIs(t, tools.Register(ToolSpec{Name: "ns.tool-1"}, noop), sperr.ErrInvalidArgument, "a name is taken once")
	for _, bad := range []string{"", "a b", ".x", "x.", "-x"} {
		require.Error(t, tools.Register(ToolSpec{Name: bad}, noop), bad)
	}
	require.Error(t, tools.Register(ToolSpec{Name: "nil"}, nil))
	require.True(t, tools.Unregister("ns.tool-1"))
	require.False(t, tools.Unregister("ns.tool-1"))

	_, err := tools.RegisterPython("w1", []*bridgepb.ToolRegistration{{Name: "t"}, {Name: "u"}})
	require.NoError(t, err)
	_, err = tools.RegisterPython("w2", []*bridgepb.ToolRegistration{{Name: "t"}})
	require.NoError(t, err)
	_, err = tools.RegisterPython("w1", []*bridgepb.ToolRegistration{{Name: "t"}})
	require.NoError(t, err)
	workers, _, _ := tools.pythonTool("t")
	require.Equal(t, []string{"w2", "w1"}, workers, "a worker registering again goes last")
	tools.DropWorker("w1")
	require.Equal(t, []string{"t"}, tools.PythonTools(), "u had only w1")
}
