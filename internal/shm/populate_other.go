//go:build unix && !linux

package shm

// populate: no MAP_POPULATE here; pages fault in as they are read.
const populate = 0
