//go:build unix

package tests

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// TestExamplesRunFromTheirOwnDirectories builds the examples module
// (examples/go.mod) and runs each program with its own directory as the
// working directory and no snakepit setting but the test's data and cache
// directories; each prints what it should and leaves no worker behind.
func TestExamplesRunFromTheirOwnDirectories(t *testing.T) {
	py := testutil.Python(t)
	examples := filepath.Join(testutil.RepoRoot(t), "examples")
	bin := t.TempDir()
	env := userEnv(py.Path, "SNAKEPIT_DATA_DIR", "SNAKEPIT_CACHE_DIR")

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator), "./...")
	build.Dir, build.Env = examples, env
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build ./... in examples: %s", out)

	stopped := regexp.MustCompile(`snakepit stopped run_id=(\S+)`)
	for name, want := range map[string][]string{
		"hello": {"add(40, 2) = 42 (worker hello-w"},
		"actor": {"sum -> 3", `count -> {"index":0}`, `count -> {"index":2}`, "count -> done",
			"oops -> python_exception: bad input"},
		"sessions":  {"python asked the host: user=ada session=user-ada", "same worker for the session: true"},
		"streaming": {"item 0\nitem 1\nitem 2\nitem 3\n", `after closing the long stream: "pong"`},
	} {
		t.Run(name, func(t *testing.T) {
			run := exec.CommandContext(ctx, filepath.Join(bin, name))
			run.Dir, run.Env = filepath.Join(examples, name), env
			var stdout, stderr strings.Builder
			run.Stdout, run.Stderr = &stdout, &stderr
			require.NoError(t, run.Run(), "%s: %s%s", name, stdout.String(), stderr.String())
			for _, w := range want {
				assert.Contains(t, stdout.String(), w)
			}
			m := stopped.FindStringSubmatch(stderr.String())
			require.NotNil(t, m, "the example stopped its App: %s", stderr.String())
			assert.Empty(t, testutil.ProcessesOfRun(m[1]), "workers of run %s left", m[1])
		})
	}
}
