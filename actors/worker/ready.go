package worker

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/snakepit-go/snakepit/internal/sperr"
)

// ProtocolVersion is the version of the bridge protocol and launch contract
// this host speaks; a worker's handshake must name the same.
const ProtocolVersion = 1

// HandshakePrefix starts the ready file's versioned handshake line.
const HandshakePrefix = "snakepit-bridge"

// ParseReady turns a ready file's content (README_GRPC.md, "Launching a
// worker") into the gRPC dial target; ParseHandshake also returns the
// worker's options.
func ParseReady(content []byte) (string, error) {
	h, err := ParseHandshake(content)
	return h.Target, err
}

// Handshake is what a worker's ready file says.
type Handshake struct {
	// Target is the gRPC dial target.
	Target string
	// Concurrency is how many calls the worker runs at once, as its adapter
	// declares (max_concurrency); 1 when it says nothing.
	Concurrency int
}

// maxConcurrency bounds a worker's declared concurrency (as the bridge does).
const maxConcurrency = 1024

// ParseHandshake parses a ready file's content. Ours is a handshake line,
// as hashicorp/go-plugin's, with optional key=value fields after the
// address:
//
//	snakepit-bridge|<protocol version>|tcp|127.0.0.1:<port>[|concurrency=N]
//	snakepit-bridge|<protocol version>|unix|/absolute/socket/path[|concurrency=N]
//
// A worker of another protocol version is refused with an error naming
// both versions. Upstream's contract (the bare decimal port, or
// unix:/path) is accepted as it is. The host dials loopback or a unix
// socket only; anything else is an error quoting a bounded part of the
// content. Unknown option keys are ignored (a newer worker may say more).
func ParseHandshake(content []byte) (Handshake, error) {
	s := strings.TrimSpace(string(content))
	h := Handshake{Concurrency: 1}
	if rest, ok := strings.CutPrefix(s, HandshakePrefix+"|"); ok {
		var opts []string
		rest, opts = cutOptions(rest)
		for _, o := range opts {
			k, v, _ := strings.Cut(o, "=")
			if k == "concurrency" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > maxConcurrency {
					return Handshake{}, fmt.Errorf("ready file holds concurrency %q (want 1..%d)", sperr.Truncate(v, 16), maxConcurrency)
				}
				h.Concurrency = n
			}
		}
		t, err := parseHandshake(rest, s)
		h.Target = t
		return h, err
	}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		t, err := unixTarget(path, s)
		h.Target = t
		return h, err
	}
	port, err := strconv.Atoi(s)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != s {
		return Handshake{}, fmt.Errorf("ready file holds %q, not a port", sperr.Truncate(s, 64))
	}
	h.Target = "127.0.0.1:" + s
	return h, nil
}

// cutOptions splits trailing key=value fields off a handshake's rest
// (version|network|address|k=v|k=v).
func cutOptions(rest string) (string, []string) {
	var opts []string
	for {
		i := strings.LastIndexByte(rest, '|')
		if i < 0 || strings.Count(rest[:i], "|") < 2 || !option.MatchString(rest[i+1:]) {
			return rest, opts
		}
		opts = append([]string{rest[i+1:]}, opts...)
		rest = rest[:i]
	}
}

// option is a handshake option field.
var option = regexp.MustCompile(`^[a-z][a-z_]*=[A-Za-z0-9_.-]*$`)

func parseHandshake(rest, whole string) (string, error) {
	parts := strings.SplitN(rest, "|", 3)
	if len(parts) != 3 {
		return "", fmt.Errorf("ready file holds %q, not a handshake %s|<version>|<network>|<address>",
			sperr.Truncate(whole, 64), HandshakePrefix)
	}
	version, network, address := parts[0], parts[1], parts[2]
	if v, err := strconv.Atoi(version); err != nil || v != ProtocolVersion {
		return "", fmt.Errorf("the worker speaks bridge protocol version %q, this host speaks version %d",
			sperr.Truncate(version, 16), ProtocolVersion)
	}
	switch network {
	case "unix":
		return unixTarget(address, whole)
	case "tcp":
		host, port, err := net.SplitHostPort(address)
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
			return "", fmt.Errorf("ready file holds %q, not host:port", sperr.Truncate(whole, 64))
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return "", fmt.Errorf("ready file names %q: the host dials workers on loopback only", sperr.Truncate(host, 64))
		}
		return net.JoinHostPort(host, port), nil
	}
	return "", fmt.Errorf("ready file names network %q (tcp or unix)", sperr.Truncate(network, 16))
}

func unixTarget(path, whole string) (string, error) {
	if !filepath.IsAbs(path) || strings.ContainsAny(path, "\x00\n") {
		return "", fmt.Errorf("ready file holds %q, not an absolute socket path", sperr.Truncate(whole, 64))
	}
	return "unix://" + path, nil
}
