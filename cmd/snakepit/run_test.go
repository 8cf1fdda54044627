package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// TestRunServesAConfigFile runs `snakepit run -config` on a file with
// metrics on, then `status -json`, `exec -host` and a scrape of /metrics
// against it, and stops it as Ctrl-C would.
func TestRunServesAConfigFile(t *testing.T) {
	testutil.Python(t)
	dir := t.TempDir()
	inst := fmt.Sprintf("cli-run-%d", time.Now().UnixNano())
	cfgPath := filepath.Join(dir, "snakepit.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
instance: %s
data_dir: state
priv_dir: %s
log_level: warn
metrics:
  enabled: true
  address: 127.0.0.1:0
pools:
  - name: main
    size: 2
`, inst, filepath.Join(testutil.RepoRoot(t), "priv", "python"))), 0o600))
	common := []string{"-data-dir", filepath.Join(dir, "state"), "-instance", inst}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testutil.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- runContext(ctx, []string{"run", "-config", cfgPath}, nil, &out, &errb) }()
	testutil.Eventually(t, "the host serving", func() bool { return strings.Contains(out.String(), "serving") })
	assert.Contains(t, out.String(), "pool     main: 2/2 workers ready")

	// status -json: the workers with live figures.
	var sout, serr strings.Builder
	require.Equal(t, 0, runContext(t.Context(), append([]string{"status", "-json"}, common...), nil, &sout, &serr), serr.String())
	var st admin.Status
	require.NoError(t, json.Unmarshal([]byte(sout.String()), &st), sout.String())
	require.Len(t, st.Pools, 1)
	require.Len(t, st.Pools[0].WorkerList, 2)
	for _, w := range st.Pools[0].WorkerList {
		assert.Equal(t, "ready", w.State)
		assert.True(t, testutil.Alive(w.OSPid))
		assert.Greater(t, w.RSSBytes, uint64(0))
	}
	sout.Reset()
	require.Equal(t, 0, runContext(t.Context(), append([]string{"status"}, common...), nil, &sout, &serr), serr.String())
	assert.Regexp(t, regexp.MustCompile(`main\s+ready\s+closed\s+2/2`), sout.String())

	// status -watch: a snapshot per interval until interrupted (into a
	// buffer, not a terminal: a time line between snapshots, no escapes).
	wctx, wcancel := context.WithTimeout(t.Context(), 450*time.Millisecond)
	sout.Reset()
	require.Equal(t, 0, runContext(wctx, append([]string{"status", "-watch", "-interval", "100ms"}, common...), nil, &sout, &serr), serr.String())
	wcancel()
	assert.GreaterOrEqual(t, strings.Count(sout.String(), "\n--- "), 2, sout.String())
	assert.GreaterOrEqual(t, strings.Count(sout.String(), "main  "), 2)
	assert.NotContains(t, sout.String(), "\033[")

	// exec -host: calls through the running host, errors printed once.
	sout.Reset()
	require.Equal(t, 0, runContext(t.Context(), append([]string{"exec", "-host", "main", "add", "--arg", "a=40", "--arg", "b=2"}, common...), nil, &sout, &serr), serr.String())
	assert.Equal(t, "42", strings.TrimSpace(sout.String()))
	serr.Reset()
	assert.Equal(t, 1, runContext(t.Context(), append([]string{"exec", "-host", "main", "raise_error", "--arg", "kind=value"}, common...), nil, &sout, &serr))
	assert.Contains(t, serr.String(), "python_error/python_exception")
	assert.Equal(t, 1, strings.Count(serr.String(), "snakepit"), serr.String())

	// /metrics with the instance's token: the call counters.
	m := regexp.MustCompile(`metrics  (http://\S+/metrics) \(bearer token in (\S+)\)`).FindStringSubmatch(out.String())
	require.NotNil(t, m, out.String())
	token, err := os.ReadFile(m[2])
	require.NoError(t, err)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, m[1], nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	assert.Contains(t, readAll(t, resp), `snakepit_calls_total{outcome="ok",pool="main",tool="add"} 1`)

	// Ctrl-C: the host stops, its workers with it, and the admin file goes.
	pids := []int{st.Pools[0].WorkerList[0].OSPid, st.Pools[0].WorkerList[1].OSPid}
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errb.String())
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, pid := range pids {
		assert.False(t, testutil.Alive(pid), "worker pid %d outlived the host", pid)
	}
	_, err = os.Stat(filepath.Join(dir, "state", inst, admin.EndpointFile))
	assert.ErrorIs(t, err, os.ErrNotExist)
	serr.Reset()
	assert.Equal(t, 1, runContext(t.Context(), append([]string{"status"}, common...), nil, &sout, &serr))
	assert.Contains(t, serr.String(), "no running host")
}

func TestRunRefusesABadConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(p, []byte("pools:\n  - name: a\n    sise: 2\n"), 0o600))
	var out, errb strings.Builder
	assert.Equal(t, 1, runContext(t.Context(), []string{"run", "-config", p}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "sise")
	errb.Reset()
	assert.Equal(t, 1, runContext(t.Context(), []string{"run", "-config", filepath.Join(t.TempDir(), "none.yaml")}, nil, &out, &errb))
	assert.Contains(t, errb.String(), "none.yaml")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

// A config file with remote: the node's pools are reachable by other
// nodes, with the secret read from its file.
func TestRunServesRemote(t *testing.T) {
	testutil.Python(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("s3cret-for-remote\n"), 0o600))
	cfgPath := filepath.Join(dir, "node.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
instance: cli-remote-%d
data_dir: state
priv_dir: %s
log_level: warn
admin: {disabled: true}
remote: {address: "127.0.0.1:0", secret_file: secret}
pools: [{name: far, size: 1}]
`, time.Now().UnixNano(), filepath.Join(testutil.RepoRoot(t), "priv", "python"))), 0o600))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb testutil.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- runContext(ctx, []string{"run", "-config", cfgPath}, nil, &out, &errb) }()
	testutil.Eventually(t, "the node serving", func() bool { return strings.Contains(out.String(), "serving") })
	assert.Regexp(t, regexp.MustCompile(`pool     far: 1/1 workers ready; other nodes reach it at 127\.0\.0\.1:\d+ id \S+`), out.String())
	assert.NotContains(t, out.String(), "admin ", "the admin endpoint is off")
	assert.NotContains(t, out.String()+errb.String(), "s3cret", "the secret is never printed")
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, errb.String())
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop")
	}
}
