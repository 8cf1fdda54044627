package heartbeat

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of Config (upstream Snakepit's heartbeat defaults).
const (
	DefaultInterval  = 2 * time.Second
	DefaultTimeout   = 10 * time.Second
	DefaultMaxMissed = 3
)

// Config of a heartbeat monitor. Zero values take the defaults (upstream
// Snakepit's): the heartbeat is on unless Disabled.
type Config struct {
	// Disabled: no monitor is started (the caller checks Enabled; Props
	// does not).
	Disabled bool
	// Interval is the pause between the end of one ping and the start of
	// the next (default 2s).
	Interval time.Duration
	// Timeout is one ping's deadline (default 10s).
	Timeout time.Duration
	// MaxMissed is the number of consecutive missed pings that mean "lost"
	// (default 3).
	MaxMissed int
	// InitialDelay is the pause before the first ping (default 0).
	InitialDelay time.Duration
	// Independent: when lost, only report (log and OnEvent). The default
	// (false) is dependent: the worker is told to stop (Lost is sent to
	// Options.Notify) so that it is replaced.
	Independent bool
}

// Enabled reports whether a monitor is to run (the default).
func (c Config) Enabled() bool { return !c.Disabled }

// WithDefaults returns c with its zero fields set to the defaults. Negative
// values are kept, for Validate to reject.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxMissed == 0 {
		c.MaxMissed = DefaultMaxMissed
	}
	return c
}

// Validate reports negative durations and a negative MaxMissed. Zero values
// are valid (they mean the defaults).
func (c Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"interval", c.Interval},
		{"timeout", c.Timeout},
		{"initial delay", c.InitialDelay},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("heartbeat: %s %v is negative", d.name, d.v))
		}
	}
	if c.MaxMissed < 0 {
		errs = append(errs, fmt.Errorf("heartbeat: max missed %d is negative", c.MaxMissed))
	}
	return errors.Join(errs...)
}
