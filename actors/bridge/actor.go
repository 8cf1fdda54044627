package bridge

import (
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/grpc"

	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

func registerService(g *grpc.Server, s *Server) { bridgepb.RegisterBridgeServiceServer(g, s) }

// ActorConfig configures the bridge server actor.
type ActorConfig struct {
	Server *Server
	// Credentials authenticate the workers; AllowUnauthenticated and TLS
	// as in ServerOptions.
	Credentials          *Credentials
	AllowUnauthenticated bool
	TLS                  *tls.Config
	// MaxMessage bounds one message (default 256 MiB, like the worker client).
	MaxMessage int
	// Listener is the listener bound before the tree started (its address
	// was handed to workers); the first start serves it. Listen reopens the
	// same address for a restart.
	Listener net.Listener
	Listen   func() (net.Listener, error)
	// StopGrace bounds the graceful stop; open streams are then cut (default 2s).
	StopGrace time.Duration
	Logger    *slog.Logger
}

// Props returns the bridge server actor: it serves on Started and stops the
// server on Stopping (gracefully within StopGrace, then hard). A restart
// listens again on the same address.
func Props(c ActorConfig) *actor.Props {
	if c.MaxMessage <= 0 {
		c.MaxMessage = 256 << 20
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var mu sync.Mutex
	first := c.Listener
	take := func() (net.Listener, error) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil {
			lis := first
			first = nil
			return lis, nil
		}
		return c.Listen()
	}
	return actor.PropsFromProducer(func() actor.Actor { return &serverActor{cfg: c, take: take} })
}

type serverActor struct {
	cfg   ActorConfig
	take  func() (net.Listener, error)
	grpc  *grpc.Server
	serve sync.WaitGroup
}

func (a *serverActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		lis, err := a.take()
		if err != nil {
			panic(err) // the supervisor retries within its intensity
		}
		a.grpc = NewGRPCServer(a.cfg.Server, ServerOptions{Credentials: a.cfg.Credentials,
			AllowUnauthenticated: a.cfg.AllowUnauthenticated, MaxMessage: a.cfg.MaxMessage, TLS: a.cfg.TLS})
		a.serve.Add(1)
		go func() {
			defer a.serve.Done()
			if err := a.grpc.Serve(lis); err != nil {
				a.cfg.Logger.Error("bridge server stopped serving", "error", err)
			}
		}()
		a.cfg.Logger.Debug("bridge server listening", "address", lis.Addr().String())
	case *actor.Stopping:
		if a.grpc == nil {
			return
		}
		done := make(chan struct{})
		go func() { a.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(a.cfg.StopGrace):
			a.grpc.Stop()
			<-done
		}
		a.serve.Wait()
	}
}
