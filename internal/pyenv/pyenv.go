// Package pyenv finds the Python interpreter that runs the workers: a Python
// 3.10+ that can import grpc and google.protobuf. The candidates, in order, are the
// interpreter named by $SNAKEPIT_PYTHON (when set, it is the only candidate:
// a broken override is an error, never a silent fallback), python3 on $PATH,
// and /usr/bin/python3. Each candidate is probed by running it.
package pyenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// EnvPython is the environment variable that overrides the interpreter.
const EnvPython = "SNAKEPIT_PYTHON"

// SystemPython is the last candidate, tried when python3 on $PATH is missing
// or lacks grpc.
const SystemPython = "/usr/bin/python3"

// ProbeTimeout bounds how long one candidate may take to answer the probe.
const ProbeTimeout = 5 * time.Second

// ErrNotFound is returned (wrapped, see NotFoundError) when no candidate
// interpreter can import grpc and google.protobuf.
var ErrNotFound = errors.New("no Python interpreter with grpc and google.protobuf found")

// probeScript checks the version, imports what the workers need and prints
// the versions of Python, grpcio and protobuf.
const probeScript = `import sys, grpc, google.protobuf; assert sys.version_info >= (3, 10), "Python 3.10+ is needed"; print("%d.%d.%d" % sys.version_info[:3], grpc.__version__, google.protobuf.__version__)`

var versionRE = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// Interpreter is a Python interpreter that passed the probe.
type Interpreter struct {
	// Path is the interpreter as it is to be executed: the $SNAKEPIT_PYTHON
	// value resolved against $PATH, the python3 found on $PATH, or SystemPython.
	Path string
	// Version is the interpreter's own version, e.g. "3.11.2".
	Version string
	// GRPC and Protobuf are the versions of grpcio and protobuf it imports.
	GRPC, Protobuf string
}

// Probe checks the interpreter at path as Find checks its candidates: it
// runs, is Python 3.10+ and imports grpc and google.protobuf.
func Probe(ctx context.Context, path string) (Interpreter, error) {
	return finder{timeout: ProbeTimeout}.probe(ctx, path)
}

// Attempt is one candidate that was tried and why it was rejected.
type Attempt struct {
	// Source says where the candidate came from: "$SNAKEPIT_PYTHON",
	// "python3 on $PATH" or "system".
	Source string
	// Candidate is the path or name that was tried.
	Candidate string
	// Err is why it was rejected.
	Err error
}

// NotFoundError lists every candidate Find tried. It matches ErrNotFound
// with errors.Is, and each attempt's error as well.
type NotFoundError struct {
	Attempts []Attempt
}

// Error implements error.
func (e *NotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("pyenv: ")
	b.WriteString(ErrNotFound.Error())
	b.WriteString("; tried:")
	for _, a := range e.Attempts {
		fmt.Fprintf(&b, " [%s %s: %v]", a.Source, a.Candidate, a.Err)
	}
	return b.String()
}

// Unwrap returns ErrNotFound followed by the attempts' errors.
func (e *NotFoundError) Unwrap() []error {
	errs := []error{ErrNotFound}
	for _, a := range e.Attempts {
		errs = append(errs, a.Err)
	}
	return errs
}

var cache struct {
	mu     sync.Mutex
	key    string
	found  bool
	interp Interpreter
}

// Find returns the first candidate interpreter that can import grpc and
// google.protobuf. A success is cached for the process until $SNAKEPIT_PYTHON
// or $PATH changes; failures are not cached. Concurrent calls wait for one
// probe. The error matches ErrNotFound when no candidate works, and is the
// context's error when ctx ends first.
func Find(ctx context.Context) (Interpreter, error) {
	key := os.Getenv(EnvPython) + "\x00" + os.Getenv("PATH")
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if cache.found && cache.key == key {
		return cache.interp, nil
	}
	interp, err := finder{systemPython: SystemPython, timeout: ProbeTimeout}.find(ctx)
	if err != nil {
		return Interpreter{}, err
	}
	cache.key, cache.found, cache.interp = key, true, interp
	return interp, nil
}

// finder holds what Find's search depends on besides the environment, so
// tests can replace the system interpreter and the timeout.
type finder struct {
	systemPython string
	timeout      time.Duration
}

func (f finder) find(ctx context.Context) (Interpreter, error) {
	if override, ok := os.LookupEnv(EnvPython); ok && override != "" {
		interp, err := f.tryCandidate(ctx, override)
		if err != nil {
			if ctx.Err() != nil {
				return Interpreter{}, fmt.Errorf("pyenv: probing %s=%s: %w", EnvPython, override, ctx.Err())
			}
			return Interpreter{}, &NotFoundError{Attempts: []Attempt{
				{Source: "$" + EnvPython, Candidate: override, Err: fmt.Errorf("%w (not falling back: unset %s or fix it)", err, EnvPython)},
			}}
		}
		return interp, nil
	}

	var attempts []Attempt
	tried := map[string]bool{}
	for _, c := range []struct{ source, name string }{
		{"python3 on $PATH", "python3"},
		{"system", f.systemPython},
	} {
		path, err := exec.LookPath(c.name)
		if err == nil {
			if abs, aerr := filepath.Abs(path); aerr == nil {
				path = abs
			}
			if tried[path] {
				continue
			}
			tried[path] = true
			var interp Interpreter
			if interp, err = f.probe(ctx, path); err == nil {
				return interp, nil
			}
		}
		if ctx.Err() != nil {
			return Interpreter{}, fmt.Errorf("pyenv: probing %s: %w", c.name, ctx.Err())
		}
		if path == "" {
			path = c.name
		}
		attempts = append(attempts, Attempt{Source: c.source, Candidate: path, Err: err})
	}
	return Interpreter{}, &NotFoundError{Attempts: attempts}
}

// tryCandidate resolves name against $PATH (a name with a slash is used as
// is) and probes it.
func (f finder) tryCandidate(ctx context.Context, name string) (Interpreter, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return Interpreter{}, fmt.Errorf("not executable: %w", err)
	}
	return f.probe(ctx, path)
}

// probe runs the interpreter at path with probeScript under f.timeout.
func (f finder) probe(ctx context.Context, path string) (Interpreter, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-c", probeScript)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A child that keeps the pipes open must not hold Wait past the kill.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return Interpreter{}, fmt.Errorf("probe did not answer within %s: %w", f.timeout, ctx.Err())
	}
	if err != nil {
		if reason := lastLine(stderr.String()); reason != "" {
			return Interpreter{}, fmt.Errorf("cannot import grpc and google.protobuf: %s: %w", reason, err)
		}
		return Interpreter{}, fmt.Errorf("probe failed: %w", err)
	}
	out := strings.Fields(stdout.String())
	if len(out) == 0 || !versionRE.MatchString(out[0]) {
		return Interpreter{}, fmt.Errorf("probe printed %q, want a version like 3.11.2", strings.TrimSpace(stdout.String()))
	}
	interp := Interpreter{Path: path, Version: out[0]}
	if len(out) == 3 {
		interp.GRPC, interp.Protobuf = out[1], out[2]
	}
	return interp, nil
}

// lastLine returns the last non-empty line of s: for a Python traceback, the
// exception.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
