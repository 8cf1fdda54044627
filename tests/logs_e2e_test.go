//go:build unix

package tests

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

// logLines parses a JSON slog output into records.
func logLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			recs = append(recs, m)
		}
	}
	return recs
}

func findRecord(recs []map[string]any, msg string) map[string]any {
	for _, r := range recs {
		if r["msg"] == msg {
			return r
		}
	}
	return nil
}

// A worker's Python log records reach the host's slog logger at their own
// levels with the worker's pool and id and the call's correlation id;
// prints reach it at info; the Python level comes from the config.
func TestPythonLogsReachTheHostLog(t *testing.T) {
	var out testutil.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("pylogs"), Logger: logger,
		PythonLogLevel: "info", Pools: []snakepit.PoolConfig{{Name: "logs", Size: 1}}})

	call := func(args map[string]any, opts ...snakepit.ExecuteOption) {
		t.Helper()
		_, err := app.Execute(t.Context(), "log_message", args, append(opts, snakepit.WithPool("logs"))...)
		require.NoError(t, err)
	}
	call(map[string]any{"message": "weights loaded", "level": "warning"}, snakepit.WithCorrelationID("cid-ops-1"))
	call(map[string]any{"message": "hidden detail", "level": "debug"})
	call(map[string]any{"message": "generated id", "level": "info", "printed": true})
	_, err := app.Execute(t.Context(), "raise_error", map[string]string{"kind": "key", "message": "k"},
		snakepit.WithPool("logs"), snakepit.WithCorrelationID("cid-ops-2"))
	require.Error(t, err)

	var recs []map[string]any
	var failed map[string]any
	testutil.Eventually(t, "the records in the host's log", func() bool {
		recs = logLines(t, out.String())
		failed = nil
		for _, r := range recs {
			if m, _ := r["msg"].(string); strings.HasPrefix(m, "tool raise_error failed") {
				failed = r
			}
		}
		return findRecord(recs, "printed: generated id") != nil && findRecord(recs, "weights loaded") != nil &&
			findRecord(recs, "generated id") != nil && failed != nil
	})
	w := findRecord(recs, "weights loaded")
	assert.Equal(t, "WARN", w["level"])
	assert.Equal(t, "logs", w["pool"])
	assert.Equal(t, "logs-w1", w["worker"])
	assert.Equal(t, "python", w["source"])
	assert.Equal(t, "showcase", w["logger"])
	assert.Equal(t, "cid-ops-1", w["correlation_id"])

	g := findRecord(recs, "generated id")
	assert.Equal(t, "INFO", g["level"])
	cid, _ := g["correlation_id"].(string)
	assert.True(t, strings.HasPrefix(cid, app.RunID()+"-"), "a call without one gets its request id: %q", cid)

	p := findRecord(recs, "printed: generated id")
	assert.Equal(t, "INFO", p["level"])
	assert.Equal(t, "python output", p["source"])
	assert.Equal(t, "logs-w1", p["worker"])

	assert.Nil(t, findRecord(recs, "hidden detail"), "below the workers' Python level (info)")
	require.NotNil(t, failed, "the bridge's own record of the failure")
	assert.Equal(t, "cid-ops-2", failed["correlation_id"])
}

// A pool pinned to GPUs gives each worker one, round robin, and tells the
// adapter which device to use (no GPU is needed to see the pinning).
func TestWorkersArePinnedToTheirGPU(t *testing.T) {
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("gpus"),
		Pools: []snakepit.PoolConfig{{Name: "gpu", Size: 3, CUDADevices: []string{"5", "6"}}}})
	ws, err := app.Workers(t.Context(), "gpu")
	require.NoError(t, err)
	seen := map[string]string{}
	for _, w := range ws {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", w.OSPid))
		require.NoError(t, err)
		for _, kv := range strings.Split(string(raw), "\x00") {
			if v, ok := strings.CutPrefix(kv, "CUDA_VISIBLE_DEVICES="); ok {
				seen[w.ID] = v
			}
		}
	}
	assert.Equal(t, map[string]string{"gpu-w1": "5", "gpu-w2": "6", "gpu-w3": "5"}, seen)

	res, err := app.Execute(t.Context(), "hardware_info", nil, snakepit.WithPool("gpu"))
	require.NoError(t, err)
	var info struct {
		Visible    []string `json:"cuda_visible_devices"`
		Device     string   `json:"device"`
		CallDevice string   `json:"call_device"`
	}
	require.NoError(t, res.Decode(&info))
	assert.Equal(t, []string{seen[res.WorkerID]}, info.Visible)
	assert.Equal(t, "cuda:0", info.Device, "the adapter is told the device it sees")
	assert.Equal(t, "cuda:0", info.CallDevice, "in the call's metadata too")
}
