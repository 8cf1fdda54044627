package worker

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/snakepit-go/snakepit/internal/sperr"
)

// ParseReady turns a ready file's content (README_GRPC.md, "Launching a
// worker") into the gRPC dial target: the decimal TCP port the worker bound
// on loopback, or unix:/absolute/path. Anything else is an error that
// quotes a bounded part of the content.
func ParseReady(content []byte) (string, error) {
	s := strings.TrimSpace(string(content))
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !filepath.IsAbs(path) || strings.ContainsAny(path, "\x00\n") {
			return "", fmt.Errorf("ready file holds %q, not an absolute socket path", sperr.Truncate(s, 64))
		}
		return "unix://" + path, nil
	}
	port, err := strconv.Atoi(s)
	if err != nil || port < 1 || port > 65535 || strconv.Itoa(port) != s {
		return "", fmt.Errorf("ready file holds %q, not a port", sperr.Truncate(s, 64))
	}
	return "127.0.0.1:" + s, nil
}
