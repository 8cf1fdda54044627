package cleanup

import (
	"testing"

	"go.uber.org/goleak"
)

// The cleanup actor runs its passes in goroutines: none may outlive a test.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
