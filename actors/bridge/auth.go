package bridge

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/snakepit-go/snakepit/internal/auth"
)

// AuthHeader carries a worker's secret on its calls to the bridge.
const AuthHeader = auth.Header

// Credentials are the secrets of the workers allowed to call the bridge,
// by worker id. A worker's secret is granted before its process starts
// (it reaches the process in its environment) and revoked once the
// process has ended; a secret proves one worker id and nothing more.
// Safe for concurrent use.
type Credentials struct {
	mu      sync.RWMutex
	secrets map[string]string
}

// NewCredentials returns an empty set.
func NewCredentials() *Credentials { return &Credentials{secrets: map[string]string{}} }

// Grant lets workerID authenticate with secret (replacing an earlier one).
func (c *Credentials) Grant(workerID, secret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets[workerID] = secret
}

// Revoke removes workerID's secret if it is still secret (a replacement's
// newer grant stays).
func (c *Credentials) Revoke(workerID, secret string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.secrets[workerID] == secret {
		delete(c.secrets, workerID)
	}
}

// Check reports whether secret is workerID's (constant time in the secret).
func (c *Credentials) Check(workerID, secret string) bool {
	if workerID == "" || secret == "" {
		return false
	}
	c.mu.RLock()
	want, ok := c.secrets[workerID]
	c.mu.RUnlock()
	return ok && auth.Equal(secret, want)
}

type identityKey struct{}

// Identity is who a bridge call was authenticated as: a worker id, or ""
// for a call admitted without credentials (AllowUnauthenticated).
func Identity(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(identityKey{}).(string)
	return id, ok
}

// authenticate checks a call's worker id and secret against creds and
// returns the context carrying the worker's identity. With allowAnonymous,
// a call without a secret is admitted with the empty identity (upstream's
// Python bridge sends none); a wrong secret is refused either way.
func authenticate(ctx context.Context, creds *Credentials, allowAnonymous bool) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	worker, secret := first(md, WorkerHeader), first(md, AuthHeader)
	if secret == "" && allowAnonymous {
		return context.WithValue(ctx, identityKey{}, ""), nil
	}
	if creds == nil || !creds.Check(worker, secret) {
		return nil, status.Error(codes.Unauthenticated, "snakepit bridge: missing or wrong "+AuthHeader+" for "+WorkerHeader)
	}
	return context.WithValue(ctx, identityKey{}, worker), nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}
