package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Mode is where the bridge server listens.
type Mode string

// Listener modes.
const (
	ModeInternal Mode = "internal" // 127.0.0.1 on a port the OS picks (default)
	ModeUnix     Mode = "unix"     // a unix socket (mode 0600) at Address
	ModeExternal Mode = "external" // Address, host:port, e.g. for workers on another host
	ModeOff      Mode = "off"      // no bridge: workers cannot call back
)

// Listen opens the listener for mode and returns it with the address
// workers dial (host:port, or unix:/path).
func Listen(mode Mode, address string) (net.Listener, string, error) {
	switch mode {
	case "", ModeInternal:
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", fmt.Errorf("bridge: listen: %w", err)
		}
		return lis, lis.Addr().String(), nil
	case ModeExternal:
		if address == "" {
			return nil, "", errors.New("bridge: external mode needs an address (host:port)")
		}
		lis, err := net.Listen("tcp", address)
		if err != nil {
			return nil, "", fmt.Errorf("bridge: listen on %s: %w", address, err)
		}
		return lis, lis.Addr().String(), nil
	case ModeUnix:
		if address == "" {
			return nil, "", errors.New("bridge: unix mode needs a socket path")
		}
		if st, err := os.Lstat(address); err == nil {
			if st.Mode()&fs.ModeSocket == 0 {
				return nil, "", fmt.Errorf("bridge: %s exists and is not a socket", address)
			}
			_ = os.Remove(address) // a stale socket of an earlier run
		}
		lis, err := net.Listen("unix", address)
		if err != nil {
			return nil, "", fmt.Errorf("bridge: listen on unix:%s: %w", address, err)
		}
		if err := os.Chmod(address, 0o600); err != nil {
			_ = lis.Close()
			return nil, "", fmt.Errorf("bridge: %w", err)
		}
		return lis, "unix:" + address, nil
	}
	return nil, "", fmt.Errorf("bridge: unknown listener mode %q (internal, unix, external, off)", mode)
}

// checkToken: every call carries the instance token in its metadata; an
// empty expected token turns the check off.
func checkToken(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, got := range md.Get(TokenHeader) {
		if subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "snakepit bridge: missing or wrong "+TokenHeader)
}

// NewGRPCServer returns a gRPC server serving s, refusing calls without
// token (UNAUTHENTICATED) unless token is empty, with message limits of
// maxMsg bytes.
func NewGRPCServer(s *Server, token string, maxMsg int) *grpc.Server {
	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := checkToken(ctx, token); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := checkToken(ss.Context(), token); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	)
	registerService(g, s)
	return g
}
