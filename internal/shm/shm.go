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
// instance after a crash. A Dir lends segments to calls and takes them back
// once the worker has answered (idle ones are reused, within a bound); the
// segments of a call that ended unanswered are removed instead, and the
// ones a worker was writing when it died are removed with it
// (RemoveWorker). Names are checked before any file is opened: nothing
// outside the run's directory is ever opened for a name that came over the
// wire.
package shm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/snakepit-go/snakepit/internal/auth"
)

// Metadata keys of the bridge protocol's shared-memory extension.
const (
	// ParamKeyPrefix + <param> holds the Ref of the segment holding binary
	// parameter <param> (whose binary_parameters entry is then empty).
	ParamKeyPrefix = "snakepit_shm:"
	// ResultKey holds the Ref of the segment holding a binary result
	// (binary_result is then empty).
	ResultKey = "snakepit_shm_result"
	// AcceptKey in a request's metadata holds the Ref of a segment the
	// worker may write a large binary result to (its length is the
	// segment's size): the caller takes results by segment. Without it (a
	// direct gRPC client) the worker sends bytes.
	AcceptKey = "snakepit_shm_accept"
	// AcceptOwn as AcceptKey's value: no segment offered, the worker may
	// answer with one of its own (the host adopts it).
	AcceptOwn = "-"
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
// for a worker's (<hex>: 256 random bits, unguessable); never a path.
var validName = regexp.MustCompile(`^(q\.[0-9a-f]{64}|r\.[A-Za-z0-9_-]{1,128}\.[0-9]{1,10}\.[0-9a-f]{64})$`)

// DefaultMaxFree bounds the bytes of idle segments a Dir keeps for reuse.
const DefaultMaxFree = 256 << 20

// Dir is a run's segment directory. It lends segments (files it owns) to
// calls and takes them back when the call is done, so their pages are
// written over rather than allocated, zeroed and freed per call (on tmpfs
// a fresh 16 MiB write costs about 4 times an overwrite).
type Dir struct {
	path      string
	threshold int
	maxFree   int

	mu        sync.Mutex
	free      []Segment // idle, smallest first
	freeBytes int
	lent      int       // segments lent to calls (or held by a view) now
	fullUntil time.Time // after a full file system: no writes tried until then
}

// fullBackoff is how long a Dir sends payloads inline after its file system
// was full (a small /dev/shm, e.g. a container's default 64 MiB), instead of
// writing into it again for every call until it fails.
const fullBackoff = 5 * time.Second

// Segment is one segment file of the directory's own.
type Segment struct {
	Name string
	Cap  int // the file's size
}

// New returns the segment directory at path (an existing private
// directory) for payloads of at least threshold bytes. Idle segments are
// kept up to DefaultMaxFree, or a quarter of the file system's size when
// that is less.
func New(path string, threshold int) *Dir {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	maxFree := DefaultMaxFree
	if size := fsSize(path); size > 0 {
		maxFree = min(maxFree, int(size/4))
	}
	return &Dir{path: path, threshold: threshold, maxFree: maxFree}
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

// Ref is how a segment travels in metadata: "<name>:<length>".
func Ref(name string, n int) string { return name + ":" + strconv.Itoa(n) }

// parseRef splits a Ref; the name is checked.
func parseRef(ref string) (name string, n int, err error) {
	name, num, ok := strings.Cut(ref, ":")
	n, aerr := strconv.Atoi(num)
	if !ok || aerr != nil || n < 0 || !validName.MatchString(name) {
		return "", 0, fmt.Errorf("%w: %q", ErrName, truncate(ref, 80))
	}
	return name, n, nil
}

// Get lends a segment of at least size bytes: an idle one, else a new
// (sparse) file. Give it back with Put when the call is done.
func (d *Dir) Get(size int) (Segment, error) {
	d.mu.Lock()
	for i, s := range d.free {
		if s.Cap >= size {
			d.free = append(d.free[:i], d.free[i+1:]...)
			d.freeBytes -= s.Cap
			d.lent++
			d.mu.Unlock()
			return s, nil
		}
	}
	d.mu.Unlock()
	s := Segment{Name: "q." + auth.NewSecret(), Cap: size}
	f, err := os.OpenFile(filepath.Join(d.path, s.Name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Segment{}, fmt.Errorf("shm: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(size)); err != nil {
		_ = os.Remove(f.Name())
		return Segment{}, fmt.Errorf("shm: %w", err)
	}
	d.mu.Lock()
	d.lent++
	d.mu.Unlock()
	return s, nil
}

// ErrFull: the file system was full a moment ago; the payload goes inline.
var ErrFull = errors.New("shm: the segment file system is full")

// Write lends a segment holding data and returns it with its Ref.
func (d *Dir) Write(data []byte) (Segment, string, error) {
	d.mu.Lock()
	full := time.Now().Before(d.fullUntil)
	d.mu.Unlock()
	if full {
		return Segment{}, "", ErrFull
	}
	s, err := d.Get(len(data))
	if err != nil {
		return Segment{}, "", err
	}
	f, err := os.OpenFile(filepath.Join(d.path, s.Name), os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteAt(data, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		d.Drop(s)
		if errors.Is(err, syscall.ENOSPC) {
			d.Trim() // a small /dev/shm: give the idle pages back
			d.mu.Lock()
			d.fullUntil = time.Now().Add(fullBackoff)
			d.mu.Unlock()
		}
		return Segment{}, "", fmt.Errorf("shm: %w", err) // the caller sends the bytes inline
	}
	return s, Ref(s.Name, len(data)), nil
}

// Put gives a lent segment back: kept for reuse while the idle segments
// stay under the bound, else removed.
func (d *Dir) Put(s Segment) {
	if s.Name == "" {
		return
	}
	d.mu.Lock()
	d.lent--
	if d.freeBytes+s.Cap <= d.maxFree {
		i := 0
		for i < len(d.free) && d.free[i].Cap < s.Cap {
			i++
		}
		d.free = append(d.free[:i], append([]Segment{s}, d.free[i:]...)...)
		d.freeBytes += s.Cap
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	d.discard(s)
}

// Trim removes every idle segment.
func (d *Dir) Trim() {
	d.mu.Lock()
	free := d.free
	d.free, d.freeBytes = nil, 0
	d.mu.Unlock()
	for _, s := range free {
		d.discard(s)
	}
}

func (d *Dir) discard(s Segment) { _ = os.Remove(filepath.Join(d.path, s.Name)) }

// Drop removes a lent segment instead of giving it back: another process
// may still use it (a worker whose call was cancelled), so it is never lent
// again. Whoever has it open or mapped keeps the data until they close it.
func (d *Dir) Drop(s Segment) {
	if s.Name == "" {
		return
	}
	d.mu.Lock()
	d.lent--
	d.mu.Unlock()
	d.discard(s)
}

// ErrName: a segment name that is not one (a path, another worker's, …).
var ErrName = errors.New("shm: not a segment name")

// Take reads a result: ref names either offered, the segment this call
// lent the worker for it, or a new segment of the worker workerID's. The
// segment is this directory's afterwards (a worker's is adopted under a
// name of ours). With view, the bytes are a private mapping (no copy;
// writable, copy-on-write) that the caller must Release, which gives the
// segment back; else they are copied into the Go heap and the segment is
// given back at once.
func (d *Dir) Take(ref string, offered Segment, workerID string, view bool) ([]byte, error) {
	name, n, err := parseRef(ref)
	if err != nil {
		d.Put(offered)
		return nil, err
	}
	seg := offered
	if name != offered.Name {
		if !strings.HasPrefix(name, "r."+workerID+".") {
			d.Put(offered)
			return nil, fmt.Errorf("%w: %q is neither the offered segment nor worker %s's", ErrName, truncate(name, 80), workerID)
		}
		adopted := "q." + auth.NewSecret()
		if err := os.Rename(filepath.Join(d.path, name), filepath.Join(d.path, adopted)); err != nil {
			d.Put(offered)
			return nil, fmt.Errorf("shm: %w", err)
		}
		d.Put(offered) // not used
		seg = Segment{Name: adopted}
		d.mu.Lock()
		d.lent++ // given back like a lent one
		d.mu.Unlock()
	}
	f, err := os.Open(filepath.Join(d.path, seg.Name))
	if err != nil {
		d.Drop(seg)
		return nil, fmt.Errorf("shm: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		d.Drop(seg)
		return nil, fmt.Errorf("shm: %w", err)
	}
	seg.Cap = int(st.Size())
	if n > seg.Cap {
		d.Drop(seg)
		return nil, fmt.Errorf("shm: the result says %d bytes, its segment holds %d", n, seg.Cap)
	}
	if n == 0 {
		d.Put(seg)
		return []byte{}, nil
	}
	if view {
		b, err := mapFile(f, n)
		if err != nil {
			d.Put(seg)
			return nil, err
		}
		track(b, d, seg)
		return b, nil
	}
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	d.Put(seg)
	if err != nil {
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

// Idle is the number of idle segments kept for reuse.
func (d *Dir) Idle() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.free)
}

// Stats counts a directory's segments.
type Stats struct {
	Lent      int // lent to running calls, or held by a view not yet released
	Idle      int // kept for reuse
	IdleBytes int
}

// Stats counts the segments now.
func (d *Dir) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Stats{Lent: d.lent, Idle: len(d.free), IdleBytes: d.freeBytes}
}

// mappings are the live views (Take with view), by their first byte.
var mappings struct {
	sync.Mutex
	m map[*byte]mapping
}

// mapping is a view and the segment it holds until Release.
type mapping struct {
	b   []byte
	dir *Dir
	seg Segment
}

// Release unmaps b if it is a view Take returned; it reports whether it
// was. b (and every slice of it) must not be used afterwards.
func Release(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	p := unsafe.SliceData(b)
	mappings.Lock()
	m, ok := mappings.m[p]
	delete(mappings.m, p)
	mappings.Unlock()
	if !ok {
		return false
	}
	_ = unmap(m.b)
	m.dir.Put(m.seg)
	return true
}

// Views is how many views are mapped (taken and not released).
func Views() int {
	mappings.Lock()
	defer mappings.Unlock()
	return len(mappings.m)
}

func track(b []byte, d *Dir, seg Segment) {
	mappings.Lock()
	if mappings.m == nil {
		mappings.m = map[*byte]mapping{}
	}
	mappings.m[unsafe.SliceData(b)] = mapping{b: b, dir: d, seg: seg}
	mappings.Unlock()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
