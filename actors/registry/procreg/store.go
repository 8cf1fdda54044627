// Package procreg is the process registry: every OS process the host spawns,
// recorded in a bbolt file (<data dir>/<instance>/processes.db) so that a
// later start of the same instance, or `snakepit cleanup`, can find what a
// crashed host left behind.
//
// A worker reserves its entry before it spawns, activates it with the OS
// pid and process group once spawned, and removes it when the process is
// reaped. Writes are batched; a worker asks for Sync before it reports
// ready, so a ready worker's entry is on disk. Each run (one App start)
// also records its host's pid and start time, which is how cleanup tells a
// live host's processes (never touched) from a dead host's.
//
// The file is opened for each batch and closed again, so several hosts of
// one instance can share it (bbolt's file lock serialises them). A file that
// bbolt cannot open or check is moved aside and a new one is made, with a
// warning: the registry is the second line of defence (the first is the
// stdin lifeline and the parent-death signal), never a reason to crash.
package procreg

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Status of an entry.
type Status string

// Statuses.
const (
	Reserved Status = "reserved" // about to spawn; no OS pid yet
	Active   Status = "active"   // spawned: OSPid and PGID are set
)

// Entry is one spawned (or about to be spawned) worker process.
type Entry struct {
	Key        string    `json:"key"` // <run id>/<worker id>/<generation>
	RunID      string    `json:"run_id"`
	WorkerID   string    `json:"worker_id"`
	Pool       string    `json:"pool"`
	Generation uint64    `json:"generation"`
	Status     Status    `json:"status"`
	OSPid      int       `json:"os_pid,omitempty"`
	PGID       int       `json:"pgid,omitempty"`
	Script     string    `json:"script"` // the server script: its base name must be on the command line
	HostPID    int       `json:"host_pid"`
	HostStart  int64     `json:"host_start_ms"` // the host process's create time, ms since the epoch
	ReservedAt time.Time `json:"reserved_at"`
	ActiveAt   time.Time `json:"active_at,omitzero"`
}

// EntryKey is the key of a worker's entry for one generation.
func EntryKey(runID, workerID string, generation uint64) string {
	return fmt.Sprintf("%s/%s/%d", runID, workerID, generation)
}

// Run is one App start that spawned (or may spawn) processes.
type Run struct {
	RunID     string    `json:"run_id"`
	HostPID   int       `json:"host_pid"`
	HostStart int64     `json:"host_start_ms"`
	StartedAt time.Time `json:"started_at"`
}

var (
	bucketProcs = []byte("processes")
	bucketRuns  = []byte("runs")
)

// lockTimeout bounds the wait for another host's batch on the same file.
const lockTimeout = 5 * time.Second

// Store is the bbolt file. It is safe for concurrent use (bbolt's lock).
type Store struct {
	path string
	log  *slog.Logger
	// writes counts the transactions Apply committed (for tests of the
	// actor's group commit).
	writes atomic.Int64
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// OpenStore checks the file at path (creating it and its directory when
// missing). A file bbolt cannot open or whose check fails is renamed to
// <path>.corrupt-<unix time> and replaced by an empty one; movedAside is
// then the new name of the old file.
func OpenStore(path string, logger *slog.Logger) (s *Store, movedAside string, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("process registry: %w", err)
	}
	s = &Store{path: path, log: logger}
	cerr := s.check()
	if cerr == nil {
		return s, "", nil
	}
	if errors.Is(cerr, berrors.ErrTimeout) || errors.Is(cerr, os.ErrPermission) {
		return nil, "", fmt.Errorf("process registry %s: %w", path, cerr)
	}
	movedAside = fmt.Sprintf("%s.corrupt-%d", path, time.Now().UnixNano())
	if err := os.Rename(path, movedAside); err != nil {
		return nil, "", fmt.Errorf("process registry %s is unreadable (%v) and cannot be moved aside: %w", path, cerr, err)
	}
	logger.Warn("process registry file was unreadable; moved aside and started a new one",
		"path", path, "moved_to", movedAside, "error", cerr)
	if err := s.check(); err != nil {
		return nil, movedAside, fmt.Errorf("process registry %s: %w", path, err)
	}
	return s, movedAside, nil
}

