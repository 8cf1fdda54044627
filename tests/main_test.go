// Package tests holds end-to-end tests that run real Python workers
// (priv/python/grpc_server.py) and talk to them over gRPC.
package tests

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
