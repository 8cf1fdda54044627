// Package shm moves large binary payloads between the host and its Python
// workers through shared memory instead of gRPC: the side that has the
// bytes writes them to a segment (a file in a private tmpfs directory,
// /dev/shm when the system has one), and only its name travels in the
// call's metadata. The other side maps it (Python: a memoryview; Go: a
// []byte view released with Release) or copies it once.
//
// Segments are files, so they are owned, counted and removed like the
// processes: a run's segments live in its own directory (a rundir with an
// owner file), removed at a clean stop and by the next start of the
// instance after a crash; a call's request segment is removed when the
// call ends; a result segment is unlinked as soon as the host has mapped
// it; and the segments a worker was writing when it died are removed with
// it (RemoveWorker). Names are checked before any file is opened: nothing
// outside the run's directory is ever opened for a name that came over
// the wire.
package shm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Metadata keys of the bridge protocol's shared-memory extension.
const (
	// ParamKeyPrefix + <param> names the segment holding binary parameter
	// <param> (whose binary_parameters entry is then empty).
	ParamKeyPrefix = "snakepit_shm:"
	// ResultKey names the segment holding a binary result (binary_result
	// is then empty).
	ResultKey = "snakepit_shm_result"
	// ZeroCopyKey = "1" in a call's request metadata (set by the host's
	// App only) asks for a shared-memory result as a view (see Take).
	ZeroCopyKey = "snakepit_zero_copy"
	// EnvDir and EnvThreshold tell a worker where segments live and from
	// which size it should write its results to one.
	EnvDir       = "SNAKEPIT_SHM_DIR"
	EnvThreshold = "SNAKEPIT_SHM_THRESHOLD"
)

// DefaultThreshold is the payload size from which bytes travel in shared
// memory.
const DefaultThreshold = 1 << 20

// validName is a segment name: q.<hex> for the host's, r.<worker>.<pid>.<hex>
// for a worker's; never a path.
var validName = regexp.MustCompile(`^(q\.[0-9a-f]{32}|r\.[A-Za-z0-9_-]{1,128}\.[0-9]{1,10}\.[0-9a-f]{32})$`)

// Dir is a run's segment directory.
type Dir struct {
	path      string
	threshold int
	created   atomic.Int64
}

// New returns the segment directory at path (an existing private
// directory) for payloads of at least threshold bytes.
func New(path string, threshold int) *Dir {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	return &Dir{path: path, threshold: threshold}
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// Threshold is the size from which payloads go through shared memory.
func (d *Dir) Threshold() int { return d.threshold }

// Base is where segment directories go: /dev/shm when it is a writable
// directory, else "" (the system's temp dir).
func Base() string {
	const devShm = "/dev/shm"
	if st, err := os.Stat(devShm); err == nil && st.IsDir() {
		if f, err := os.CreateTemp(devShm, ".snakepit-probe-"); err == nil {
			name := f.Name()
			_ = f.Close()
			_ = os.Remove(name)
			return devShm
		}
	}
	return ""
}

// Put writes data to a new segment and returns its name. The caller
// removes it (Remove) when the call that carries it has ended.
func (d *Dir) Put(data []byte) (string, error) {
	name := "q." + randomHex()
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("shm: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("shm: %w", err) // ENOSPC on a small /dev/shm: the caller sends the bytes inline
	}
	d.created.Add(1)
	return name, nil
}

// Remove removes a segment (a missing one is not an error).
func (d *Dir) Remove(name string) {
	if validName.MatchString(name) {
		_ = os.Remove(filepath.Join(d.path, name))
	}
}

// ErrName: a segment name that is not one (a path, another worker's, …).
var ErrName = errors.New("shm: not a segment name")

// Take reads the result segment name, written by the worker workerID, and
// unlinks it. With view, the bytes are a private mapping of the segment
// (no copy; writable, copy-on-write) that the caller must Release; else
// they are copied into the Go heap and the segment is gone.
func (d *Dir) Take(name, workerID string, view bool) ([]byte, error) {
	if !validName.MatchString(name) || !strings.HasPrefix(name, "r."+workerID+".") {
		return nil, fmt.Errorf("%w: %q", ErrName, truncate(name, 80))
	}
	path := filepath.Join(d.path, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	defer f.Close()
	_ = os.Remove(path) // the data lives until the mapping or the copy is done
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	size := st.Size()
	if size == 0 {
		return []byte{}, nil
	}
	if view {
		return mapFile(f, int(size))
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("shm: %w", err)
	}
	return b, nil
}

// RemoveWorker removes what the worker workerID (OS pid pid) left: the
// result segments it was writing when it ended.
func (d *Dir) RemoveWorker(workerID string, pid int) int {
	names, _ := filepath.Glob(filepath.Join(d.path, "r."+workerID+"."+strconv.Itoa(pid)+".*"))
	n := 0
	for _, p := range names {
		if os.Remove(p) == nil {
			n++
		}
	}
	return n
}

// Segments counts the segments in the directory now.
func (d *Dir) Segments() int {
	es, _ := os.ReadDir(d.path)
	n := 0
	for _, e := range es {
		if validName.MatchString(e.Name()) {
			n++
		}
	}
	return n
}

// mappings are the live views (Take with view), by their first byte.
var mappings struct {
	sync.Mutex
	m map[*byte][]byte
}

// Release unmaps b if it is a view Take returned; it reports whether it
// was. b (and every slice of it) must not be used afterwards.
func Release(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	p := unsafe.SliceData(b)
	mappings.Lock()
	full, ok := mappings.m[p]
	delete(mappings.m, p)
	mappings.Unlock()
	if !ok {
		return false
	}
	_ = unmap(full)
	return true
}

// Views is how many views are mapped (taken and not released).
func Views() int {
	mappings.Lock()
	defer mappings.Unlock()
	return len(mappings.m)
}

func track(b []byte) {
	mappings.Lock()
	if mappings.m == nil {
		mappings.m = map[*byte][]byte{}
	}
	mappings.m[unsafe.SliceData(b)] = b
	mappings.Unlock()
}

func randomHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
