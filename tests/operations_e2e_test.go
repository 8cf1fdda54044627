//go:build unix

package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// startObservedApp starts a two-worker pool "ops" with metrics on, in an
// instance of its own.
func startObservedApp(t *testing.T) (*snakepit.App, http.Handler) {
	t.Helper()
	mp, handler, err := admin.NewMeterProvider()
	require.NoError(t, err)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	app := startApp(t, snakepit.Config{
		DataDir: t.TempDir(), InstanceName: fmt.Sprintf("ops-%d", time.Now().UnixNano()),
		Pools:         []snakepit.PoolConfig{{Name: "ops", Size: 2}},
		MeterProvider: mp,
	})
	return app, handler
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAdminEndpointStatusAndExecute(t *testing.T) {
	app, _ := startObservedApp(t)
	_, err := admin.Serve(app, admin.Options{Address: "0.0.0.0:0"})
	require.Error(t, err, "a non-loopback admin address is refused")

	srv, err := admin.Serve(app, admin.Options{Logger: testutil.QuietLogger(t)})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = srv.Close(context.Background())
		}
	})

	// The endpoint file: only this user can read it, and it says where and how.
	file := filepath.Join(app.InstanceDir(), admin.EndpointFile)
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	ep, err := admin.ReadEndpoint(app.InstanceDir())
	require.NoError(t, err)
	assert.Equal(t, srv.Address(), ep.Address)
	assert.Equal(t, os.Getpid(), ep.PID)
	assert.Equal(t, app.RunID(), ep.RunID)
	assert.Len(t, ep.Token, 64)

	// No token, a wrong token: refused.
	url := "http://" + ep.Address + "/api/status"
	code, _ := get(t, url, "")
	assert.Equal(t, http.StatusUnauthorized, code)
	code, _ = get(t, url, strings.Repeat("0", 64))
	assert.Equal(t, http.StatusUnauthorized, code)
	_, err = admin.Fetch(t.Context(), admin.Endpoint{Address: ep.Address, Token: "wrong"})
	require.ErrorContains(t, err, "401")

	// Calls through the endpoint: a result, and a tool's exception as the structured error.
	rep, err := admin.Execute(t.Context(), ep, admin.ExecuteRequest{Pool: "ops", Tool: "add", Args: json.RawMessage(`{"a":40,"b":2}`)})
	require.NoError(t, err)
	assert.JSONEq(t, "42", string(rep.Result))
	assert.NotEmpty(t, rep.WorkerID)
	_, err = admin.Execute(t.Context(), ep, admin.ExecuteRequest{Pool: "ops", Tool: "raise_error",
		Args: json.RawMessage(`{"kind":"value","message":"boom"}`)})
	var se *snakepit.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, snakepit.CategoryPythonError, se.Category)
	assert.Equal(t, "ValueError", se.PythonType)
	assert.True(t, errors.Is(err, snakepit.ErrPythonException), "the sentinel matches the error rebuilt from JSON")
	assert.True(t, errors.Is(err, snakepit.ErrValueError), "so does the Python class")
	assert.NotEmpty(t, se.PythonStacktrace)
	assert.Equal(t, "raise_error", se.PythonContext["tool_name"])
	_, err = admin.Execute(t.Context(), ep, admin.ExecuteRequest{Pool: "nosuch", Tool: "add"})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, snakepit.CodePoolNotFound, se.Code)
	// A body that is not a call is refused with a validation error.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+ep.Address+"/api/execute", strings.NewReader(`{"tool":"add","bogus":1}`))
	req.Header.Set("Authorization", "Bearer "+ep.Token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var bad admin.ExecuteReply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&bad))
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.NotNil(t, bad.Error)
	assert.Equal(t, snakepit.CodeInvalidArgument, bad.Error.Code)

	// The status: the pool's figures and each worker's process.
	status, err := admin.Fetch(t.Context(), ep)
	require.NoError(t, err)
	assert.Equal(t, app.Instance(), status.Instance)
	assert.Equal(t, app.RunID(), status.RunID)
	assert.Equal(t, snakepit.Version, status.Version)
	require.Len(t, status.Pools, 1)
	p := status.Pools[0]
	assert.Equal(t, "ops", p.Pool)
	assert.Equal(t, snakepit.PoolReady, p.State)
	assert.Equal(t, 2, p.Ready)
	assert.EqualValues(t, 2, p.Requests, "the two calls that reached the pool")
	assert.EqualValues(t, 1, p.Errors)
	require.Len(t, p.WorkerList, 2)
	served := 0
	for _, w := range p.WorkerList {
		assert.Equal(t, "ready", w.State)
		assert.True(t, testutil.Alive(w.OSPid), "worker %s pid %d", w.ID, w.OSPid)
		assert.Greater(t, w.RSSBytes, uint64(10<<20), "a Python worker holds more than 10 MiB")
		assert.Greater(t, w.Uptime(status.TakenAt), time.Duration(0))
		served += w.Requests
	}
	assert.Equal(t, 1, served, "one successful call")

	// Closing removes the file; the endpoint is gone.
	require.NoError(t, srv.Close(context.Background()))
	closed = true
	_, err = os.Stat(file)
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = admin.ReadEndpoint(app.InstanceDir())
	assert.ErrorIs(t, err, admin.ErrNoEndpoint)
}

