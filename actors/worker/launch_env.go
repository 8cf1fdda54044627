package worker

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
	"github.com/snakepit-go/snakepit/apps/snakepit/hardware"
	"github.com/snakepit-go/snakepit/internal/shm"
)

// threadLimits keep numeric libraries from starting a thread pool per core
// in every worker (upstream sets the same; "Cannot fork" under load otherwise).
var threadLimits = []string{
	"OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1", "MKL_NUM_THREADS=1",
	"NUMEXPR_NUM_THREADS=1", "VECLIB_MAXIMUM_THREADS=1", "GRPC_ENABLE_FORK_SUPPORT=0",
}

// EnvDevice tells a worker the device it was given ("cuda:0"); unset, the
// worker picks (snakepit_bridge.hardware.device()).
const EnvDevice = "SNAKEPIT_DEVICE"

// LaunchEnv is a worker's environment (README_GRPC.md, "What the Go host
// passes"): the host's, minus the variables the launch contract sets or
// that would point the worker elsewhere, plus the contract's, the thread
// limits (unless the adapter env sets them) and the adapter env. The
// secrets, the pickle switch and the heartbeat settings come from the host
// alone: inherited or adapter-env values of them are dropped.
// Benchmarks use it to start a bare server exactly like a worker.
func LaunchEnv(c Config, readyFile string) []string {
	hostOnly := func(k string) bool {
		return k == EnvServerSecret || k == EnvWorkerSecret || k == EnvAllowPickle || k == EnvHeartbeatConfig ||
			k == shm.EnvDir || k == shm.EnvThreshold ||
			k == EnvWorkerID || k == EnvListen || k == EnvLifeline
	}
	set := map[string]bool{}
	var adapterEnv []string
	for _, kv := range c.AdapterEnv {
		k, _, _ := strings.Cut(kv, "=")
		if hostOnly(k) {
			continue
		}
		set[k] = true
		adapterEnv = append(adapterEnv, kv)
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
		case strings.HasPrefix(k, "SNAKEPIT_READY_FILE"), k == "SNAKEPIT_PROCESS_GROUP", set[k], hostOnly(k),
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
		// Log records as JSON lines the host turns into its own records.
		"SNAKEPIT_LOG_FORMAT=json",
	)
	if c.PythonLogLevel != "" {
		env = append(env, "SNAKEPIT_LOG_LEVEL="+c.PythonLogLevel)
	}
	if c.Telemetry.Enabled {
		env = append(env, "SNAKEPIT_TELEMETRY="+telemetryEnv(c.Telemetry))
	}
	if gpu := c.gpu(); gpu != "" {
		env = append(env, "CUDA_VISIBLE_DEVICES="+gpu, EnvDevice+"="+pinnedDevice)
	}
	if c.WorkerID != "" {
		env = append(env, EnvWorkerID+"="+c.WorkerID)
	}
	if c.listen != "" {
		env = append(env, EnvListen+"="+c.listen)
	}
	env = append(env, EnvLifeline+"=stdin") // the host holds the worker's stdin pipe
	if c.secrets.server != "" {
		env = append(env, EnvServerSecret+"="+c.secrets.server)
	}
	if c.secrets.worker != "" {
		env = append(env, EnvWorkerSecret+"="+c.secrets.worker)
	}
	if c.AllowPickle {
		env = append(env, EnvAllowPickle+"=1")
	}
	if d := c.SharedMemory; d != nil {
		env = append(env, shm.EnvDir+"="+d.Path(), shm.EnvThreshold+"="+strconv.Itoa(d.Threshold()))
	}
	if hb := c.Heartbeat; hb.Enabled() && c.HostAddress != "" {
		env = append(env, EnvHeartbeatConfig+"="+heartbeatEnv(hb))
	}
	for _, kv := range threadLimits {
		if k, _, _ := strings.Cut(kv, "="); !set[k] {
			env = append(env, kv)
		}
	}
	return append(env, adapterEnv...)
}

// heartbeatEnv is SNAKEPIT_HEARTBEAT_CONFIG (upstream's keys) for the
// worker's own heartbeat to the host, with the host's settings.
func heartbeatEnv(hb heartbeat.Config) string {
	hb = hb.WithDefaults()
	b, _ := json.Marshal(map[string]any{
		"enabled": true, "interval_ms": hb.Interval.Milliseconds(), "timeout_ms": hb.Timeout.Milliseconds(),
		"max_missed_heartbeats": hb.MaxMissed, "initial_delay_ms": hb.InitialDelay.Milliseconds(),
		"dependent": !hb.Independent,
	})
	return string(b)
}

// pinnedDevice is the device a worker pinned to a GPU computes on: the one
// GPU it sees.
const pinnedDevice = "cuda:0"

// gpu is the GPU (CUDA_VISIBLE_DEVICES) this worker is pinned to, "" for
// none.
func (c Config) gpu() string {
	return hardware.DeviceFor(c.CUDADevices, hardware.SlotNumber(c.WorkerID))
}

// device is the device the worker computes on: pinnedDevice when it is
// pinned to a GPU, "" (the worker picks) when not.
func (c Config) device() string {
	if c.gpu() == "" {
		return ""
	}
	return pinnedDevice
}
