package snakepit

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/snakepit-go/snakepit/internal/auth"
)

// startRemote makes the actor system reachable from other nodes at
// hostport ("127.0.0.1:0" picks a port): pools can then be called from
// another node by PID with the poolpb messages. It must run before any PID
// of the App is made, since the system's address changes.
func startRemote(system *actor.ActorSystem, hostport string, auth RemoteAuth) (r *remote.Remote, err error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("snakepit: RemoteAddress %q: %w", hostport, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("snakepit: RemoteAddress %q: bad port", hostport)
	}
	r = remote.NewRemote(system, remote.Configure(host, port, auth.options(recoverStream(system.Logger()))...))
	defer func() { // remote.Start panics when it cannot listen
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("snakepit: start remote at %s: %v", hostport, p)
		}
	}()
	r.Start()
	return r, nil
}

// endpointBarrier orders protoactor remote's endpoint-event handlers before
// its Shutdown. A connection to another node that ends (the node died, or
// was declared down) makes a goroutine of protoactor's publish an
// EndpointTerminatedEvent, whose handler reads the endpoint manager's
// connection map; Shutdown later sets that map to nil, with nothing
// ordering the two — a data race in protoactor that `go test -race` reports
// whenever a node was lost before Stop. The barrier is subscribed after
// remote.Start, so it runs after the manager's handler in the same
// goroutine and releases its mutex; shutdown acquires that mutex before
// remote.Shutdown. (A handler still running at the very moment of Stop is
// protoactor's own race, and not covered.)
type endpointBarrier struct {
	system *actor.ActorSystem
	mu     sync.Mutex
	events int // endpoint events handled; read under mu
	sub    *eventstream.Subscription
}

func newEndpointBarrier(system *actor.ActorSystem) *endpointBarrier {
	b := &endpointBarrier{system: system}
	b.sub = system.EventStream.Subscribe(func(evt any) {
		switch evt.(type) {
		case *remote.EndpointTerminatedEvent, *remote.EndpointConnectedEvent:
			b.mu.Lock()
			b.events++
			b.mu.Unlock()
		}
	})
	return b
}

// shutdown stops r after every endpoint event handled so far.
func (b *endpointBarrier) shutdown(r *remote.Remote, graceful bool) {
	b.mu.Lock()
	events := b.events
	b.mu.Unlock()
	b.system.Logger().Debug("stopping remote", "endpoint_events", events)
	r.Shutdown(graceful)
	b.system.EventStream.Unsubscribe(b.sub)
}

// RemoteAuth authenticates the nodes of a cluster to each other: every
// connection carries the shared Secret (in the auth.Header metadata,
// compared in constant time), and with TLS set the connections are
// encrypted. A node without the secret is refused (UNAUTHENTICATED) before
// protoactor reads any of its messages.
type RemoteAuth struct {
	// Secret is shared by every node (default $SNAKEPIT_REMOTE_SECRET);
	// required whenever remote is on.
	Secret string
	// ServerTLS and ClientTLS, when set, make this node's listener serve
	// TLS and its connections to other nodes use TLS. Set both whenever
	// nodes talk across a network.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
}

// RemoteOptions are the protoactor remote options that make a node speak
// with snakepit nodes secured by a: for an embedding program that starts
// remote itself (StartIn), e.g.
//
//	remote.NewRemote(system, remote.Configure(host, port, snakepit.RemoteOptions(a)...)).Start()
func RemoteOptions(a RemoteAuth) []remote.ConfigOption { return a.options() }

// remoteWindow is the HTTP/2 flow-control window of connections between
// nodes. A fixed window turns off gRPC's bandwidth-delay estimator, whose
// PING per burst of data doubles the frames of small request/reply traffic.
const remoteWindow = 4 << 20

func (a RemoteAuth) options(extra ...grpc.StreamServerInterceptor) []remote.ConfigOption {
	check := func(ctx context.Context) error {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(auth.Header); len(v) == 1 && auth.Equal(v[0], a.Secret) {
			return nil
		}
		return status.Error(codes.Unauthenticated, "snakepit remote: missing or wrong "+auth.Header)
	}
	streams := []grpc.StreamServerInterceptor{func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if err := check(ss.Context()); err != nil {
			return err
		}
		return h(srv, ss)
	}}
	server := []grpc.ServerOption{
		grpc.ChainStreamInterceptor(append(streams, extra...)...),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := check(ctx); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.InitialWindowSize(remoteWindow), grpc.InitialConnWindowSize(remoteWindow),
	}
	dial := []grpc.DialOption{grpc.WithPerRPCCredentials(auth.Secret(a.Secret)),
		grpc.WithInitialWindowSize(remoteWindow), grpc.WithInitialConnWindowSize(remoteWindow)}
	if a.ServerTLS != nil {
		server = append(server, grpc.Creds(credentials.NewTLS(a.ServerTLS)))
	}
	if a.ClientTLS != nil {
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(a.ClientTLS)))
	} else {
		dial = append(dial, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	return []remote.ConfigOption{remote.WithServerOptions(server...), remote.WithDialOptions(dial...)}
}

// recoverStream keeps a bad message from another node from crashing this
// one: protoactor's endpoint reader panics on a message type this process
// does not know (it dereferences the nil type it looked up). The panic ends
// that connection with an error instead; the peer reconnects.
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("remote: a message from another node could not be handled; connection dropped",
					"method", info.FullMethod, "panic", fmt.Sprint(p))
				err = status.Errorf(codes.Internal, "snakepit: message not handled: %v", p)
			}
		}()
		return handler(srv, ss)
	}
}
