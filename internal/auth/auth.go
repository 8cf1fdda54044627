// Package auth holds the secrets that authenticate the host and its
// workers to each other: how they are made, the header that carries them,
// and the gRPC client credentials that send them.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
)

// Header carries a secret on every call, in both directions: a worker sends
// its worker secret to the host's bridge, the host sends a worker's server
// secret to that worker.
const Header = "x-snakepit-auth"

// NewSecret returns 32 random bytes, hex-encoded.
func NewSecret() string {
	var b [32]byte
	// crypto/rand.Read never fails on supported systems (it panics itself otherwise).
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Equal compares a presented secret with the expected one in constant time
// (in the length of the expected one); an empty secret never matches.
func Equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// Secret adds Header to every call of a gRPC client
// (grpc.WithPerRPCCredentials). It is sent over unix sockets and loopback
// TCP, where no transport security is needed.
type Secret string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (s Secret) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{Header: string(s)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (s Secret) RequireTransportSecurity() bool { return false }
