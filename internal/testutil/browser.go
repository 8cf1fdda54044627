package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium returns Debian's headless-capable browser (package chromium).
// Without it the test is skipped, or fails when CI is set (.ci/run
// installs it).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("no chromium (apt install chromium; set CI to make this fatal)")
	}
	t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium")
	return ""
}
