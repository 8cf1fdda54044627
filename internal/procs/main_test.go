package procs

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// helperEnv, when set, turns the test binary into a helper process (see
// runHelper) instead of running the tests.
const helperEnv = "GO_PROCS_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	goleak.VerifyTestMain(m)
}
