package configfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "snakepit.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestLoadFullFile(t *testing.T) {
	p := write(t, `
instance: ops-test
data_dir: state
python: venv/bin/python3
pythonpath: [adapters, /abs/lib]
priv_dir: bridge
log_level: debug
python_log_level: debug
timeout_profile: ml_inference
admin:
  address: 127.0.0.1:7001
metrics:
  enabled: true
pools:
  - name: gpu
    size: 3
    adapter: my.Adapter
    adapter_env: [A=1]
    profile: thread
    threads: 4
    queue_timeout: 2s
    execute_timeout: 1m30s
    stream_timeout: 2h
    timeout_profile: batch
    ttl: 1h
    max_requests: 100
    affinity: strict_queue
    allow_pickle: true
    cuda_devices: ["0", "1"]
    telemetry: {enabled: true, allow: ["tool.*"], sampling_rate: 0.5}
    max_calls_per_worker: 8
    fork_server: true
    fork_preload: [numpy]
    shared_memory_threshold: -1
  - name: cpu
`)
	f, err := Load(p)
	require.NoError(t, err)
	dir := filepath.Dir(p)
	assert.Equal(t, DefaultMetricsAddress, f.Metrics.Address, "enabled without an address: the default port")
	assert.Equal(t, "127.0.0.1:7001", f.Admin.Address)
	cfg, err := f.Config()
	require.NoError(t, err)
	assert.Equal(t, "ops-test", cfg.InstanceName)
	assert.Equal(t, filepath.Join(dir, "state"), cfg.DataDir, "relative to the file")
	assert.Equal(t, filepath.Join(dir, "venv/bin/python3"), cfg.Python)
	assert.Equal(t, []string{filepath.Join(dir, "adapters"), "/abs/lib"}, cfg.PythonPath)
	assert.Equal(t, filepath.Join(dir, "bridge"), cfg.PrivDir)
	assert.Equal(t, "debug", cfg.PythonLogLevel)
	require.Len(t, cfg.Pools, 2)
	gpu := cfg.Pools[0]
	assert.Equal(t, "gpu", gpu.Name)
	assert.Equal(t, 3, gpu.Size)
	assert.Equal(t, "my.Adapter", gpu.Adapter)
	assert.Equal(t, []string{"A=1"}, gpu.AdapterEnv)
	assert.Equal(t, snakepit.ProfileThread, gpu.Profile)
	assert.Equal(t, 4, gpu.Threads)
	assert.Equal(t, 2*time.Second, gpu.QueueTimeout)
	assert.Equal(t, 90*time.Second, gpu.ExecuteTimeout)
	assert.Equal(t, 2*time.Hour, gpu.StreamTimeout)
	assert.Equal(t, snakepit.TimeoutBatch, gpu.TimeoutProfile)
	assert.Equal(t, snakepit.TimeoutMLInference, cfg.TimeoutProfile)
	assert.Equal(t, time.Hour, gpu.TTL)
	assert.Equal(t, 100, gpu.MaxRequests)
	assert.Equal(t, snakepit.AffinityStrictQueue, gpu.Affinity)
	assert.True(t, gpu.AllowPickle)
	assert.Equal(t, []string{"0", "1"}, gpu.CUDADevices)
	assert.Equal(t, snakepit.PythonTelemetry{Enabled: true, Allow: []string{"tool.*"}, SamplingRate: 0.5}, gpu.Telemetry)
	assert.Equal(t, 8, gpu.MaxCallsPerWorker)
	assert.True(t, gpu.ForkServer)
	assert.Equal(t, []string{"numpy"}, gpu.ForkPreload)
	assert.Equal(t, -1, gpu.SharedMemoryThreshold)
	assert.Equal(t, snakepit.PoolConfig{Name: "cpu"}, cfg.Pools[1], "unset keys stay zero: Start's defaults apply")
}

