//go:build unix

package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// throwawayMain is a user's program in a module of its own.
const throwawayMain = `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	app, err := snakepit.Start(ctx, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "mine", Size: 1}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	defer app.Stop(context.Background())
	if err := app.AwaitReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ready:", err)
		os.Exit(1)
	}
	res, err := app.Execute(ctx, "ping", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ping:", err)
		os.Exit(1)
	}
	fmt.Printf("ping -> %s\n", res.JSON)
}
`

// userEnv is the environment of a user outside this repository: no
// SNAKEPIT_* variable but those named in keep, and python's directory first
// on PATH, so the interpreter is found there as a user's would be. Later
// entries appended to it win (os/exec keeps the last of a duplicate key).
func userEnv(python string, keep ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "SNAKEPIT_") || slices.Contains(keep, k) {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+filepath.Dir(python)+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// TestAThrowawayModuleRunsAPool: a module outside this repository (a temp
// dir whose go.mod replaces snakepit with this checkout) starts a pool and
// calls ping from its own directory, with no snakepit environment
// variable set: the Python bridge comes embedded in the Go module.
func TestAThrowawayModuleRunsAPool(t *testing.T) {
	py := testutil.Python(t)
	root := testutil.RepoRoot(t)
	dir := t.TempDir()
	gomod := "module example.com/throwaway\n\ngo 1.26.0\n\nrequire github.com/snakepit-go/snakepit v0.0.0\n\n" +
		"replace github.com/snakepit-go/snakepit => " + root + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(throwawayMain), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))

	home := t.TempDir() // caches and state of this "user", away from the real ones
	env := append(userEnv(py.Path), "XDG_CACHE_HOME="+filepath.Join(home, "cache"),
		"XDG_STATE_HOME="+filepath.Join(home, "state"), "GOFLAGS=-mod=mod")

	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	tidy := exec.CommandContext(ctx, "go", "mod", "tidy")
	tidy.Dir, tidy.Env = dir, env
	out, err := tidy.CombinedOutput()
	require.NoError(t, err, "go mod tidy: %s", out)
	run := exec.CommandContext(ctx, "go", "run", ".")
	run.Dir, run.Env = dir, env
	out, err = run.CombinedOutput()
	require.NoError(t, err, "go run: %s", out)
	require.Contains(t, string(out), `ping -> "pong"`)

	bridges, err := filepath.Glob(filepath.Join(home, "cache", "snakepit", "bridge-*", "grpc_server.py"))
	require.NoError(t, err)
	require.Len(t, bridges, 1, "the workers ran the embedded bridge from the user's cache")
}
