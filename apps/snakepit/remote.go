package snakepit

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startRemote makes the actor system reachable from other nodes at
// hostport ("127.0.0.1:0" picks a port): pools can then be called from
// another node by PID with the poolpb messages. It must run before any PID
// of the App is made, since the system's address changes.
func startRemote(system *actor.ActorSystem, hostport string) (r *remote.Remote, err error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("snakepit: RemoteAddress %q: %w", hostport, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("snakepit: RemoteAddress %q: bad port", hostport)
	}
	r = remote.NewRemote(system, remote.Configure(host, port, remote.WithServerOptions(
		grpc.ChainStreamInterceptor(recoverStream(system.Logger())),
	)))
	defer func() { // remote.Start panics when it cannot listen
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("snakepit: start remote at %s: %v", hostport, p)
		}
	}()
	r.Start()
	return r, nil
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
