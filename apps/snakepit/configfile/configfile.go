// Package configfile reads a host's configuration from a YAML file (with
// koanf): the pools, where Python and the bridge are, the instance, logging,
// and the admin and metrics endpoints. `snakepit run -config FILE` serves
// what such a file describes; a Go program can load the same file and pass
// File.Config to snakepit.Start.
//
//	instance: my-host
//	log_level: info
//	admin:
//	  address: 127.0.0.1:0
//	metrics:
//	  enabled: true
//	  address: 127.0.0.1:9464
//	pools:
//	  - name: default
//	    size: 4
//	    adapter: snakepit_bridge.adapters.showcase.ShowcaseAdapter
//
// Unknown keys are errors (a misspelt setting is never silently ignored);
// durations are Go durations ("10s", "1m30s").
package configfile

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// File is a host's configuration file.
type File struct {
	// Instance scopes this host's processes and state (Config.InstanceName).
	Instance string `koanf:"instance"`
	// DataDir holds each instance's state (Config.DataDir).
	DataDir string `koanf:"data_dir"`
	// Python, PythonPath and PrivDir: where the interpreter, adapters and
	// the bridge are (Config.Python, PythonPath, PrivDir). Relative paths
	// are relative to the file's directory.
	Python     string   `koanf:"python"`
	PythonPath []string `koanf:"pythonpath"`
	PrivDir    string   `koanf:"priv_dir"`
	// LogLevel is the host's log level: debug, info (default), warn, error.
	LogLevel string `koanf:"log_level"`
	// TimeoutProfile is the pools' default timeout profile (balanced,
	// production, production_strict, development, ml_inference, batch).
	TimeoutProfile string `koanf:"timeout_profile"`
	// PythonLogLevel is the workers' Python logging level (debug, info,
	// warning, error, none; default info): their records reach the host's
	// log at their own levels.
	PythonLogLevel string `koanf:"python_log_level"`
	// Admin is the local admin endpoint (`snakepit status`).
	Admin Admin `koanf:"admin"`
	// Metrics is the Prometheus endpoint.
	Metrics Metrics `koanf:"metrics"`
	// Remote lets other nodes call this host's pools (protoactor remote).
	Remote Remote `koanf:"remote"`
	// Cluster joins a cluster of nodes that reach each other's pools by
	// name (needs remote).
	Cluster Cluster `koanf:"cluster"`
	// Pools are the pools to serve; none means one default pool.
	Pools []Pool `koanf:"pools"`

	dir string // the file's directory
}

// Admin configures the admin endpoint: HTTP on a loopback address, every
// request authenticated with a token kept in the instance directory.
type Admin struct {
	// Disabled turns the endpoint off (it is on by default).
	Disabled bool `koanf:"disabled"`
	// Address is host:port (default 127.0.0.1:0, a port the OS picks;
	// `snakepit status` finds it in the instance directory).
	Address string `koanf:"address"`
}

// Remote is the node's listener for other nodes (Config.RemoteAddress,
// Config.Remote).
type Remote struct {
	// Address is host:port (port 0 picks one); empty: remote is off.
	Address string `koanf:"address"`
	// SecretFile holds the secret every node shares (a file of this user's,
	// mode 0600 or stricter). Without it, $SNAKEPIT_REMOTE_SECRET. The file
	// format has no key for the secret itself: a config file is often
	// shared and checked in, a secret should not be.
	SecretFile string `koanf:"secret_file"`
}

// Cluster is the node's cluster membership (Config.Cluster).
type Cluster struct {
	Name      string   `koanf:"name"`
	Node      string   `koanf:"node"`
	Bind      string   `koanf:"bind"`
	Advertise string   `koanf:"advertise"`
	Seeds     []string `koanf:"seeds"`
	// Timings: lan (default) or loopback (nodes on one machine).
	Timings string `koanf:"timings"`
}

// Metrics configures the Prometheus /metrics endpoint (off by default).
type Metrics struct {
	Enabled bool `koanf:"enabled"`
	// Address is host:port (default 127.0.0.1:9464, the usual port of a
	// Prometheus exporter).
	Address string `koanf:"address"`
	// AllowRemote permits a non-loopback address.
	AllowRemote bool `koanf:"allow_remote"`
	// NoAuth serves /metrics without the bearer token of the instance's
	// metrics.token file (anyone who can reach the address reads it).
	NoAuth bool `koanf:"no_auth"`
}

