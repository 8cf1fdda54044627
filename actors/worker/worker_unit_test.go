//go:build unix

package worker

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/actors/heartbeat"
)

func TestTailBufferKeepsTheLastBytes(t *testing.T) {
	b := newTailBuffer(16)
	_, _ = b.Write([]byte("line one\n"))
	_, _ = b.Write([]byte("line two\n"))
	_, _ = b.Write([]byte("line three\n"))
	assert.Equal(t, "line three", b.String(), "cut at a line boundary")
	_, _ = b.Write([]byte(strings.Repeat("x", 40)))
	assert.Equal(t, strings.Repeat("x", 16), b.String())
	small := newTailBuffer(100)
	_, _ = small.Write([]byte("a\nb\n"))
	assert.Equal(t, "a\nb", small.String())
}

func validConfig() Config {
	return Config{WorkerID: "p-w1", PoolName: "p", Python: "/usr/bin/python3", Script: "/srv/priv/python/grpc_server.py"}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no id", func(c *Config) { c.WorkerID = "" }, "WorkerID"},
		{"id unsafe for a file name", func(c *Config) { c.WorkerID = "../w" }, "WorkerID"},
		{"no pool", func(c *Config) { c.PoolName = "" }, "PoolName"},
		{"no python", func(c *Config) { c.Python = "" }, "Python"},
		{"relative script", func(c *Config) { c.Script = "grpc_server.py" }, "absolute"},
		{"bad profile", func(c *Config) { c.Profile = "fiber" }, "profile"},
		{"bad transport", func(c *Config) { c.Transport = "pigeon" }, "transport"},
		{"thread without threads", func(c *Config) { c.Profile = ProfileThread }, "Threads"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig()
			c.mod(&cfg)
			err := cfg.Validate()
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestCapacityAndScriptByProfile(t *testing.T) {
	c := validConfig()
	assert.Equal(t, 1, c.Capacity())
	c.Profile, c.Threads, c.ThreadedScript = ProfileThread, 6, "/srv/priv/python/grpc_server_threaded.py"
	assert.Equal(t, 6, c.Capacity())
	assert.Equal(t, c.ThreadedScript, c.script())
}

func TestLaunchArgsCarryTheContract(t *testing.T) {
	c := validConfig()
	c.Adapter, c.AdapterArgs = "pkg.Adapter", []string{"--extra", "1"}
	c.RunID, c.InstanceName, c.InstanceToken, c.HostAddress = "run1", "inst", "tok", "127.0.0.1:5000"
	args := launchArgs(c)
	// Upstream's flags only (the rest travels in the environment).
	want := []string{"-u", c.Script, "--adapter", "pkg.Adapter", "--extra", "1", "--port", "0",
		"--elixir-address", "127.0.0.1:5000", "--snakepit-run-id", "run1",
		"--snakepit-instance-name", "inst", "--snakepit-instance-token", "tok"}
	assert.Equal(t, want, args)

	c.Profile, c.Threads, c.HostAddress, c.InstanceName, c.InstanceToken = ProfileThread, 3, "", "", ""
	args = launchArgs(c)
	assert.Equal(t, "--max-workers 3 --port 0 --snakepit-run-id run1", strings.Join(args[len(args)-6:], " "))
	assert.NotContains(t, args, "--elixir-address")
}

func TestLaunchEnv(t *testing.T) {
	t.Setenv("PYTHONPATH", "/user/lib")
	t.Setenv("SNAKEPIT_READY_FILE", "/stale")
	t.Setenv("SNAKEPIT_GRPC_ADDRESS", "10.9.9.9:1")
	t.Setenv("SNAKEPIT_RUN_ID", "someone-elses")
	c := validConfig()
	c.RunID, c.InstanceName, c.InstanceToken = "run1", "inst", "tok"
	c.PythonPath = []string{"/extra"}
	c.AdapterEnv = []string{"OMP_NUM_THREADS=4", "MY_FLAG=on"}
	env := LaunchEnv(c, "/run/ready")
	get := func(k string) []string {
		var vs []string
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				vs = append(vs, v)
			}
		}
		return vs
	}
	assert.Equal(t, []string{"/srv/priv/python:/extra:/user/lib"}, get("PYTHONPATH"))
	assert.Equal(t, []string{"/run/ready"}, get("SNAKEPIT_READY_FILE"), "the stale one is dropped")
	assert.Equal(t, []string{"1"}, get("SNAKEPIT_PROCESS_GROUP"))
	assert.Equal(t, []string{"4"}, get("OMP_NUM_THREADS"), "adapter env wins over the thread limits")
	assert.Equal(t, []string{"1"}, get("MKL_NUM_THREADS"))
	assert.Equal(t, []string{"on"}, get("MY_FLAG"))
	assert.True(t, slices.Contains(env, "PATH="+os.Getenv("PATH")), "the host environment is inherited")
	assert.Empty(t, get("SNAKEPIT_GRPC_ADDRESS"), "the host passes --elixir-address itself")
	assert.Equal(t, []string{"run1"}, get(EnvRunID), "the run marker, not the inherited one")
	assert.Equal(t, []string{"inst"}, get(EnvInstanceName))
	assert.Equal(t, []string{"tok"}, get(EnvInstanceToken))
	assert.Equal(t, []string{"json"}, get("SNAKEPIT_LOG_FORMAT"), "records as JSON lines for the host")
	assert.Empty(t, get("CUDA_VISIBLE_DEVICES"), "no devices configured: the worker sees what the host sees")
	assert.Empty(t, get(EnvDevice))
}

