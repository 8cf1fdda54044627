// Package bundle writes an embedded file tree (the Python bridge) to a
// versioned cache directory: named by a hash of its content, written to a
// temporary directory and renamed into place (so several hosts starting at
// once all end up with one complete copy), its files read-only afterwards
// (directories stay 0700, so `rm -rf` of the cache still works).
package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
)

// EnvCacheDir overrides where bundles are written (default: the user's
// cache directory, e.g. ~/.cache/snakepit).
const EnvCacheDir = "SNAKEPIT_CACHE_DIR"

// completeMarker is written last: a directory without it is not a bundle.
const completeMarker = ".complete"

// Hash is the content hash of the tree under root in fsys: every file's
// path and bytes, in path order.
func Hash(fsys fs.FS, root string) (string, error) {
	var files []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, p := range files {
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// CacheRoot is the directory bundles go to: $SNAKEPIT_CACHE_DIR, else
// <user cache dir>/snakepit. It is created with mode 0700 and must be a
// directory of this user that nobody else can write to.
func CacheRoot() (string, error) {
	root := os.Getenv(EnvCacheDir)
	if root == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("bundle: no cache directory (set %s): %w", EnvCacheDir, err)
		}
		root = filepath.Join(base, "snakepit")
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	return root, safeDir(root)
}

// safeDir refuses a directory that is a symlink, is not this user's, or
// that others may write to: code is run from it.
func safeDir(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("bundle: %s is not a directory", dir)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("bundle: %s is writable by others (mode %v); refusing to run code from it", dir, st.Mode().Perm())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
		return fmt.Errorf("bundle: %s belongs to uid %d, not to this user", dir, sys.Uid)
	}
	return nil
}

// Extract writes the tree under root in fsys to <cache root>/<name>-<hash>
// unless a complete copy is there already, and returns that directory.
func Extract(fsys fs.FS, root, name, cacheRoot string) (string, error) {
	sum, err := Hash(fsys, root)
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	final := filepath.Join(cacheRoot, name+"-"+sum)
	if complete(final) {
		return final, nil
	}
	tmp, err := os.MkdirTemp(cacheRoot, ".tmp-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename there is nothing left to remove
	if err := write(fsys, root, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another host renamed its copy first: use it.
		if complete(final) {
			return final, nil
		}
		return "", fmt.Errorf("bundle: %w", err)
	}
	return final, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, completeMarker))
	return err == nil
}

// write copies the tree into dir (read-only files), the completion marker
// last.
func write(fsys fs.FS, root, dir string) error {
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.FromSlash(path.Clean(p[len(root):]))
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o400)
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, completeMarker), nil, 0o400)
	}
	if err != nil {
		return fmt.Errorf("bundle: writing %s: %w", dir, err)
	}
	return nil
}
