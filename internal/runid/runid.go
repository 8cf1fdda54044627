// Package runid makes run ids: a short token, unique per App start, that every
// worker of the run carries on its command line (--snakepit-run-id) so the
// host can tell its own processes from older runs' and from strangers'.
package runid

import (
	"crypto/rand"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var counter atomic.Uint32

// New returns a run id: lowercase base36, 5 characters of the time in
// seconds (mod 36^5), 2 of a process-wide counter and 4 random ones, so two
// starts in the same second of the same process — or of two processes —
// differ.
func New() string {
	return newAt(time.Now(), counter.Add(1))
}

func newAt(now time.Time, n uint32) string {
	const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString(pad(strconv.FormatInt(now.Unix()%60466176, 36), 5))
	b.WriteString(pad(strconv.FormatUint(uint64(n%1296), 36), 2))
	var r [4]byte
	_, _ = rand.Read(r[:])
	for _, c := range r {
		b.WriteByte(alphabet[int(c)%36])
	}
	return b.String()
}

func pad(s string, n int) string {
	for len(s) < n {
		s = "0" + s
	}
	return s
}

// Valid reports whether s looks like a run id (lowercase base36, 4–32 chars);
// used to sanitise ids read back from command lines.
func Valid(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}
