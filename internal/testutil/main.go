package testutil

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Main runs a test package's tests with its own snakepit data directory
// (SNAKEPIT_DATA_DIR: instance tokens and process registries stay out of
// the user's home and away from other packages' runs), removed afterwards,
// and checks for leaked goroutines.
func Main(m *testing.M, opts ...goleak.Option) {
	dir, err := os.MkdirTemp("", "snakepit-test-data-")
	if err != nil {
		panic(err)
	}
	if os.Getenv("SNAKEPIT_DATA_DIR") == "" {
		_ = os.Setenv("SNAKEPIT_DATA_DIR", dir)
	}
	// The embedded bridge is written here, not to the user's cache.
	if os.Getenv("SNAKEPIT_CACHE_DIR") == "" {
		_ = os.Setenv("SNAKEPIT_CACHE_DIR", filepath.Join(dir, "cache"))
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			os.Stderr.WriteString("goleak: errors on successful test run: " + err.Error() + "\n")
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// QuietLogger discards logs, or shows warnings when the tests run with -v.
func QuietLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
