// Package rundir is a run's private directory in the temp dir: every
// worker's directory (ready file, unix socket) and the bridge's default
// unix socket live inside it, and an owner file says whose it is. A clean
// stop removes it; the next start of the same instance removes the ones
// whose host is gone (SIGKILL, OOM), by the same host pid and start time
// the process registry uses.
package rundir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/snakepit-go/snakepit/internal/procs"
)

// Prefix starts every run directory's name (short: unix socket paths inside it are limited to about 100 bytes).
const Prefix = "spr-"

// ownerFile names the owner file inside a run directory.
const ownerFile = "owner.json"

// Owner says whose a run directory is.
type Owner struct {
	RunID     string `json:"run_id"`
	Instance  string `json:"instance"`
	HostPID   int    `json:"host_pid"`
	HostStart int64  `json:"host_start"` // the host's create time (ms), as procs reports it
}

// Create makes a run directory (mode 0700) under base (os.TempDir() when
// empty) and writes its owner file.
func Create(base string, o Owner) (string, error) {
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, Prefix+o.RunID+"-")
	if err != nil {
		return "", fmt.Errorf("rundir: %w", err)
	}
	b, _ := json.Marshal(o)
	if err := os.WriteFile(filepath.Join(dir, ownerFile), b, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("rundir: %w", err)
	}
	return dir, nil
}

// Alive reports whether the host pid with create time start still runs.
type Alive func(pid int, start int64) bool

// HostAlive is Alive from the process table: the pid runs, is not a
// zombie, and (when start is known) started when the owner file says.
func HostAlive(ctx context.Context) Alive {
	return func(pid int, start int64) bool {
		p, err := procs.System.Process(ctx, pid)
		return err == nil && !p.Zombie && (start == 0 || p.CreateTime == start)
	}
}

// Stale decides whether a run directory may be removed: it belongs to
// instance, is not the current run's, and its host is gone.
func Stale(o Owner, instance, currentRun string, alive Alive) bool {
	return o.Instance == instance && o.RunID != currentRun && o.HostPID > 0 && !alive(o.HostPID, o.HostStart)
}

// Sweep removes the run directories under base (os.TempDir() when empty)
// that Stale allows: only real directories (not symlinks) of this user
// with a readable owner file. It returns the directories removed.
func Sweep(base, instance, currentRun string, alive Alive) ([]string, error) {
	if base == "" {
		base = os.TempDir()
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return nil, fmt.Errorf("rundir: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), Prefix) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		o, ok := ownerOf(dir)
		if !ok || !Stale(o, instance, currentRun, alive) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// ownerOf reads dir's owner file if dir is a directory of this user (not a
// symlink) holding one.
func ownerOf(dir string) (Owner, bool) {
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() || st.Mode()&fs.ModeSymlink != 0 || !ownedByMe(st) {
		return Owner{}, false
	}
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return Owner{}, false
	}
	var o Owner
	if json.Unmarshal(b, &o) != nil {
		return Owner{}, false
	}
	return o, true
}

func ownedByMe(st fs.FileInfo) bool {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid) == os.Getuid()
	}
	return true
}
