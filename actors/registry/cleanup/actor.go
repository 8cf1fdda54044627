package cleanup

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// ActorConfig configures the cleanup actor.
type ActorConfig struct {
	Options
	// AtStart runs Orphans when the actor starts (before any worker of this
	// run spawns, when the actor is started ahead of them).
	AtStart bool
	// Timeout bounds each pass (default 10s).
	Timeout time.Duration
	// OnReport receives each pass's report: atStop is false for the start
	// pass, true for the stop pass.
	OnReport func(atStop bool, r Report, err error)
}

// ActorShutdown is how long the actor's supervisor should give it to stop:
// the stop pass's budget and a margin.
func (c ActorConfig) ActorShutdown() time.Duration {
	return c.timeout() + 2*time.Second
}

func (c ActorConfig) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 10 * time.Second
	}
	return c.Timeout
}

// Props returns the cleanup actor: Orphans on start, CurrentRun on stop.
// Place it before the runtime in its supervisor, so that it stops after the
// workers did (children stop in reverse order) and only mops up.
//
// The actor never fails by itself (a pass that panics is logged): a restart
// of this actor alone would run the stop pass and end the run's live
// workers. So it only ever stops when its supervisor goes down.
func Props(c ActorConfig) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			if c.AtStart {
				c.pass(false, Orphans)
			}
		case *actor.Stopping:
			c.pass(true, CurrentRun)
		}
	})
}

func (c ActorConfig) pass(atStop bool, fn func(context.Context, Options) (Report, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	var rep Report
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("cleanup pass panicked: %v", r)
			}
		}()
		rep, err = fn(ctx, c.Options)
		return err
	}()
	if err != nil {
		c.withDefaults().Logger.Error("cleanup pass failed", "at_stop", atStop, "error", err)
	}
	if c.OnReport != nil {
		c.OnReport(atStop, rep, err)
	}
}
