//go:build !linux

package worker

import "errors"

// ForkServerSupported reports whether this system can run a fork server.
const ForkServerSupported = false

// errNoForkServer: the fork server needs Linux (pidfds, SCM_RIGHTS over a
// SOCK_SEQPACKET socketpair, waitid with WNOWAIT).
var errNoForkServer = errors.New("worker: the fork server is supported on Linux only")

// ForkServer is a pool's fork server; on this system every fork fails.
type ForkServer struct{}

// ForkServerInfo describes a fork server.
type ForkServerInfo struct {
	PID    int
	Ready  bool
	Starts int
}

// NewForkServer returns a fork server that refuses to fork here.
func NewForkServer(Config) *ForkServer { return &ForkServer{} }

// Info reports no zygote.
func (f *ForkServer) Info() ForkServerInfo { return ForkServerInfo{} }

// Abort does nothing.
func (f *ForkServer) Abort() {}

// Open does nothing.
func (f *ForkServer) Open() {}

// Close does nothing.
func (f *ForkServer) Close() {}

func (f *ForkServer) start(Config, func(string, *pyRecord)) (*process, error) {
	return nil, errNoForkServer
}
