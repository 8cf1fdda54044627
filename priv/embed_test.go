package priv

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbeddedBridgeIsComplete: every file of the Python bridge in the
// source tree (but its tests, examples and caches) is embedded, so a new
// module cannot be left out of the bundle users get.
func TestEmbeddedBridgeIsComplete(t *testing.T) {
	var want []string
	err := filepath.WalkDir("python", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && (p == filepath.Join("python", "tests") || p == filepath.Join("python", "examples") ||
			name == "__pycache__" || strings.HasPrefix(name, ".")) {
			return filepath.SkipDir
		}
		if !d.IsDir() && !strings.HasSuffix(name, ".pyc") && !strings.HasPrefix(name, ".") {
			want = append(want, filepath.ToSlash(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range want {
		if _, err := fs.Stat(Python, p); err != nil {
			t.Errorf("%s is not embedded (add it to the go:embed patterns in embed.go)", p)
		}
	}
	if _, err := os.Stat("python/grpc_server.py"); err != nil || len(want) < 10 {
		t.Fatalf("walked %d files: is the test running in priv/?", len(want))
	}
}
