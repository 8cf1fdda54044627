package snakepit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/jsonany"
)

// fakePriv makes a directory with an (empty) grpc_server.py.
func fakePriv(t *testing.T) string {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "grpc_server.py"), nil, 0o644))
	return dir
}

func TestDefaults(t *testing.T) {
	t.Setenv("SNAKEPIT_INSTANCE_NAME", "inst-1")
	t.Setenv("SNAKEPIT_INSTANCE_TOKEN", "")
	cfg, err := Config{PrivDir: fakePriv(t), Python: "/usr/bin/python3"}.withDefaults(context.Background())
	require.NoError(t, err)
	require.Len(t, cfg.Pools, 1)
	p := cfg.Pools[0]
	assert.Equal(t, DefaultPool, p.Name)
	assert.Equal(t, 2*runtime.NumCPU(), p.Size)
	assert.Equal(t, DefaultAdapter, p.Adapter)
	assert.Equal(t, ProfileProcess, p.Profile)
	assert.Equal(t, TransportUnix, p.Transport)
	assert.Equal(t, "inst-1", cfg.InstanceName, "from the environment")
	assert.Equal(t, os.Getenv("SNAKEPIT_DATA_DIR"), cfg.DataDir, "from the environment (set by testutil.Main)")
	require.NotNil(t, cfg.RogueCleanup.Enabled)
	assert.True(t, *cfg.RogueCleanup.Enabled, "the rogue sweep is on by default")

	t.Setenv("SNAKEPIT_INSTANCE_NAME", "")
	off, err := Config{PrivDir: fakePriv(t), Python: "x", RogueCleanup: RogueCleanup{Enabled: Bool(false)}}.withDefaults(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "default", off.InstanceName)
	assert.False(t, *off.RogueCleanup.Enabled, "an explicit false stays")
	assert.Equal(t, filepath.Join(cfg.PrivDir, "grpc_server.py"), cfg.Script)
	assert.Equal(t, 3+2*p.Size, cfg.WorkerMaxRestarts)
	assert.Equal(t, 5*time.Second, cfg.WorkerRestartWindow)

	pc := cfg.poolConfig(p, "run1").WithDefaults()
	assert.Equal(t, 1000, pc.MaxQueue)
	assert.Equal(t, 10*time.Second, pc.QueueTimeout)
	assert.Equal(t, 300*time.Second, pc.ExecuteTimeout)
	assert.Equal(t, "run1", pc.Worker.RunID)

	thr, err := Config{PrivDir: fakePriv(t), Python: "x", Pools: []PoolConfig{{Name: "t", Profile: ProfileThread}}}.withDefaults(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 10, thr.Pools[0].Threads, "upstream threads_per_worker")
}

func TestValidate(t *testing.T) {
	priv := fakePriv(t)
	cases := []struct {
		name  string
		pools []PoolConfig
		want  string
	}{
		{"ok", []PoolConfig{{Name: "a"}, {Name: "b"}}, ""},
		{"duplicate", []PoolConfig{{Name: "a"}, {Name: "a"}}, "configured twice"},
		{"bad name", []PoolConfig{{Name: "a b"}}, "names may hold only"},
		{"negative size", []PoolConfig{{Name: "a", Size: -1}}, "Size must be at least 1"},
		{"negative queue", []PoolConfig{{Name: "a", MaxQueue: -1}}, "MaxQueue"},
		{"profile", []PoolConfig{{Name: "a", Profile: "fiber"}}, "unknown Profile"},
		{"transport", []PoolConfig{{Name: "a", Transport: "carrier-pigeon"}}, "unknown Transport"},
		{"negative duration", []PoolConfig{{Name: "a", QueueTimeout: -time.Second}}, "must not be negative"},
		{"negative calls per worker", []PoolConfig{{Name: "a", MaxCallsPerWorker: -1}}, "must not be negative"},
		{"a preload that is not a module", []PoolConfig{{Name: "a", ForkServer: true, ForkPreload: []string{"os; import x"}}}, "not a Python module name"},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Config{PrivDir: priv, Python: "x", Pools: c.pools}.withDefaults(context.Background())
			require.NoError(t, err)
			err = cfg.validate()
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInvalidArgument)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestValidateScriptsAndInstance(t *testing.T) {
	priv := fakePriv(t)
	script := filepath.Join(priv, "grpc_server.py")
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"custom script, thread profile, no threaded script",
			Config{Script: script, Pools: []PoolConfig{{Name: "t", Profile: ProfileThread}}}, "needs Config.ThreadedScript"},
		{"token with characters a command line cannot carry safely",
			Config{PrivDir: priv, InstanceToken: "abc+/="}, `InstanceToken "abc+/="`},
		{"instance name with a space", Config{PrivDir: priv, InstanceName: "my app"}, `InstanceName "my app"`},
		{"missing script", Config{Script: filepath.Join(priv, "nope.py")}, "not a file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Python = "x"
			cfg, err := c.cfg.withDefaults(context.Background())
			require.NoError(t, err)
			err = cfg.validate()
			assert.ErrorIs(t, err, ErrInvalidArgument)
			assert.ErrorContains(t, err, c.want)
		})
	}
}

