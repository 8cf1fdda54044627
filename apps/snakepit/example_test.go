package snakepit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// These examples run in go test: they start real Python workers of the
// showcase adapter (the bridge embedded in the module), so they need a
// Python 3.10+ with grpc (README.md).

// quiet keeps the examples' output to what they print.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Start a pool of the showcase adapter, call a tool, and tell a Python
// exception apart from other failures.
func Example() {
	ctx := context.Background()
	app, err := snakepit.Start(ctx, snakepit.Config{
		Pools:  []snakepit.PoolConfig{{Name: "demo", Size: 2}},
		Logger: quiet,
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
	if err != nil {
		fmt.Println(err)
		return
	}
	var sum int
	if err := res.Decode(&sum); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("1 + 2 =", sum)

	_, err = app.Execute(ctx, "raise_error", map[string]any{"kind": "value", "message": "no"})
	var serr *snakepit.Error
	if errors.As(err, &serr) && serr.Category == snakepit.CategoryPythonError {
		fmt.Println(serr.PythonType+":", serr.Message)
	}
	// Output:
	// 1 + 2 = 3
	// ValueError: no
}

// Read a streaming tool's chunks as they come.
func ExampleApp_ExecuteStream() {
	ctx := context.Background()
	app, err := snakepit.Start(ctx, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "stream", Size: 1}}, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(context.Background())

	st, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	for chunk, err := range st.Chunks() {
		if err != nil {
			fmt.Println(err)
			return
		}
		var item struct{ Index int }
		if chunk.Decode(&item) == nil && !chunk.Final {
			fmt.Println("chunk", item.Index)
		}
	}
	// Output:
	// chunk 0
	// chunk 1
	// chunk 2
}

// A session whose Python tool calls back into a Go host tool, which reads
// the session's state.
func ExampleApp_Session() {
	ctx := context.Background()
	app, err := snakepit.Start(ctx, snakepit.Config{Pools: []snakepit.PoolConfig{{Name: "sessions", Size: 1}}, Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(context.Background())

	err = app.RegisterTool(snakepit.ToolSpec{Name: "greeting", Description: "greets the session's user"},
		func(ctx context.Context, call *snakepit.ToolCall) (any, error) {
			sess, err := app.Session(ctx, call.SessionID)
			if err != nil {
				return nil, err
			}
			st, err := sess.State(ctx)
			if err != nil {
				return nil, err
			}
			return "hello, " + string(st.Data["user"]), nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	sess, err := app.Session(ctx, "example-session")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sess.Close(context.Background())
	if _, err := sess.Update(ctx, snakepit.SessionUpdate{Data: map[string][]byte{"user": []byte("ada")}}); err != nil {
		fmt.Println(err)
		return
	}
	// The showcase's call_host tool calls the named host tool from Python.
	res, err := sess.Execute(ctx, "call_host", map[string]any{"tool": "greeting"})
	if err != nil {
		fmt.Println(err)
		return
	}
	var greeting string
	if err := res.Decode(&greeting); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(greeting)
	// Output:
	// hello, ada
}
