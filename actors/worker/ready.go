package worker

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snakepit-go/snakepit/internal/sperr"
)

// ProtocolVersion is the version of the bridge protocol and launch contract
// this host speaks; a worker's handshake must name the same.
const ProtocolVersion = 1

// Handshake starts the ready file's versioned handshake line.
const Handshake = "snakepit-bridge"

// ParseReady turns a ready file's content (README_GRPC.md, "Launching a
// worker") into the gRPC dial target. Ours is a handshake line, as
// hashicorp/go-plugin's:
//
//	snakepit-bridge|<protocol version>|tcp|127.0.0.1:<port>
//	snakepit-bridge|<protocol version>|unix|/absolute/socket/path
//
// A worker of another protocol version is refused with an error naming
// both versions. Upstream's contract (the bare decimal port, or
// unix:/path) is accepted as it is. The host dials loopback or a unix
// socket only; anything else is an error quoting a bounded part of the
// content.
func ParseReady(content []byte) (string, error) {
	s := strings.TrimSpace(string(content))
	if rest, ok := strings.CutPrefix(s, Handshake+"|"); ok {
		return parseHandshake(rest, s)
	}
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		return unixTarget(path, s)
	}
	port, err := strconv.Atoi(s)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != s {
		return "", fmt.Errorf("ready file holds %q, not a port", sperr.Truncate(s, 64))
	}
	return "127.0.0.1:" + s, nil
}

func parseHandshake(rest, whole string) (string, error) {
	parts := strings.SplitN(rest, "|", 3)
	if len(parts) != 3 {
		return "", fmt.Errorf("ready file holds %q, not a handshake %s|<version>|<network>|<address>",
			sperr.Truncate(whole, 64), Handshake)
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
