package snakepit_test

import (
	"context"
	"errors"
	"fmt"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// Start a pool of the showcase adapter, run a tool, read a stream and tell
// a Python exception apart from other failures. (Compiled, not run: it
// needs Python with grpc.)
func Example() {
	ctx := context.Background()
	app, err := snakepit.Start(ctx, snakepit.Config{
		Pools: []snakepit.PoolConfig{{Name: "demo", Size: 2}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(context.Background())
	if err := app.AwaitReady(ctx); err != nil {
		fmt.Println(err)
		return
	}

	res, err := app.Execute(ctx, "add", map[string]any{"a": 1, "b": 2})
	if err == nil {
		var sum int
		_ = res.Decode(&sum)
		fmt.Println(sum)
	}

	st, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 3})
	if err == nil {
		for chunk, err := range st.Chunks() {
			if err != nil {
				break
			}
			fmt.Println(string(chunk.Data))
		}
	}

	_, err = app.Execute(ctx, "raise_error", map[string]any{"kind": "value", "message": "no"})
	var serr *snakepit.Error
	if errors.As(err, &serr) && serr.Category == snakepit.CategoryPythonError {
		fmt.Println(serr.PythonType, serr.Message)
	}
}