func TestLoadDefaults(t *testing.T) {
	f, err := Load(write(t, "pools: [{name: a}]\n"))
	require.NoError(t, err)
	assert.False(t, f.Metrics.Enabled)
	assert.Equal(t, DefaultAdminAddress, f.Admin.Address)
	assert.Equal(t, "info", f.LogLevel)
	cfg, err := f.Config()
	require.NoError(t, err)
	assert.Equal(t, "", cfg.Python, "no python: Start finds one")
	f, err = Load(write(t, "python: python3\n"))
	require.NoError(t, err)
	cfg, err = f.Config()
	require.NoError(t, err)
	assert.Equal(t, "python3", cfg.Python, "a bare name is looked up in PATH, not made relative")
}

func TestLoadRefusesBadFiles(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown key":       {"pools:\n  - name: a\n    sise: 2\n", "sise"},
		"unknown top key":   {"metrcs: {enabled: true}\n", "metrcs"},
		"bad duration":      {"pools:\n  - name: a\n    queue_timeout: soon\n", "queue_timeout"},
		"bad level":         {"log_level: loud\n", "log_level"},
		"not yaml":          {"pools: [\n", "config"},
		"bad affinity":      {"pools:\n  - name: a\n    affinity: sticky\n", "affinity"},
		"pool without name": {"pools:\n  - size: 2\n", "name is required"},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := Load(write(t, tc.body))
			if err == nil {
				_, err = f.Config()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Error(t, err)
}

// The example file in examples/ loads and turns metrics on at the usual port.
func TestExampleFileLoads(t *testing.T) {
	f, err := Load(filepath.Join(testutil.RepoRoot(t), "examples", "snakepit.yaml"))
	require.NoError(t, err)
	assert.True(t, f.Metrics.Enabled)
	assert.Equal(t, "127.0.0.1:9464", f.Metrics.Address)
	cfg, err := f.Config()
	require.NoError(t, err)
	require.NotEmpty(t, cfg.Pools)
}

func TestRemoteAndCluster(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	p := filepath.Join(dir, "node.yaml")
	require.NoError(t, os.WriteFile(p, []byte(`
remote:
  address: 10.0.0.5:7000
  secret_file: secret
cluster:
  name: prod
  node: node-a
  bind: 10.0.0.5:7946
  seeds: [10.0.0.6:7946, 10.0.0.7:7946]
  timings: loopback
`), 0o600))
	f, err := Load(p)
	require.NoError(t, err)
	cfg, err := f.Config()
	require.NoError(t, err)
	assert.Equal(t, "10.0.0.5:7000", cfg.RemoteAddress)
	assert.Equal(t, "s3cret", cfg.Remote.Secret, "read from the file beside the config")
	assert.Equal(t, "prod", cfg.Cluster.Name)
	assert.Equal(t, "node-a", cfg.Cluster.NodeName)
	assert.Equal(t, []string{"10.0.0.6:7946", "10.0.0.7:7946"}, cfg.Cluster.Seeds)
	assert.Equal(t, snakepit.ClusterLoopback, cfg.Cluster.Timings)

	for name, tc := range map[string]struct {
		body, mode, want string
	}{
		"a secret others can read": {"remote: {address: 127.0.0.1:0, secret_file: secret}\n", "0644", "chmod 600"},
		"no secret file":           {"remote: {address: 127.0.0.1:0, secret_file: nope}\n", "", "nope"},
		"a cluster without remote": {"cluster: {name: x}\n", "", "remote.address"},
		"odd timings":              {"remote: {address: 127.0.0.1:0}\ncluster: {name: x, timings: wan}\n", "", "timings"},
		"a secret in the file":     {"remote: {address: 127.0.0.1:0, secret: plain}\n", "", "secret"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.mode == "0644" {
				require.NoError(t, os.Chmod(secret, 0o644))
				defer os.Chmod(secret, 0o600)
			}
			p := filepath.Join(dir, "bad.yaml")
			require.NoError(t, os.WriteFile(p, []byte(tc.body), 0o600))
			f, err := Load(p)
			if err == nil {
				_, err = f.Config()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
