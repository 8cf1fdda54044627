package bridgepb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// generatedFiles are the files scripts/gen-proto.sh writes, relative to the
// repository root (or to its OUT_ROOT argument).
var generatedFiles = []string{
	"proto/bridgepb/snakepit_bridge.pb.go",
	"proto/bridgepb/snakepit_bridge_grpc.pb.go",
	"proto/poolpb/snakepit_pool.pb.go",
	"proto/controlpb/snakepit_control.pb.go",
	"proto/controlpb/snakepit_control_grpc.pb.go",
	"priv/python/snakepit_bridge/snakepit_control_pb2.py",
	"priv/python/snakepit_bridge/snakepit_control_pb2.pyi",
	"priv/python/snakepit_bridge/snakepit_control_pb2_grpc.py",
	"priv/python/snakepit_bridge/snakepit_bridge_pb2.py",
	"priv/python/snakepit_bridge/snakepit_bridge_pb2.pyi",
	"priv/python/snakepit_bridge/snakepit_bridge_pb2_grpc.py",
}

// TestGeneratedCodeIsFresh regenerates the Go and Python code into a
// temporary directory and compares it byte for byte with the committed files.
func TestGeneratedCodeIsFresh(t *testing.T) {
	for _, tool := range []string{"protoc", "grpc_python_plugin", "go", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			reason := tool + " is not installed (make setup installs it): " + err.Error()
			if os.Getenv("CI") != "" {
				t.Fatal(reason)
			}
			t.Skip(reason)
		}
	}

	root := testutil.RepoRoot(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "gen-proto.sh"), out)
	cmd.Dir = root
	output, err := cmd.CombinedOutput()
	require.NoError(t, err, "scripts/gen-proto.sh %s failed:\n%s", out, output)

	if stale := compareTrees(t, root, out, generatedFiles); len(stale) > 0 {
		t.Errorf("generated code is stale: %v differ from what scripts/gen-proto.sh writes; run make proto", stale)
	}
}

func TestCompareTrees(t *testing.T) {
	files := []string{"a.go", "sub/b.py", "sub/c.pyi"}
	contents := map[string]string{
		"a.go":      "package a\n",
		"sub/b.py":  "x = 1\n",
		"sub/c.pyi": "x: int\n",
	}
	setup := func(t *testing.T) (want, got string) {
		want, got = t.TempDir(), t.TempDir()
		for _, dir := range []string{want, got} {
			for name, body := range contents {
				writeFile(t, filepath.Join(dir, name), body)
			}
		}
		return want, got
	}

	tests := []struct {
		name   string
		mutate func(t *testing.T, want, got string)
		stale  []string
	}{
		{
			name:   "identical",
			mutate: func(*testing.T, string, string) {},
		},
		{
			name: "one file modified",
			mutate: func(t *testing.T, _, got string) {
				writeFile(t, filepath.Join(got, "sub/b.py"), "x = 2\n")
			},
			stale: []string{"sub/b.py"},
		},
		{
			name: "trailing byte only",
			mutate: func(t *testing.T, want, _ string) {
				writeFile(t, filepath.Join(want, "a.go"), "package a\n\n")
			},
			stale: []string{"a.go"},
		},
		{
			name: "missing from the generated tree",
			mutate: func(t *testing.T, _, got string) {
				require.NoError(t, os.Remove(filepath.Join(got, "sub/c.pyi")))
			},
			stale: []string{"sub/c.pyi"},
		},
		{
			name: "missing from the committed tree",
			mutate: func(t *testing.T, want, _ string) {
				require.NoError(t, os.Remove(filepath.Join(want, "a.go")))
			},
			stale: []string{"a.go"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want, got := setup(t)
			tc.mutate(t, want, got)
			assert.Equal(t, tc.stale, compareTrees(t, want, got, files))
		})
	}
}

// compareTrees compares files (slash-separated paths) under the want and got
// roots byte for byte and returns, in the order given, those that differ or
// are missing on either side. The first difference of each is logged.
func compareTrees(t *testing.T, want, got string, files []string) []string {
	t.Helper()
	var stale []string
	for _, name := range files {
		w, werr := os.ReadFile(filepath.Join(want, filepath.FromSlash(name)))
		g, gerr := os.ReadFile(filepath.Join(got, filepath.FromSlash(name)))
		switch {
		case werr != nil || gerr != nil:
			t.Logf("%s: %v", name, errors.Join(werr, gerr))
		case !bytes.Equal(w, g):
			t.Logf("%s: %s", name, firstDifference(w, g))
		default:
			continue
		}
		stale = append(stale, name)
	}
	return stale
}

// firstDifference describes the first line where want and got differ.
func firstDifference(want, got []byte) string {
	wl, gl := bytes.Split(want, []byte("\n")), bytes.Split(got, []byte("\n"))
	for i := 0; i < len(wl) || i < len(gl); i++ {
		if i >= len(wl) || i >= len(gl) || !bytes.Equal(wl[i], gl[i]) {
			return fmt.Sprintf("first difference at line %d: committed %s, generated %s",
				i+1, lineAt(wl, i), lineAt(gl, i))
		}
	}
	return "contents differ"
}

func lineAt(lines [][]byte, i int) string {
	if i >= len(lines) {
		return "<end of file>"
	}
	const maxLen = 120
	if line := lines[i]; len(line) > maxLen {
		return fmt.Sprintf("%q...", line[:maxLen])
	}
	return fmt.Sprintf("%q", lines[i])
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
}
