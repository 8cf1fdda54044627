// Package tests holds end-to-end tests that run real Python workers
// (priv/python/grpc_server.py) and talk to them over gRPC.
package tests

import (
	"testing"

	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m)
}
