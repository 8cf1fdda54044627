package procs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"syscall"

	"github.com/shirou/gopsutil/v4/process"
)

// procStat is the part of /proc/<pid>/stat this package needs.
type procStat struct {
	state   byte // R, S, D, Z, X, ...
	ppid    int
	pgrp    int
	session int
}

// dead reports a zombie (Z) or a dying task (X).
func (s procStat) dead() bool { return s.state == 'Z' || s.state == 'X' }

var errMalformedStat = errors.New("procs: malformed /proc stat")

// readStat reads /proc/<pid>/stat.
func readStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(data)
}

// parseStat parses the contents of /proc/<pid>/stat: "pid (comm) state ppid
// pgrp session ...". comm may hold spaces and ')', so the fields start after
// the last ')'.
func parseStat(data []byte) (procStat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, errMalformedStat
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 4 || len(fields[0]) != 1 {
		return procStat{}, errMalformedStat
	}
	st := procStat{state: fields[0][0]}
	var err error
	if st.ppid, err = strconv.Atoi(string(fields[1])); err != nil {
		return procStat{}, errMalformedStat
	}
	if st.pgrp, err = strconv.Atoi(string(fields[2])); err != nil {
		return procStat{}, errMalformedStat
	}
	if st.session, err = strconv.Atoi(string(fields[3])); err != nil {
		return procStat{}, errMalformedStat
	}
	return st, nil
}

// signalZero reports whether kill(pid, 0) finds something (EPERM counts:
// the process exists but belongs to someone else).
func signalZero(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// Alive reports whether pid exists and is not a zombie; pid <= 0 is never
// alive. On Linux it is one read of /proc/<pid>/stat; when /proc cannot tell
// (not mounted, hidden by hidepid) kill(pid, 0) decides, zombies included.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	if err == nil {
		return !st.dead()
	}
	return signalZero(pid)
}

// GroupAlive reports whether any non-zombie process has process-group id
// pgid; pgid <= 1 is never alive. A group whose only members are zombies is
// dead. When the group exists but none of its members can be seen in /proc,
// it counts as alive.
func GroupAlive(pgid int) bool {
	if pgid <= 1 || !signalZero(-pgid) {
		return false
	}
	// Fast path: the group leader usually still runs.
	if st, err := readStat(pgid); err == nil && st.pgrp == pgid && !st.dead() {
		return true
	}
	seen, live := scanGroup(pgid)
	switch {
	case live:
		return true
	case seen:
		return false // only zombies left
	default:
		// Nothing visible: the group ended between the checks, or its
		// members are hidden from us. Ask the kernel again.
		return signalZero(-pgid)
	}
}

// scanGroup reads every /proc/<pid>/stat and reports whether any process of
// group pgid was seen and whether any of those is not a zombie.
func scanGroup(pgid int) (seen, live bool) {
	dir, err := os.Open("/proc")
	if err != nil {
		return false, false
	}
	names, err := dir.Readdirnames(-1)
	_ = dir.Close()
	if err != nil {
		return false, false
	}
	for _, name := range names {
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.pgrp != pgid {
			continue
		}
		seen = true
		if !st.dead() {
			return true, true
		}
	}
	return seen, false
}

// zombie reports whether p is a zombie, from /proc/<pid>/stat.
func zombie(_ context.Context, p *process.Process) bool {
	st, err := readStat(int(p.Pid))
	return err == nil && st.dead()
}
