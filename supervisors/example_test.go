package supervisors_test

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/snakepit-go/snakepit/supervisors"
)

type job struct{ fail bool }

// worker exits with an abnormal reason when a job fails, so a transient worker is restarted.
func worker(ctx actor.Context) {
	if j, ok := ctx.Message().(*job); ok {
		if j.fail {
			supervisors.Exit(ctx, fmt.Errorf("job failed"))
			return
		}
		supervisors.Exit(ctx, supervisors.Normal)
	}
}

func ExampleNew() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }),
		actor.WithDeadLetterThrottleInterval(10*time.Millisecond),
	)
	defer sys.Shutdown()

	props, err := supervisors.New(supervisors.Spec{
		Strategy: supervisors.RestForOne,
		Logger:   quiet,
		Children: []supervisors.ChildSpec{
			{Name: "bridge", Props: actor.PropsFromFunc(worker)},
			{Name: "pool", Props: actor.PropsFromFunc(worker), Restart: supervisors.Transient},
		},
		OnGiveUp: func(reason any) { fmt.Println("gave up:", reason) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sup := sys.Root.Spawn(props)

	children, _ := supervisors.RequestWhichChildren(sys.Root, sup, time.Second)
	for _, c := range children {
		fmt.Println(c.PID.Id == sup.Id+"/"+c.Name, c.Name, c.Restart, c.Running)
	}

	// A failed job ends the transient pool abnormally: it is restarted under the same PID.
	sys.Root.Send(children[1].PID, &job{fail: true})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if children, _ = supervisors.RequestWhichChildren(sys.Root, sup, time.Second); children[1].Restarts == 1 {
			break
		}
	}
	fmt.Println(children[1].Name, "restarts:", children[1].Restarts)

	_ = sys.Root.PoisonFuture(sup).Wait() // children stop in reverse order: pool, then bridge
	// Output:
	// true bridge permanent true
	// true pool transient true
	// pool restarts: 1
}
