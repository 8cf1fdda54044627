package cleanup

import (
	"context"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"

	"github.com/snakepit-go/snakepit/internal/procs"
)

// panicLister fails the way a bug would.
type panicLister struct{ stubLister }

func (panicLister) Processes(context.Context) ([]procs.Proc, error) { panic("lister bug") }

func TestActorRunsBothPassesAndNeverCrashes(t *testing.T) {
	sys := actor.NewActorSystem(actor.WithDeadLetterThrottleInterval(10 * time.Millisecond))
	defer sys.Shutdown()
	type report struct {
		atStop bool
		rep    Report
		err    error
	}
	reports := make(chan report, 4)
	table := stubLister{
		{PID: 1, Cmdline: []string{"/sbin/init"}},
		{PID: 100, PPID: 1, PGID: 100, Cmdline: worker("grpc_server.py", "old0001", "tok-a")},
		{PID: 300, PPID: 1, PGID: 300, Cmdline: worker("grpc_server.py", "cur0001", "tok-a")},
	}
	k := &stubKiller{}
	cfg := ActorConfig{
		Options:  Options{Identity: me, Rogue: true, Lister: table, Killer: k},
		AtStart:  true,
		OnReport: func(atStop bool, r Report, err error) { reports <- report{atStop, r, err} },
	}
	pid := sys.Root.Spawn(Props(cfg))
	r := <-reports
	require.False(t, r.atStop)
	require.NoError(t, r.err)
	require.Equal(t, []int{100}, k.pids(), "start pass: the old run's orphan")
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
	r = <-reports
	require.True(t, r.atStop)
	require.Equal(t, []int{100, 300}, k.pids(), "stop pass: the current run's straggler")

	// A pass that panics is reported, not a crash (a restart would run the
	// stop pass and end live workers).
	cfg.Lister = panicLister{}
	pid = sys.Root.Spawn(Props(cfg))
	r = <-reports
	require.ErrorContains(t, r.err, "lister bug")
	require.NoError(t, sys.Root.StopFuture(pid).Wait())
	<-reports
}
