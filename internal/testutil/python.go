package testutil

import (
	"errors"
	"os"
	"testing"

	"github.com/snakepit-go/snakepit/internal/pyenv"
)

// Python returns the interpreter the tests run workers with. Without a
// Python that can import grpc the test is skipped, or fails when CI is set
// (CI must never skip the tests that use real workers).
func Python(t testing.TB) pyenv.Interpreter {
	t.Helper()
	interp, err := pyenv.Find(t.Context())
	if errors.Is(err, pyenv.ErrNotFound) && os.Getenv("CI") == "" {
		t.Skipf("no Python with grpc (set CI to make this fatal): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return interp
}
