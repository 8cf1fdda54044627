package snakepit

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/snakepit-go/snakepit/internal/names"
)

// FuzzConfig: any combination of pool names, sizes, modes and durations is
// either refused with a validation error or is a config whose names are
// safe to put on a command line and whose values are usable.
func FuzzConfig(f *testing.F) {
	f.Add("ml", 2, "process", "unix", "internal", int64(time.Second), "inst", "tok")
	f.Add("", 0, "thread", "tcp", "external", int64(-1), "", "")
	f.Add("a b", -3, "fork", "udp", "carrier-pigeon", int64(0), "x;rm", "t\x00")
	f.Fuzz(func(t *testing.T, pool string, size int, profile, transport, bridge string, d int64, inst, token string) {
		script, _ := os.Executable()
		c := Config{
			Pools: []PoolConfig{{Name: pool, Size: size, Profile: Profile(profile), Transport: Transport(transport),
				QueueTimeout: time.Duration(d), CancelGrace: time.Duration(d), ExecutionTTL: time.Duration(d)}},
			Script: script, Python: "python3", InstanceName: inst, InstanceToken: token,
			Bridge: BridgeConfig{Mode: BridgeMode(bridge)},
		}
		c, err := c.withDefaults(context.Background())
		if err != nil {
			return
		}
		if err := c.validate(); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Category != CategoryValidation {
				t.Fatalf("validate: %v is not a validation error", err)
			}
			return
		}
		p := c.Pools[0]
		switch {
		case !names.Valid(p.Name):
			t.Fatalf("accepted pool name %q", p.Name)
		case p.Size < 1:
			t.Fatalf("accepted size %d", p.Size)
		case c.InstanceName != "" && !names.Valid(c.InstanceName), c.InstanceToken != "" && !names.Valid(c.InstanceToken):
			t.Fatalf("accepted instance %q / token %q", c.InstanceName, c.InstanceToken)
		case p.QueueTimeout < 0 || p.CancelGrace < 0 || p.ExecutionTTL < 0:
			t.Fatalf("accepted a negative duration %d", d)
		case p.Profile != ProfileProcess && p.Profile != ProfileThread:
			t.Fatalf("accepted profile %q", p.Profile)
		}
	})
}
