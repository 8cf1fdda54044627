package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

// TestBenchRunsEveryScenario runs `snakepit bench` in-process with tiny
// settings and checks each result file: positive figures for both paths and
// a positive ratio.
func TestBenchRunsEveryScenario(t *testing.T) {
	testutil.Python(t)
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"bench", "-workers", "1", "-concurrency", "2", "-duration", "200ms", "-startup", "1", "-out", dir,
		"-fork-workers", "1", "-fork-many", "2", "unary", "async", "stream", "binary", "shm", "startup", "fork", "memory"}, &out, &errb)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())

	type phaseJSON struct {
		CallsPerS  float64 `json:"calls_per_s"`
		ChunksPerS float64 `json:"chunks_per_s"`
		MBPerS     float64 `json:"mb_per_s"`
		Errors     int64   `json:"errors"`
	}
	type comparisonJSON struct {
		Pool   phaseJSON `json:"pool"`
		Direct phaseJSON `json:"direct"`
		Ratio  float64   `json:"ratio"`
		Rounds [][2]any  `json:"rounds"`
	}
	read := func(scenario string, results any) map[string]any {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, scenario+".json"))
		require.NoError(t, err)
		var top map[string]any
		require.NoError(t, json.Unmarshal(data, &top), scenario)
		assert.Equal(t, scenario, top["scenario"])
		machine, _ := top["machine"].(map[string]any)
		assert.NotEmpty(t, machine["python_version"], scenario)
		assert.Positive(t, machine["num_cpu"], scenario)
		assert.NotEmpty(t, top["timestamp"], scenario)
		var wrapper struct {
			Results json.RawMessage `json:"results"`
		}
		require.NoError(t, json.Unmarshal(data, &wrapper))
		require.NoError(t, json.Unmarshal(wrapper.Results, results), scenario)
		return top
	}
	checkCmp := func(what string, c comparisonJSON, metric func(phaseJSON) float64) {
		t.Helper()
		assert.Positive(t, metric(c.Pool), what+" pool")
		assert.Positive(t, metric(c.Direct), what+" direct")
		assert.Positive(t, c.Ratio, what+" ratio")
		assert.Zero(t, c.Pool.Errors+c.Direct.Errors, what)
		assert.Len(t, c.Rounds, benchRounds, what)
	}

	var unary comparisonJSON
	top := read("unary", &unary)
	checkCmp("unary", unary, func(p phaseJSON) float64 { return p.CallsPerS })
	assert.Positive(t, top["ratio"])

	var async comparisonJSON
	top = read("async", &async)
	checkCmp("async", async, func(p phaseJSON) float64 { return p.CallsPerS })
	assert.Positive(t, top["ratio"])

	var fork struct {
		Runs []struct {
			Adapter     string  `json:"adapter"`
			Workers     int     `json:"workers"`
			SpawnS      float64 `json:"spawn_ready_s"`
			ForkS       float64 `json:"fork_ready_s"`
			Ratio       float64 `json:"ratio"`
			SpawnPSSKiB float64 `json:"spawn_pss_per_worker_kib"`
			ForkPSSKiB  float64 `json:"fork_pss_per_worker_kib"`
		} `json:"runs"`
		ManyWorkers int     `json:"many_workers"`
		ManyReadyS  float64 `json:"many_ready_s"`
	}
	top = read("fork", &fork)
	assert.Positive(t, top["ratio"])
	require.NotEmpty(t, fork.Runs)
	assert.Equal(t, "showcase", fork.Runs[0].Adapter)
	for _, r := range fork.Runs {
		assert.Equal(t, 1, r.Workers, r.Adapter)
		assert.Positive(t, r.SpawnS, r.Adapter)
		assert.Positive(t, r.ForkS, r.Adapter)
		assert.Positive(t, r.Ratio, r.Adapter)
		assert.Positive(t, r.SpawnPSSKiB, r.Adapter)
		assert.Positive(t, r.ForkPSSKiB, r.Adapter)
	}
	assert.Equal(t, 2, fork.ManyWorkers)
	assert.Positive(t, fork.ManyReadyS)

	var stream comparisonJSON
	read("stream", &stream)
	checkCmp("stream", stream, func(p phaseJSON) float64 { return p.MBPerS })
	checkCmp("stream", stream, func(p phaseJSON) float64 { return p.ChunksPerS })

	var binary struct {
		Sizes []struct {
			SizeBytes int            `json:"size_bytes"`
			Result    comparisonJSON `json:"result"`
		} `json:"sizes"`
	}
	read("binary", &binary)
	require.Len(t, binary.Sizes, len(binarySizes))
	for _, s := range binary.Sizes {
		checkCmp("binary", s.Result, func(p phaseJSON) float64 { return p.MBPerS })
	}

	var shmRes struct {
		comparisonJSON
		PoolGRPC    phaseJSON `json:"pool_grpc"`
		RatioVsGRPC float64   `json:"ratio_vs_pool_grpc"`
	}
	read("shm", &shmRes)
	checkCmp("shm", shmRes.comparisonJSON, func(p phaseJSON) float64 { return p.MBPerS })
	assert.Positive(t, shmRes.PoolGRPC.MBPerS)
	assert.Positive(t, shmRes.RatioVsGRPC)

	var startup struct {
		ColdStartS float64 `json:"cold_start_s"`
		Runs       []struct {
			Workers int     `json:"workers"`
			ReadyS  float64 `json:"ready_s"`
			FloorS  float64 `json:"floor_s"`
			Ratio   float64 `json:"ratio"`
		} `json:"runs"`
	}
	read("startup", &startup)
	assert.Positive(t, startup.ColdStartS)
	require.Len(t, startup.Runs, 1)
	assert.Equal(t, 1, startup.Runs[0].Workers)
	assert.Positive(t, startup.Runs[0].ReadyS)
	assert.Positive(t, startup.Runs[0].FloorS)
	assert.Positive(t, startup.Runs[0].Ratio)

	var memory memoryResult
	top = read("memory", &memory)
	assert.NotContains(t, top, "ratio")
	assert.Positive(t, memory.HostRSSAfter)
	require.Len(t, memory.PythonRSS, 1)
	assert.Positive(t, memory.PythonRSSMean)

	s := out.String()
	for _, want := range []string{"== unary", "== async", "== stream", "== binary", "== shm", "== startup", "== fork", "== memory",
		"best of 2 alternating rounds", "== summary"} {
		assert.Contains(t, s, want)
	}
	summary := s[strings.Index(s, "== summary"):]
	for _, scenario := range []string{"unary", "async", "stream", "binary", "shm", "startup", "fork"} {
		assert.Regexp(t, `(?m)^\s+`+scenario+`\s+ratio [0-9.]+ .*(met|NOT met)$`, summary)
	}
	assert.Regexp(t, `(?m)^\s+memory\s+no ratio`, summary)
}