// metricValue finds one sample's value in Prometheus text output (-1 when absent).
func metricValue(t *testing.T, body, name string, labels ...string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		require.NoError(t, err, line)
		return v
	}
	return -1
}

func TestMetricsEndpointCountsCalls(t *testing.T) {
	app, handler := startObservedApp(t)
	_, err := admin.ServeMetrics(app.InstanceDir(), handler, admin.MetricsOptions{Address: "0.0.0.0:0"})
	require.Error(t, err, "a non-loopback metrics address needs AllowRemote")

	ms, err := admin.ServeMetrics(app.InstanceDir(), handler, admin.MetricsOptions{Address: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ms.Close(context.Background()) })
	st, err := os.Stat(ms.TokenFile())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	raw, err := os.ReadFile(ms.TokenFile())
	require.NoError(t, err)
	token := strings.TrimSpace(string(raw))

	url := "http://" + ms.Address() + "/metrics"
	code, _ := get(t, url, "")
	assert.Equal(t, http.StatusUnauthorized, code, "no token, no metrics")

	scrape := func() string {
		code, body := get(t, url, token)
		require.Equal(t, http.StatusOK, code)
		return body
	}
	okAdd := []string{`outcome="ok"`, `pool="ops"`, `tool="add"`}
	assert.Equal(t, -1.0, metricValue(t, scrape(), "snakepit_calls_total", okAdd...), "no call yet")
	for i := range 3 {
		_, err := app.Execute(t.Context(), "add", map[string]int{"a": i, "b": 1}, snakepit.WithPool("ops"))
		require.NoError(t, err)
	}
	_, err = app.Execute(t.Context(), "raise_error", map[string]string{"kind": "key", "message": "k"}, snakepit.WithPool("ops"))
	require.Error(t, err)
	body := scrape()
	assert.Equal(t, 3.0, metricValue(t, body, "snakepit_calls_total", okAdd...))
	assert.Equal(t, 1.0, metricValue(t, body, "snakepit_calls_total", `outcome="python_exception"`, `tool="raise_error"`))
	assert.Equal(t, 3.0, metricValue(t, body, "snakepit_call_duration_seconds_count", okAdd...))
	assert.Equal(t, 3.0, metricValue(t, body, "snakepit_call_queue_wait_seconds_count", `pool="ops"`, `tool="add"`))
	assert.Equal(t, 3.0, metricValue(t, body, "snakepit_call_execution_seconds_count", `pool="ops"`, `tool="add"`))
	assert.Equal(t, 4.0, metricValue(t, body, "snakepit_pool_calls_total", `outcome="completed"`, `pool="ops"`))
	assert.Equal(t, 2.0, metricValue(t, body, "snakepit_pool_workers", `pool="ops"`, `state="ready"`))
	assert.Equal(t, 0.0, metricValue(t, body, "snakepit_pool_queue_depth", `pool="ops"`))
	assert.Greater(t, metricValue(t, body, "snakepit_worker_rss_bytes", `pool="ops"`, `worker="ops-w1"`), float64(10<<20))
	assert.Regexp(t, regexp.MustCompile(`(?m)^go_goroutines `), body, "the Go runtime's metrics too")

	// Every metric the Grafana dashboard in examples/ queries is served.
	checkDashboard(t, body)

	// The counters move with the next call.
	_, err = app.Execute(t.Context(), "add", map[string]int{"a": 1, "b": 1}, snakepit.WithPool("ops"))
	require.NoError(t, err)
	assert.Equal(t, 4.0, metricValue(t, scrape(), "snakepit_calls_total", okAdd...))

	// The token file is kept: a second server of the instance uses the same token.
	ms2, err := admin.ServeMetrics(app.InstanceDir(), handler, admin.MetricsOptions{Address: "127.0.0.1:0"})
	require.NoError(t, err)
	defer ms2.Close(context.Background())
	code, _ = get(t, "http://"+ms2.Address()+"/metrics", token)
	assert.Equal(t, http.StatusOK, code)
}

// checkDashboard fails when examples/grafana/snakepit-dashboard.json
// queries a metric that body (a real scrape) does not have.
func checkDashboard(t *testing.T, body string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "grafana", "snakepit-dashboard.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	name := regexp.MustCompile(`snakepit_[a-z_]+`)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				assert.Regexp(t, regexp.MustCompile(`(?m)^`+m+`[{ ]`), body, "panel %q queries %s, which the host does not serve", p.Title, m)
			}
		}
	}
}
