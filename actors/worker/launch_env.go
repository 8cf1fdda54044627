package worker

import (
	"os"
	"path/filepath"
	"strings"
)

// threadLimits keep numeric libraries from starting a thread pool per core
// in every worker (upstream sets the same; "Cannot fork" under load otherwise).
var threadLimits = []string{
	"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1",
	"NUMEXPR_NUM_THREADS=1", "VECLIB_MAXIMUM_THREADS=1", "GRPC_ENABLE_FORK_SUPPORT=0",
}

// LaunchEnv is a worker's environment (README_GRPC.md, "What the Go host
// passes"): the host's, minus the variables the launch contract sets or
// that would point the worker elsewhere, plus the contract's, the thread
// limits (unless the adapter env sets them) and the adapter env.
// Benchmarks use it to start a bare server exactly like a worker.
func LaunchEnv(c Config, readyFile string) []string {
	set := map[string]bool{}
	for _, kv := range c.AdapterEnv {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	pythonPath := append([]string{filepath.Dir(c.script())}, c.PythonPath...)
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "PYTHONPATH":
			if v != "" {
				pythonPath = append(pythonPath, v)
			}
		case strings.HasPrefix(k, "SNAKEPIT_READY_FILE"), k == "SNAKEPIT_PROCESS_GROUP", set[k],
			k == EnvRunID, k == EnvInstanceName, k == EnvInstanceToken,
			k == "SNAKEPIT_GRPC_ADDRESS", k == "SNAKEPIT_ELIXIR_ADDRESS": // the host passes --elixir-address itself
		default:
			env = append(env, kv)
		}
	}
	env = append(env,
		"PYTHONPATH="+strings.Join(pythonPath, string(os.PathListSeparator)),
		"PYTHONUNBUFFERED=1",
		"SNAKEPIT_READY_FILE="+readyFile,
		"SNAKEPIT_PROCESS_GROUP=1",
		// The run and instance markers, inherited by whatever the worker's
		// tools start: cleanup finds their leftovers by them.
		EnvRunID+"="+c.RunID,
		EnvInstanceName+"="+c.InstanceName,
		EnvInstanceToken+"="+c.InstanceToken,
	)
	for _, kv := range threadLimits {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			env = append(env, kv)
		}
	}
	return append(env, c.AdapterEnv...)
}