// Pool is one pool; zero values take snakepit.PoolConfig's defaults.
type Pool struct {
	Name               string        `koanf:"name"`
	Size               int           `koanf:"size"`
	Adapter            string        `koanf:"adapter"`
	AdapterArgs        []string      `koanf:"adapter_args"`
	AdapterEnv         []string      `koanf:"adapter_env"`
	Profile            string        `koanf:"profile"`
	Threads            int           `koanf:"threads"`
	Transport          string        `koanf:"transport"`
	MaxCallsPerWorker  int           `koanf:"max_calls_per_worker"`
	SharedMemory       int           `koanf:"shared_memory_threshold"`
	ForkServer         bool          `koanf:"fork_server"`
	ForkPreload        []string      `koanf:"fork_preload"`
	MaxQueue           int           `koanf:"max_queue"`
	TimeoutProfile     string        `koanf:"timeout_profile"`
	StreamTimeout      time.Duration `koanf:"stream_timeout"`
	QueueTimeout       time.Duration `koanf:"queue_timeout"`
	ExecuteTimeout     time.Duration `koanf:"execute_timeout"`
	StartupConcurrency int           `koanf:"startup_concurrency"`
	ReadyTimeout       time.Duration `koanf:"ready_timeout"`
	StopGrace          time.Duration `koanf:"stop_grace"`
	Affinity           string        `koanf:"affinity"`
	TTL                time.Duration `koanf:"ttl"`
	IdleTTL            time.Duration `koanf:"idle_ttl"`
	MaxRequests        int           `koanf:"max_requests"`
	MaxRequestsJitter  int           `koanf:"max_requests_jitter"`
	MemoryThresholdMB  int           `koanf:"memory_threshold_mb"`
	ExecutionTTL       time.Duration `koanf:"execution_ttl"`
	CancelGrace        time.Duration `koanf:"cancel_grace"`
	DrainTimeout       time.Duration `koanf:"drain_timeout"`
	AllowPickle        bool          `koanf:"allow_pickle"`
	CUDADevices        []string      `koanf:"cuda_devices"`
	Telemetry          Telemetry     `koanf:"telemetry"`
}

// Telemetry is a pool's Python telemetry stream (snakepit.PythonTelemetry).
type Telemetry struct {
	Enabled          bool     `koanf:"enabled"`
	Allow            []string `koanf:"allow"`
	Deny             []string `koanf:"deny"`
	SamplingRate     float64  `koanf:"sampling_rate"`
	SamplingPatterns []string `koanf:"sampling_patterns"`
}

// DefaultMetricsAddress is where metrics are served when enabled without an address.
const DefaultMetricsAddress = "127.0.0.1:9464"

// DefaultAdminAddress is where the admin endpoint listens when no address is set.
const DefaultAdminAddress = "127.0.0.1:0"

// Load reads and checks the file at path.
func Load(path string) (*File, error) {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var f File
	err := k.UnmarshalWithConf("", &f, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToTimeDurationHookFunc(),
		WeaklyTypedInput: true,
		ErrorUnused:      true,
	}})
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f.dir = filepath.Dir(abs)
	if f.Metrics.Enabled && f.Metrics.Address == "" {
		f.Metrics.Address = DefaultMetricsAddress
	}
	if f.Admin.Address == "" {
		f.Admin.Address = DefaultAdminAddress
	}
	if f.LogLevel == "" {
		f.LogLevel = "info"
	}
	if _, err := f.Level(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &f, nil
}

// Level is the file's log level.
func (f *File) Level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return 0, fmt.Errorf("log_level %q: debug, info, warn or error", f.LogLevel)
	}
	return l, nil
}

// path resolves p against the file's directory.
func (f *File) path(p string) string {
	if p == "" || filepath.IsAbs(p) || f.dir == "" {
		return p
	}
	return filepath.Join(f.dir, p)
}

