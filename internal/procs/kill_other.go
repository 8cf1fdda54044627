//go:build !unix

package procs

import (
	"context"
	"fmt"
	"time"
)

// Terminate is not supported on this platform: it returns Survived and an
// error matching ErrUnsupported.
func Terminate(_ context.Context, t Target, _ time.Duration) (Outcome, error) {
	return Survived, fmt.Errorf("procs: terminate %v: %w", t, ErrUnsupported)
}
