//go:build unix

package shm

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps f's first size bytes privately (copy-on-write: writes stay
// in this process).
func mapFile(f *os.File, size int) ([]byte, error) {
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|populate)
	if err != nil {
		return nil, fmt.Errorf("shm: mmap: %w", err)
	}
	return b, nil
}

func unmap(b []byte) error { return unix.Munmap(b) }

// fsSize is the size in bytes of the file system holding path (0 when
// unknown).
func fsSize(path string) int64 {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0
	}
	return int64(st.Blocks) * int64(st.Bsize)
}
