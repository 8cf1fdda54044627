package main

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// isTerminal reports whether w is a terminal (progress bars only go there,
// never into a log file or a pipe).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// poolProgress draws a bar of the workers started (ready or failed) of
// every pool of app on w while they start, and returns the function that
// ends it. Without a terminal it draws nothing.
func poolProgress(ctx context.Context, app *snakepit.App, w io.Writer) (stop func()) {
	if !isTerminal(w) {
		return func() {}
	}
	total := 0
	for _, p := range app.Pools() {
		if st, err := app.Stats(ctx, p); err == nil {
			total += st.Workers
		}
	}
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("workers ready"),
		progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30), progressbar.OptionThrottle(50*time.Millisecond))
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			ready := 0
			for _, p := range app.Pools() {
				if st, err := app.Stats(ctx, p); err == nil {
					ready += st.Ready
				}
			}
			_ = bar.Set(ready)
			select {
			case <-done:
				_ = bar.Finish()
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
