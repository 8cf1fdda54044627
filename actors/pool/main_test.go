package pool

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

// propertyChecks is how many random cases each property test tries unless
// -rapid.checks says otherwise: rapid's default of 100 misses interleavings
// (a crash during a drain) that a few thousand find in about a second.
const propertyChecks = "2000"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", propertyChecks); err != nil {
			panic(err)
		}
	}
	goleak.VerifyTestMain(m)
}
