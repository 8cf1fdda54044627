package pyenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrBridgeNotInstalled reports that an interpreter has no snakepit_bridge
// installed (pip install ./priv/python puts one there).
var ErrBridgeNotInstalled = errors.New("snakepit_bridge is not installed for this interpreter")

// InstalledBridge is a snakepit_bridge package an interpreter imports by
// itself (from its site-packages, user site or PYTHONPATH).
type InstalledBridge struct {
	// Dir is the package directory (…/site-packages/snakepit_bridge).
	Dir string
	// Version is the package's release (snakepit_bridge.__version__).
	Version string
	// Protocol is the bridge protocol version it speaks (0 when the
	// package does not say: a foreign or too old one).
	Protocol int
}

// Script is the installed worker server (threaded: the thread profile's).
func (b InstalledBridge) Script(threaded bool) string {
	if threaded {
		return filepath.Join(b.Dir, "launch", "grpc_server_threaded.py")
	}
	return filepath.Join(b.Dir, "launch", "grpc_server.py")
}

// bridgeProbe finds snakepit_bridge without importing it (no grpc import,
// no package code run) and reads its version module, which imports
// nothing. The working directory is not searched: ” and '.' are dropped
// from sys.path first, and the probe runs in "/", so a directory another
// user can write (a shared /tmp) cannot plant a package.
const bridgeProbe = `import sys, json, os, importlib.util, runpy
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
spec = importlib.util.find_spec("snakepit_bridge")
if spec is None or not spec.submodule_search_locations:
    print(json.dumps({}))
    raise SystemExit(0)
d = list(spec.submodule_search_locations)[0]
v = {}
vf = os.path.join(d, "version.py")
if os.path.isfile(vf):
    v = runpy.run_path(vf)
print(json.dumps({"dir": d, "version": str(v.get("__version__", "")), "protocol": int(v.get("PROTOCOL_VERSION", 0))}))`

// bridgeCache keeps each probe's answer for the life of the process, as
// Find does for the interpreter: an App start costs no Python start (about
// 25 ms) for a question already answered. Keyed by interpreter and path.
var bridgeCache struct {
	mu sync.Mutex
	m  map[string]probed
}

type probed struct {
	b   InstalledBridge
	err error
}

// FindInstalledBridge asks python where its snakepit_bridge is, with
// pythonPath added to PYTHONPATH as the workers' will be. It returns
// ErrBridgeNotInstalled when there is none, or a package without the
// worker servers under launch/. The answer is kept for the process's life
// (per interpreter and path); a package installed meanwhile counts from
// the next process.
func FindInstalledBridge(ctx context.Context, python string, pythonPath []string) (InstalledBridge, error) {
	path := append(append([]string{}, pythonPath...), os.Getenv("PYTHONPATH"))
	key := python + "\x00" + strings.Join(path, "\x00")
	bridgeCache.mu.Lock()
	defer bridgeCache.mu.Unlock()
	if p, ok := bridgeCache.m[key]; ok {
		return p.b, p.err
	}
	b, err := probeBridge(ctx, python, pythonPath)
	if ctx.Err() == nil { // a cancelled probe answered nothing
		if bridgeCache.m == nil {
			bridgeCache.m = map[string]probed{}
		}
		bridgeCache.m[key] = probed{b, err}
	}
	return b, err
}

func probeBridge(ctx context.Context, python string, pythonPath []string) (InstalledBridge, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", bridgeProbe)
	cmd.Dir = string(filepath.Separator)
	path := append([]string{}, pythonPath...)
	var env []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PYTHONPATH" {
			if v != "" {
				path = append(path, v)
			}
			continue
		}
		env = append(env, kv)
	}
	if len(path) > 0 {
		env = append(env, "PYTHONPATH="+strings.Join(path, string(os.PathListSeparator)))
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return InstalledBridge{}, fmt.Errorf("pyenv: %s: looking for snakepit_bridge: %w", python, ctx.Err())
		}
		return InstalledBridge{}, fmt.Errorf("pyenv: %s: looking for snakepit_bridge: %s: %w", python, lastLine(stderr.String()), err)
	}
	var got struct {
		Dir      string `json:"dir"`
		Version  string `json:"version"`
		Protocol int    `json:"protocol"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		return InstalledBridge{}, fmt.Errorf("pyenv: %s: the snakepit_bridge probe printed %q: %w", python, stdout.String(), err)
	}
	if got.Dir == "" {
		return InstalledBridge{}, fmt.Errorf("pyenv: %s: %w", python, ErrBridgeNotInstalled)
	}
	b := InstalledBridge{Dir: got.Dir, Version: got.Version, Protocol: got.Protocol}
	if st, err := os.Stat(b.Script(false)); err != nil || st.IsDir() {
		return b, fmt.Errorf("pyenv: %s: snakepit_bridge in %s has no launch/grpc_server.py (not this project's, or older than 0.2): %w",
			python, b.Dir, ErrBridgeNotInstalled)
	}
	return b, nil
}