// Config is the snakepit.Config the file describes (without a Logger).
// snakepit.Start validates the rest.
func (f *File) Config() (snakepit.Config, error) {
	cfg := snakepit.Config{
		InstanceName: f.Instance, DataDir: f.path(f.DataDir), PrivDir: f.path(f.PrivDir),
		PythonLogLevel: f.PythonLogLevel, TimeoutProfile: snakepit.TimeoutProfile(f.TimeoutProfile),
	}
	cfg.Python = f.Python
	if f.Python != "" && filepath.Base(f.Python) != f.Python { // a path, not a name looked up in $PATH
		cfg.Python = f.path(f.Python)
	}
	for _, p := range f.PythonPath {
		cfg.PythonPath = append(cfg.PythonPath, f.path(p))
	}
	var errs []error
	for i, p := range f.Pools {
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("pools[%d]: name is required", i))
		}
		aff, err := affinity(p.Affinity)
		if err != nil {
			errs = append(errs, fmt.Errorf("pools[%d]: %w", i, err))
		}
		cfg.Pools = append(cfg.Pools, snakepit.PoolConfig{
			Name: p.Name, Size: p.Size, Adapter: p.Adapter, AdapterArgs: p.AdapterArgs, AdapterEnv: p.AdapterEnv,
			Profile: snakepit.Profile(p.Profile), Threads: p.Threads, Transport: snakepit.Transport(p.Transport),
			MaxCallsPerWorker: p.MaxCallsPerWorker, SharedMemoryThreshold: p.SharedMemory, ForkServer: p.ForkServer, ForkPreload: p.ForkPreload,
			MaxQueue: p.MaxQueue, TimeoutProfile: snakepit.TimeoutProfile(p.TimeoutProfile),
			QueueTimeout: p.QueueTimeout, ExecuteTimeout: p.ExecuteTimeout, StreamTimeout: p.StreamTimeout,
			StartupConcurrency: p.StartupConcurrency, ReadyTimeout: p.ReadyTimeout, StopGrace: p.StopGrace,
			Affinity: aff, TTL: p.TTL, IdleTTL: p.IdleTTL, MaxRequests: p.MaxRequests,
			MaxRequestsJitter: p.MaxRequestsJitter, MemoryThresholdMB: p.MemoryThresholdMB,
			ExecutionTTL: p.ExecutionTTL, CancelGrace: p.CancelGrace, DrainTimeout: p.DrainTimeout,
			AllowPickle: p.AllowPickle, CUDADevices: p.CUDADevices,
			Telemetry: snakepit.PythonTelemetry{Enabled: p.Telemetry.Enabled, Allow: p.Telemetry.Allow, Deny: p.Telemetry.Deny,
				SamplingRate: p.Telemetry.SamplingRate, SamplingPatterns: p.Telemetry.SamplingPatterns},
		})
	}
	if f.Remote.Address != "" {
		cfg.RemoteAddress = f.Remote.Address
		if f.Remote.SecretFile != "" {
			secret, err := readSecret(f.path(f.Remote.SecretFile))
			if err != nil {
				errs = append(errs, err)
			}
			cfg.Remote.Secret = secret
		}
	}
	if c := f.Cluster; c.Name != "" {
		cfg.Cluster = snakepit.ClusterConfig{Name: c.Name, NodeName: c.Node, Bind: c.Bind, Advertise: c.Advertise, Seeds: c.Seeds}
		switch c.Timings {
		case "", "lan":
			cfg.Cluster.Timings = snakepit.ClusterLAN
		case "loopback":
			cfg.Cluster.Timings = snakepit.ClusterLoopback
		default:
			errs = append(errs, fmt.Errorf("cluster.timings %q: lan or loopback", c.Timings))
		}
		if f.Remote.Address == "" {
			errs = append(errs, errors.New("cluster needs remote.address: calls between nodes travel over it"))
		}
	}
	if len(errs) > 0 {
		return snakepit.Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// readSecret reads a secret file, which must be the user's own and not
// readable by others.
func readSecret(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("remote.secret_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("remote.secret_file %s: mode %#o lets others read it (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("remote.secret_file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("remote.secret_file %s is empty", path)
	}
	return secret, nil
}

// affinity parses upstream's names of the session affinity modes.
func affinity(s string) (snakepit.Affinity, error) {
	for _, a := range []snakepit.Affinity{snakepit.AffinityHint, snakepit.AffinityStrictQueue, snakepit.AffinityStrictFailFast} {
		if s == a.String() {
			return a, nil
		}
	}
	if s == "" {
		return snakepit.AffinityHint, nil
	}
	return 0, fmt.Errorf("affinity %q: hint, strict_queue or strict_fail_fast", s)
}
