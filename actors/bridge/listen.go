package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
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

// ServerOptions configures NewGRPCServer.
type ServerOptions struct {
	// Credentials authenticate workers (x-snakepit-worker-id + x-snakepit-auth).
	Credentials *Credentials
	// AllowUnauthenticated admits calls that carry no secret, with an empty
	// identity (upstream Snakepit's Python bridge sends none). Such calls
	// can run host tools and forward calls, never pickle.
	AllowUnauthenticated bool
	// MaxMessage bounds one message.
	MaxMessage int
	// TLS, when set, serves TLS (for a listener beyond loopback).
	TLS *tls.Config
}

// NewGRPCServer returns a gRPC server serving s that authenticates every
// call (UNAUTHENTICATED otherwise) and carries the caller's identity in the
// handler's context (Identity).
func NewGRPCServer(s *Server, o ServerOptions) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(o.MaxMessage), grpc.MaxSendMsgSize(o.MaxMessage),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := authenticate(ctx, o.Credentials, o.AllowUnauthenticated)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := authenticate(ss.Context(), o.Credentials, o.AllowUnauthenticated)
			if err != nil {
				return err
			}
			return h(srv, &identityStream{ServerStream: ss, ctx: ctx})
		}),
	}
	if o.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(o.TLS)))
	}
	g := grpc.NewServer(opts...)
	registerService(g, s)
	return g
}

// identityStream is a server stream whose context carries the identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }
