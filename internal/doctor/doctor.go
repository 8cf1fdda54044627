// Package doctor checks that a machine can run snakepit's workers: the
// Python interpreter (and why that one), its grpc and protobuf, the
// bridge, that the adapter imports and initialises, that the data and
// socket directories are usable, that the configured ports are free, and
// the GPUs. Each check says ok, warn, fail or skip, what it saw, and for a
// failure what to do. `snakepit doctor` prints them.
package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/apps/snakepit/hardware"
	"github.com/snakepit-go/snakepit/internal/instance"
	"github.com/snakepit-go/snakepit/internal/pyenv"
)

// Status is a check's outcome.
type Status string

// The outcomes.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
	Skip Status = "skip" // not applicable here (no GPU, no ports configured)
)

// Check is one check's result.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do about a failure or a warning.
	Fix string `json:"fix,omitempty"`
}

// Options say what to check.
type Options struct {
	// PythonPath is added to the adapter's import path.
	PythonPath []string
	// PrivDir holds the bridge (default: as workers find it).
	PrivDir string
	// Adapters are the adapter classes to import and initialise (default
	// the showcase adapter).
	Adapters []string
	// DataDir is the data directory (default as the host finds it).
	DataDir string
	// Addresses are host:port listeners the host will open (admin,
	// metrics, remote); port 0 is skipped.
	Addresses []string
}

// Run runs every check, in order; a check whose foundation failed is
// skipped with the reason.
func Run(ctx context.Context, o Options) []Check {
	var out []Check
	interp, c := checkPython(ctx)
	out = append(out, c, checkPackages(interp))
	py := interp.Path
	priv, c := checkBridge(o.PrivDir)
	out = append(out, c)
	adapters := o.Adapters
	if len(adapters) == 0 {
		adapters = []string{snakepit.DefaultAdapter}
	}
	for _, a := range adapters {
		if py == "" || priv == "" {
			out = append(out, Check{Name: "adapter " + a, Status: Skip, Detail: "no interpreter or bridge"})
			continue
		}
		out = append(out, checkAdapter(ctx, py, priv, o.PythonPath, a))
	}
	out = append(out, checkDataDir(o.DataDir), checkSocketDir())
	out = append(out, checkPorts(o.Addresses))
	out = append(out, checkGPU(hardware.DetectCUDA()))
	return out
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// checkPython finds the interpreter as workers do ($SNAKEPIT_PYTHON, which
// -python sets, else python3 on $PATH, else the system's).
func checkPython(ctx context.Context) (pyenv.Interpreter, Check) {
	c := Check{Name: "python"}
	var source string
	if v := os.Getenv(pyenv.EnvPython); v != "" {
		source = "$" + pyenv.EnvPython + " (or -python)"
	}
	interp, err := pyenv.Find(ctx)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = "install Python 3.10+ with grpcio and protobuf (Debian: apt install python3-grpcio python3-protobuf), or point -python / $SNAKEPIT_PYTHON at one that has them"
		return pyenv.Interpreter{}, c
	}
	if source == "" {
		source = "the system interpreter"
		if p, err := exec.LookPath("python3"); err == nil && samePath(p, interp.Path) {
			source = "python3 on $PATH"
		}
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s (Python %s), chosen from %s", interp.Path, interp.Version, source)
	return interp, c
}

func samePath(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb || a == b
}

// checkPackages reports the grpcio and protobuf the interpreter imports:
// pyenv's probe, which chose it, read their versions.
func checkPackages(interp pyenv.Interpreter) Check {
	c := Check{Name: "python packages"}
	if interp.Path == "" {
		c.Status, c.Detail = Skip, "no interpreter"
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("grpcio %s, protobuf %s", interp.GRPC, interp.Protobuf)
	return c
}

func checkBridge(privDir string) (string, Check) {
	c := Check{Name: "bridge"}
	dir, err := snakepit.FindPrivDir(privDir)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = "point -priv-dir (or $SNAKEPIT_PRIV_DIR) at a directory holding grpc_server.py, or unset it to use the bridge embedded in the binary"
		return "", c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("%s (snakepit_bridge %s)", dir, snakepit.Version)
	return dir, c
}

func checkAdapter(ctx context.Context, python, priv string, pythonPath []string, adapter string) Check {
	c := Check{Name: "adapter " + adapter}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(priv, "grpc_server.py"), "--health-check", "--adapter", adapter)
	path := append([]string{priv}, pythonPath...)
	if v := os.Getenv("PYTHONPATH"); v != "" {
		path = append(path, v)
	}
	cmd.Env = append(os.Environ(), "PYTHONPATH="+strings.Join(path, string(os.PathListSeparator)), "SNAKEPIT_LOG_FORMAT=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		c.Status = Fail
		c.Detail = lastMatching(out.String(), "health check failed")
		if c.Detail == "" {
			c.Detail = fmt.Sprintf("%v: %s", err, lastLine(out.String()))
		}
		c.Fix = "make the adapter importable (-pythonpath DIR adds its directory) and its initialize() succeed; `" +
			python + " " + filepath.Join(priv, "grpc_server.py") + " --health-check --adapter " + adapter + "` shows the whole output"
		return c
	}
	c.Status, c.Detail = OK, lastMatching(out.String(), "health check ok")
	return c
}

func checkDataDir(configured string) Check {
	dir := instance.DataDir(configured)
	c := Check{Name: "data directory"}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = "choose a writable data directory with -data-dir or $SNAKEPIT_DATA_DIR"
		return c
	}
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s is not writable: %v", dir, err)
		c.Fix = "choose a writable data directory with -data-dir or $SNAKEPIT_DATA_DIR"
		return c
	}
	f.Close()
	os.Remove(f.Name())
	c.Status, c.Detail = OK, dir+" is writable"
	return c
}

// socketLimit is the longest unix socket path (sun_path is 108 bytes on
// Linux, 104 on macOS), less the worker's own part of it.
const socketLimit = 104 - len("/spw-a-long-pool-w123-1234567890/w.sock")

func checkSocketDir() Check {
	dir := os.TempDir()
	c := Check{Name: "socket directory"}
	f, err := os.MkdirTemp(dir, "snakepit-doctor-")
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("%s: %v", dir, err)
		c.Fix = "set $TMPDIR to a writable directory"
		return c
	}
	os.Remove(f)
	if len(dir) > socketLimit {
		c.Status, c.Detail = Warn, fmt.Sprintf("%s is %d bytes long: workers' unix socket paths may not fit", dir, len(dir))
		c.Fix = "set $TMPDIR to a shorter directory, or use transport: tcp"
		return c
	}
	c.Status, c.Detail = OK, dir+" is writable and short enough for unix sockets"
	return c
}

func checkPorts(addrs []string) Check {
	c := Check{Name: "ports"}
	var free, busy []string
	for _, a := range addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "0" || port == "" {
			continue
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s (%v)", a, errors.Unwrap(err)))
			continue
		}
		ln.Close()
		free = append(free, a)
	}
	switch {
	case len(busy) > 0:
		c.Status, c.Detail = Fail, "in use: "+strings.Join(busy, ", ")
		c.Fix = "stop what holds the port (ss -ltnp shows it) or configure another address"
	case len(free) == 0:
		c.Status, c.Detail = Skip, "no fixed port configured"
	default:
		c.Status, c.Detail = OK, "free: "+strings.Join(free, ", ")
	}
	return c
}

func checkGPU(cuda hardware.CUDA) Check {
	if !cuda.Available {
		return Check{Name: "gpu", Status: Skip, Detail: "no CUDA: " + cuda.Reason}
	}
	var names []string
	for _, g := range cuda.GPUs {
		names = append(names, fmt.Sprintf("%d: %s (%.1f GiB)", g.Index, g.Name, float64(g.MemoryBytes)/(1<<30)))
	}
	return Check{Name: "gpu", Status: OK, Detail: fmt.Sprintf("driver %s, CUDA %s; %s", cuda.DriverVersion,
		cuda.CUDAVersion, strings.Join(names, "; "))}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// lastMatching is the text after the last line containing what (the log
// prefix cut off), or "".
func lastMatching(s, what string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if j := strings.Index(lines[i], what); j >= 0 {
			return strings.TrimSpace(lines[i][j:])
		}
	}
	return ""
}