func TestStartRejectsBadConfigBeforeStartingAnything(t *testing.T) {
	_, err := Start(context.Background(), Config{PrivDir: fakePriv(t), Python: "x", Pools: []PoolConfig{{Name: ""}}})
	assert.ErrorIs(t, err, ErrValidation)
}

func TestFindPrivDir(t *testing.T) {
	priv := fakePriv(t)
	got, err := FindPrivDir(priv)
	require.NoError(t, err)
	assert.Equal(t, priv, got)

	_, err = FindPrivDir(t.TempDir())
	assert.ErrorContains(t, err, "holds no grpc_server.py")

	t.Setenv("SNAKEPIT_PRIV_DIR", priv)
	got, err = FindPrivDir("")
	require.NoError(t, err)
	assert.Equal(t, priv, got)

	// Nothing configured: the embedded copy, written to the cache once.
	t.Setenv("SNAKEPIT_PRIV_DIR", "")
	cache := t.TempDir()
	t.Setenv("SNAKEPIT_CACHE_DIR", cache)
	got, err = FindPrivDir("")
	require.NoError(t, err)
	assert.Equal(t, cache, filepath.Dir(got))
	assert.Contains(t, filepath.Base(got), "bridge-")
	for _, f := range []string{"grpc_server.py", "grpc_server_threaded.py", "snakepit_bridge/__init__.py",
		"snakepit_bridge/adapters/showcase/adapter.py"} {
		assert.FileExists(t, filepath.Join(got, f))
	}
	again, err := FindPrivDir("")
	require.NoError(t, err)
	assert.Equal(t, got, again)
}

func TestEncodeArgs(t *testing.T) {
	type in struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	cases := []struct {
		name string
		args any
		want string
		bad  bool
	}{
		{"nil", nil, `{}`, false},
		{"nil map", map[string]any(nil), `{}`, false},
		{"map", map[string]any{"a": 1, "b": []any{"x", 2.5}, "c": nil}, `{"a":1,"b":["x",2.5],"c":null}`, false},
		{"typed map", map[string]int{"a": 1, "b": 2}, `{"a":1,"b":2}`, false},
		{"nil typed map", map[string]int(nil), `{}`, false},
		{"raw null", json.RawMessage(`null`), `{}`, false},
		{"raw with spaces", json.RawMessage(" {\"a\": [1, 2]} \n"), `{"a":[1,2]}`, false},
		{"raw trailing garbage", []byte(`{"a":1} x`), "", true},
		{"map with an unencodable value", map[string]any{"ok": 1, "f": func() {}}, "", true},
		{"struct", in{A: 1, B: "x"}, `{"a":1,"b":"x"}`, false},
		{"raw", []byte(`{"z": true}`), `{"z": true}`, false},
		{"slice", []int{1}, "", true},
		{"string", "x", "", true},
		{"unencodable", map[string]any{"f": func() {}}, "", true},
		{"raw not object", []byte(`[1]`), "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := encodeArgs(c.args)
			if c.bad {
				assert.ErrorIs(t, public(err), ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			members := map[string]json.RawMessage{}
			for k, a := range got {
				assert.Equal(t, jsonany.TypeURLPrefix, a.GetTypeUrl()[:len(jsonany.TypeURLPrefix)], "a kind of ours")
				raw, err := jsonany.Unpack(a)
				require.NoError(t, err)
				members[k] = raw
			}
			b, err := json.Marshal(members)
			require.NoError(t, err)
			assert.JSONEq(t, c.want, string(b))
		})
	}
}

func TestRemoteNeedsASecret(t *testing.T) {
	t.Setenv(EnvRemoteSecret, "")
	_, err := Start(t.Context(), Config{RemoteAddress: "127.0.0.1:0", Script: os.Args[0], Python: "python3"})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, CategoryValidation, e.Category)
	require.Contains(t, e.Message, "Remote.Secret")
}

func TestClusterNeedsRemote(t *testing.T) {
	_, err := Start(t.Context(), Config{Cluster: ClusterConfig{Name: "c"}, Script: os.Args[0], Python: "python3"})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, CategoryValidation, e.Category)
	require.Contains(t, e.Message, "RemoteAddress")
}

func TestWorkersShutdownCoversAStopOfHungWorkers(t *testing.T) {
	small := Config{Pools: []PoolConfig{{Name: "a", Size: 4}}}
	require.Equal(t, 30*time.Second, workersShutdown(small), "the floor")
	big := Config{Pools: []PoolConfig{{Name: "a", Size: 100, StopGrace: 5 * time.Second}, {Name: "b", Size: 60}}}
	perWorker := big.workerConfig(big.Pools[0], "").ShutdownTimeout()
	groups := (2*160 + workerStopConcurrency - 1) / workerStopConcurrency
	require.GreaterOrEqual(t, workersShutdown(big), time.Duration(groups)*perWorker,
		"every group of hung workers gets its full shutdown time")
}
