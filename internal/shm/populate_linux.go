package shm

import "golang.org/x/sys/unix"

// populate pre-faults a view's pages at mmap (one call instead of a fault
// per page).
const populate = unix.MAP_POPULATE
