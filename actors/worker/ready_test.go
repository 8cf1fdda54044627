package worker

import (
	"net"
	"strings"
	"testing"
)

func TestParseReady(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"snakepit-bridge|1|tcp|127.0.0.1:40593", "127.0.0.1:40593", ""},
		{"snakepit-bridge|1|tcp|[::1]:40593", "[::1]:40593", ""},
		{"snakepit-bridge|1|unix|/tmp/x/w.sock\n", "unix:///tmp/x/w.sock", ""},
		{"snakepit-bridge|2|tcp|127.0.0.1:40593", "", "the worker speaks bridge protocol version \"2\", this host speaks version 1"},
		{"snakepit-bridge|1|tcp|10.0.0.5:40593", "", "loopback only"},
		{"snakepit-bridge|1|tcp|evil.example:80", "", "loopback only"},
		{"snakepit-bridge|1|udp|127.0.0.1:1", "", "network \"udp\""},
		{"snakepit-bridge|1|unix|relative", "", "absolute socket path"},
		{"snakepit-bridge|1|tcp", "", "not a handshake"},
		{"snakepit-bridge|1|tcp|127.0.0.1:0", "", "not host:port"},
		{"40593", "127.0.0.1:40593", ""},
		{" 40593\n", "127.0.0.1:40593", ""},
		{"unix:/tmp/x/w.sock", "unix:///tmp/x/w.sock", ""},
		{"unix:relative.sock", "", "not an absolute socket path"},
		{"0", "", "not a port"},
		{"65536", "", "not a port"},
		{"+80", "", "not a port"},
		{"0080", "", "not a port"},
		{"80; rm -rf /", "", "not a port"},
		{"", "", "not a port"},
	} {
		got, err := ParseReady([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseReady(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseReady(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzParseReady: whatever a (possibly hostile) ready file holds, the host
// dials only loopback or a unix path, and errors stay bounded.
func FuzzParseReady(f *testing.F) {
	for _, s := range []string{"1", "65535", "unix:/a/b.sock", "unix:", "-1", "12a", strings.Repeat("9", 100),
		"snakepit-bridge|1|tcp|127.0.0.1:80", "snakepit-bridge|1|unix|/s", "snakepit-bridge|9|tcp|[::1]:1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseReady(b)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("unbounded error: %d bytes", len(err.Error()))
			}
			return
		}
		if strings.HasPrefix(got, "unix:///") {
			return
		}
		host, _, err := net.SplitHostPort(got)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			t.Fatalf("dial target %q is neither loopback nor a unix path", got)
		}
	})
}

func TestParseHandshakeOptions(t *testing.T) {
	for _, tc := range []struct {
		in     string
		target string
		conc   int
		err    string
	}{
		{"snakepit-bridge|1|unix|/a/w.sock|concurrency=4", "unix:///a/w.sock", 4, ""},
		{"snakepit-bridge|1|tcp|127.0.0.1:5000|concurrency=16\n", "127.0.0.1:5000", 16, ""},
		{"snakepit-bridge|1|unix|/a/w.sock|future=x|concurrency=2", "unix:///a/w.sock", 2, ""},
		{"snakepit-bridge|1|unix|/a/w.sock|future=x", "unix:///a/w.sock", 1, ""},
		{"snakepit-bridge|1|unix|/a/w.sock", "unix:///a/w.sock", 1, ""},
		{"snakepit-bridge|1|unix|/a|b.sock", "unix:///a|b.sock", 1, ""},
		{"40593", "127.0.0.1:40593", 1, ""},
		{"snakepit-bridge|1|unix|/a/w.sock|concurrency=0", "", 0, "concurrency"},
		{"snakepit-bridge|1|unix|/a/w.sock|concurrency=1025", "", 0, "concurrency"},
		{"snakepit-bridge|1|unix|/a/w.sock|concurrency=many", "", 0, "concurrency"},
		{"snakepit-bridge|1|tcp|10.0.0.1:5|concurrency=2", "", 0, "loopback only"},
	} {
		h, err := ParseHandshake([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseHandshake(%q) = %+v, %v; want error %q", tc.in, h, err, tc.err)
			}
			continue
		}
		if err != nil || h.Target != tc.target || h.Concurrency != tc.conc {
			t.Errorf("ParseHandshake(%q) = %+v, %v; want %q, %d", tc.in, h, err, tc.target, tc.conc)
		}
	}
}
