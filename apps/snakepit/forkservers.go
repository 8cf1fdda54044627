package snakepit

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/actors/worker"
)

// forkServersProps is the runtime supervisor's child that owns the pools'
// fork servers: open while it runs, closed when it stops. It sits right
// before the worker supervisor, so it stops after every worker has, and a
// restart of the runtime subtree reopens them. A zygote that dies is
// restarted by its ForkServer itself, with backoff.
func forkServersProps(fss map[string]*worker.ForkServer) *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		switch ctx.Message().(type) {
		case *actor.Started:
			for _, fs := range fss {
				fs.Open()
			}
		case *actor.Stopping:
			for _, fs := range fss {
				fs.Close()
			}
		}
	})
}