// check opens the file, makes the buckets and runs bbolt's consistency check.
func (s *Store) check() error {
	return s.with(func(db *bolt.DB) error {
		if err := db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketProcs, bucketRuns} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		return db.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		})
	})
}

// with opens the file for one use. bbolt panics on some corrupt pages; that
// becomes an error here.
func (s *Store) with(fn func(*bolt.DB) error) (err error) {
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("process registry file is corrupt: %v", r)
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}()
	return fn(db)
}

// Op is one change applied in a batch.
type Op struct {
	Put       *Entry // add or replace an entry
	Activate  *Entry // set OSPid, PGID, Status active and ActiveAt of an existing entry (Key)
	Delete    string // remove an entry
	PutRun    *Run   // record a run
	DeleteRun string // forget a run and every entry of it
}

// Apply writes ops in one durable transaction.
func (s *Store) Apply(ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	defer s.writes.Add(1)
	return s.with(func(db *bolt.DB) error {
		return db.Update(func(tx *bolt.Tx) error {
			procs, runs := tx.Bucket(bucketProcs), tx.Bucket(bucketRuns)
			if procs == nil || runs == nil {
				return errors.New("process registry: buckets missing")
			}
			for _, op := range ops {
				if err := apply(procs, runs, op); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

func apply(procs, runs *bolt.Bucket, op Op) error {
	switch {
	case op.Put != nil:
		return putJSON(procs, op.Put.Key, op.Put)
	case op.Activate != nil:
		var e Entry
		if raw := procs.Get([]byte(op.Activate.Key)); raw == nil || json.Unmarshal(raw, &e) != nil {
			e = *op.Activate // reserve was lost: keep what activate knows
		}
		e.Status, e.OSPid, e.PGID, e.ActiveAt = Active, op.Activate.OSPid, op.Activate.PGID, op.Activate.ActiveAt
		return putJSON(procs, e.Key, &e)
	case op.Delete != "":
		return procs.Delete([]byte(op.Delete))
	case op.PutRun != nil:
		return putJSON(runs, op.PutRun.RunID, op.PutRun)
	case op.DeleteRun != "":
		prefix := []byte(op.DeleteRun + "/")
		c := procs.Cursor()
		for k, _ := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return runs.Delete([]byte(op.DeleteRun))
	}
	return nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// Snapshot is the registry's content.
type Snapshot struct {
	Entries []Entry
	Runs    []Run
}

// Read returns every entry and run. Records that do not decode are
// skipped with a warning (and can be dropped with Delete / DeleteRun).
func (s *Store) Read() (Snapshot, error) {
	var snap Snapshot
	err := s.with(func(db *bolt.DB) error {
		return db.View(func(tx *bolt.Tx) error {
			if b := tx.Bucket(bucketProcs); b != nil {
				if err := b.ForEach(func(k, v []byte) error {
					var e Entry
					if err := json.Unmarshal(v, &e); err != nil {
						s.log.Warn("process registry: undecodable entry skipped", "key", string(k), "error", err)
						return nil
					}
					e.Key = string(k)
					snap.Entries = append(snap.Entries, e)
					return nil
				}); err != nil {
					return err
				}
			}
			if b := tx.Bucket(bucketRuns); b != nil {
				return b.ForEach(func(k, v []byte) error {
					var r Run
					if err := json.Unmarshal(v, &r); err != nil {
						s.log.Warn("process registry: undecodable run skipped", "run", string(k), "error", err)
						return nil
					}
					r.RunID = string(k)
					snap.Runs = append(snap.Runs, r)
					return nil
				})
			}
			return nil
		})
	})
	return snap, err
}
