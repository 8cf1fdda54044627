package snakepit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// RunStopTimeout bounds the Stop that Run ends with.
const RunStopTimeout = time.Minute

// Run is upstream's run_as_script for Go programs: it starts an App with
// cfg, waits until every worker has started, calls fn, and then stops the
// App and cleans up, whatever fn returned or however it ended (a panic is
// re-raised after the stop). SIGINT and SIGTERM while it runs stop the App
// (calls in flight end with shutdown, so fn returns) and make Run return an
// *InterruptedError; a second signal leaves the default behaviour in place,
// so it ends the program. ctx ending does the same as a signal, without
// the InterruptedError.
//
//	func main() {
//		err := snakepit.Run(context.Background(), snakepit.Config{}, func(app *snakepit.App) error {
//			res, err := app.Execute(context.Background(), "add", map[string]int{"a": 1, "b": 2})
//			...
//		})
//		os.Exit(snakepit.ExitCode(err))
//	}
func Run(ctx context.Context, cfg Config, fn func(*App) error) (err error) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got os.Signal
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case got = <-sigs:
			signal.Stop(sigs) // a second signal acts as if Run were not there
			cancel()
		case <-startCtx.Done():
		}
	}()
	interrupted := func(err error) error {
		cancel()
		<-watching
		if got != nil {
			return errors.Join(&InterruptedError{Signal: got}, err)
		}
		return err
	}

	app, err := Start(startCtx, cfg)
	if err != nil {
		return interrupted(err)
	}
	stopped := make(chan error, 1)
	go func() {
		<-startCtx.Done() // a signal, ctx's end, or Run's own end
		sctx, scancel := context.WithTimeout(context.Background(), RunStopTimeout)
		defer scancel()
		stopped <- app.Stop(sctx)
	}()
	defer func() {
		cancel()
		stopErr := <-stopped
		err = interrupted(errors.Join(err, stopErr))
	}()
	if err := app.AwaitInitComplete(startCtx); err != nil {
		return err
	}
	if err := app.Err(); err != nil {
		return err
	}
	return fn(app)
}

// InterruptedError is Run's error when a signal stopped it.
type InterruptedError struct{ Signal os.Signal }

func (e *InterruptedError) Error() string { return fmt.Sprintf("snakepit: stopped by %s", e.Signal) }

// ExitCode is the exit status a script should end with after Run: 0 when
// err is nil, 128+N when signal N stopped it (130 for SIGINT, 143 for
// SIGTERM), else 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ie *InterruptedError
	if errors.As(err, &ie) {
		if s, ok := ie.Signal.(syscall.Signal); ok {
			return 128 + int(s)
		}
	}
	return 1
}
