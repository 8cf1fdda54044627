package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// ProcessesOfRun lists live processes whose command line carries
// --snakepit-run-id runID, read from /proc (Linux). Elsewhere it returns
// nil, so checks built on it pass vacuously there.
func ProcessesOfRun(runID string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	marker := []byte("--snakepit-run-id\x00" + runID + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, marker) {
			continue
		}
		if Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Alive reports whether pid runs. A zombie (dead, not yet reaped) counts as
// gone. Linux reads /proc/<pid>/stat; elsewhere signal 0 decides.
func Alive(pid int) bool {
	if stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat")); err == nil {
		i := bytes.LastIndexByte(stat, ')')
		return !(i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X'))
	}
	return signalZero(pid)
}
