//go:build unix

package tests

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// runScript builds tests/testdata/runscript and starts it with args.
func runScript(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner, *testutil.SyncBuffer) {
	t.Helper()
	testutil.Python(t)
	bin := filepath.Join(t.TempDir(), "runscript")
	build := exec.Command("go", "build", "-o", bin, "./tests/testdata/runscript")
	build.Dir = testutil.RepoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "SNAKEPIT_PRIV_DIR="+repoPriv(t), "SNAKEPIT_DATA_DIR="+t.TempDir(),
		fmt.Sprintf("RUNSCRIPT_INSTANCE=runscript-%d", time.Now().UnixNano()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // only this test's process group
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(stdout), &stderr
}

// The workers of the script's process group: every Python process whose
// parent is the script.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[1] == fmt.Sprint(pid) {
			var p int
			fmt.Sscan(e.Name(), &p)
			out = append(out, p)
		}
	}
	return out
}

func TestRunStopsOnSIGTERMWithExitCode143(t *testing.T) {
	cmd, lines, stderr := runScript(t)
	require.True(t, lines.Scan(), stderr.String())
	assert.Equal(t, "42", lines.Text())
	require.True(t, lines.Scan(), stderr.String())
	assert.Equal(t, "running", lines.Text())
	workers := childrenOf(cmd.Process.Pid)
	require.NotEmpty(t, workers, "the script's worker")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "exit: %v\n%s", err, stderr.String())
		assert.Equal(t, 143, ee.ExitCode(), stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("the script did not stop on SIGTERM:\n%s", stderr.String())
	}
	assert.Contains(t, stderr.String(), "stopped by terminated")
	for _, pid := range workers {
		assert.False(t, testutil.Alive(pid), "worker %d outlived the script", pid)
	}
}

func TestRunReturnsTheFunctionsErrorAfterStopping(t *testing.T) {
	cmd, lines, stderr := runScript(t, "fail")
	require.True(t, lines.Scan(), stderr.String())
	assert.Equal(t, "42", lines.Text())
	err := cmd.Wait()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "exit: %v", err)
	assert.Equal(t, 1, ee.ExitCode())
	assert.Contains(t, stderr.String(), "the script failed")
}

func TestRunInProcess(t *testing.T) {
	testutil.Python(t)
	var runID string
	err := snakepit.Run(t.Context(), snakepit.Config{
		PrivDir: repoPriv(t), DataDir: t.TempDir(), InstanceName: fmt.Sprintf("run-inproc-%d", time.Now().UnixNano()),
		Logger: testutil.QuietLogger(t), Pools: []snakepit.PoolConfig{{Name: "default", Size: 2}},
	}, func(app *snakepit.App) error {
		runID = app.RunID()
		st, err := app.Stats(t.Context(), "")
		require.NoError(t, err)
		assert.Equal(t, 2, st.Ready, "every worker started before fn")
		_, err = app.Execute(t.Context(), "add", map[string]int{"a": 1, "b": 2})
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, 0, snakepit.ExitCode(err))
	assert.Empty(t, testutil.ProcessesOfRun(runID), "Run stopped its workers")

	// A config Start refuses: its error, nothing started.
	err = snakepit.Run(t.Context(), snakepit.Config{PrivDir: repoPriv(t), DataDir: t.TempDir(),
		Pools: []snakepit.PoolConfig{{Name: "bad name"}}}, func(*snakepit.App) error {
		t.Fatal("fn ran")
		return nil
	})
	require.ErrorIs(t, err, snakepit.ErrInvalidArgument)
	assert.Equal(t, 1, snakepit.ExitCode(err))

	// A context that ends stops fn's calls and the App.
	ctx, cancel := context.WithCancel(t.Context())
	err = snakepit.Run(ctx, snakepit.Config{PrivDir: repoPriv(t), DataDir: t.TempDir(),
		InstanceName: fmt.Sprintf("run-cancel-%d", time.Now().UnixNano()), Logger: testutil.QuietLogger(t),
		Pools: []snakepit.PoolConfig{{Name: "default", Size: 1}}}, func(app *snakepit.App) error {
		runID = app.RunID()
		time.AfterFunc(200*time.Millisecond, cancel)
		_, err := app.Execute(context.Background(), "sleep", map[string]int{"ms": 60000})
		return err
	})
	require.Error(t, err)
	assert.True(t, errors.Is(err, snakepit.ErrShutdown), "the call ends with shutdown: %v", err)
	assert.Empty(t, testutil.ProcessesOfRun(runID))
}
