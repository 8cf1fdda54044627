package worker

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/snakepit-go/snakepit/internal/auth"
	"github.com/snakepit-go/snakepit/proto/bridgepb"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

type mdServer struct {
	bridgepb.UnimplementedBridgeServiceServer
	got chan metadata.MD
}

func (s *mdServer) ExecuteTool(ctx context.Context, _ *bridgepb.ExecuteToolRequest) (*bridgepb.ExecuteToolResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	s.got <- md
	return &bridgepb.ExecuteToolResponse{Success: true}, nil
}

// A call made through Dial's connection carries the server secret and,
// when its context has the request, the correlation id as a gRPC header.
func TestDialSendsTheSecretAndTheCorrelationHeader(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	ms := &mdServer{got: make(chan metadata.MD, 2)}
	bridgepb.RegisterBridgeServiceServer(srv, ms)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	conn, err := Dial(lis.Addr().String(), "s3cret")
	require.NoError(t, err)
	defer conn.Close()
	client := bridgepb.NewBridgeServiceClient(conn)

	req := &poolpb.Execute{CorrelationId: "cid-7"}
	_, err = client.ExecuteTool(withCorrelation(t.Context(), req), &bridgepb.ExecuteToolRequest{ToolName: "x"})
	require.NoError(t, err)
	md := <-ms.got
	assert.Equal(t, []string{"s3cret"}, md.Get(auth.Header))
	assert.Equal(t, []string{"cid-7"}, md.Get(CorrelationHeader))

	_, err = client.ExecuteTool(withCorrelation(t.Context(), &poolpb.Execute{}), &bridgepb.ExecuteToolRequest{ToolName: "x"})
	require.NoError(t, err)
	md = <-ms.got
	assert.Equal(t, []string{"s3cret"}, md.Get(auth.Header))
	assert.Empty(t, md.Get(CorrelationHeader), "no id, no header")
}