// Workers spread over the configured GPUs one each, round robin by slot.
func TestLaunchEnvPinsAGPUPerWorker(t *testing.T) {
	t.Setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3") // the host's own view
	c := validConfig()
	c.CUDADevices = []string{"2", "3"}
	last := func(env []string, key string) string { // exec keeps the last of a key
		v := ""
		for _, kv := range env {
			if k, val, _ := strings.Cut(kv, "="); k == key {
				v = val
			}
		}
		return v
	}
	for id, want := range map[string]string{"p-w1": "2", "p-w2": "3", "p-w3": "2"} {
		c.WorkerID = id
		env := LaunchEnv(c, "/r")
		assert.Equal(t, want, last(env, "CUDA_VISIBLE_DEVICES"), id)
		assert.Equal(t, "cuda:0", last(env, EnvDevice), id)
	}
	c.PythonLogLevel = "debug"
	assert.Equal(t, "debug", last(LaunchEnv(c, "/r"), "SNAKEPIT_LOG_LEVEL"))
}

func TestExitInfoError(t *testing.T) {
	e := ExitInfo{OSPid: 42, ExitCode: -1, Signal: "killed", Output: "Traceback…"}.Error("p", "p-w1")
	assert.Equal(t, "worker_exit", e.Code)
	assert.Equal(t, "p", e.Pool)
	assert.Equal(t, "p-w1", e.WorkerID)
	assert.Equal(t, map[string]string{"os_pid": "42", "exit_code": "-1", "signal": "killed", "last_output": "Traceback…"}, e.Details)
	assert.Equal(t, "signal killed", ExitInfo{Signal: "killed"}.String())
	assert.Equal(t, "exit code 3", ExitInfo{ExitCode: 3}.String())
}

func TestLaunchEnvHostOnlyVariables(t *testing.T) {
	t.Setenv(EnvServerSecret, "inherited")
	t.Setenv(EnvAllowPickle, "1")
	t.Setenv(EnvHeartbeatConfig, `{"enabled": false}`)
	c := validConfig()
	c.HostAddress = "127.0.0.1:5000"
	c.AdapterEnv = []string{EnvWorkerSecret + "=from-adapter-env", EnvAllowPickle + "=1", "KEEP=me"}
	c.Heartbeat.Interval = 3 * time.Second
	c.secrets = secrets{server: "s-srv", worker: "s-wrk"}
	c.listen = "unix:/run/w.sock"
	t.Setenv(EnvWorkerID, "inherited")
	get := func(env []string, k string) []string {
		var vs []string
		for _, kv := range env {
			if key, v, _ := strings.Cut(kv, "="); key == k {
				vs = append(vs, v)
			}
		}
		return vs
	}
	env := LaunchEnv(c, "/run/ready")
	assert.Equal(t, []string{"s-srv"}, get(env, EnvServerSecret), "the generation's secret, not an inherited one")
	assert.Equal(t, []string{"s-wrk"}, get(env, EnvWorkerSecret), "AdapterEnv cannot set it")
	assert.Empty(t, get(env, EnvAllowPickle), "only PoolConfig.AllowPickle turns pickle on")
	assert.Equal(t, []string{"me"}, get(env, "KEEP"))
	assert.Equal(t, []string{c.WorkerID}, get(env, EnvWorkerID), "what upstream has no flag for is in the environment")
	assert.Equal(t, []string{"unix:/run/w.sock"}, get(env, EnvListen))
	assert.Equal(t, []string{"stdin"}, get(env, EnvLifeline))
	hb := get(env, EnvHeartbeatConfig)
	require.Len(t, hb, 1)
	assert.JSONEq(t, `{"enabled":true,"interval_ms":3000,"timeout_ms":10000,"max_missed_heartbeats":3,"initial_delay_ms":0,"dependent":true}`, hb[0])
	for _, arg := range launchArgs(c) {
		assert.NotContains(t, arg, "s-srv", "no secret on the command line")
		assert.NotContains(t, arg, "s-wrk")
	}

	c.AllowPickle = true
	c.Heartbeat = heartbeat.Config{Disabled: true}
	env = LaunchEnv(c, "/run/ready")
	assert.Equal(t, []string{"1"}, get(env, EnvAllowPickle))
	assert.Empty(t, get(env, EnvHeartbeatConfig), "a disabled heartbeat is not passed on")
	c.Heartbeat, c.HostAddress = heartbeat.Config{}, ""
	assert.Empty(t, get(LaunchEnv(c, "/run/ready"), EnvHeartbeatConfig), "no bridge, no worker heartbeat")
}
