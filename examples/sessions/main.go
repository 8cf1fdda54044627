// Command sessions runs a session whose Python tool calls back into a Go
// host tool; the host tool reads the session's state.
//
//	cd examples/sessions && go run .
package main

import (
	"context"
	"fmt"
	"log"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	app, err := snakepit.Start(ctx, snakepit.Config{
		Pools: []snakepit.PoolConfig{{Name: "sessions", Size: 2}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Stop(context.Background())

	// A Go function Python tools can call (SessionContext.call_host_tool).
	err = app.RegisterTool(snakepit.ToolSpec{Name: "account", Description: "the session user's account"},
		func(ctx context.Context, call *snakepit.ToolCall) (any, error) {
			sess, err := app.Session(ctx, call.SessionID)
			if err != nil {
				return nil, err
			}
			st, err := sess.State(ctx)
			if err != nil {
				return nil, err
			}
			return map[string]any{"user": string(st.Data["user"]), "session": call.SessionID}, nil
		})
	if err != nil {
		log.Fatal(err)
	}

	sess, err := app.Session(ctx, "user-ada")
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Close(context.Background())
	if _, err := sess.Update(ctx, snakepit.SessionUpdate{Data: map[string][]byte{"user": []byte("ada")}}); err != nil {
		log.Fatal(err)
	}

	// Calls in a session go to the same worker (sticky affinity).
	var workers []string
	for range 3 {
		res, err := sess.Execute(ctx, "call_host", map[string]any{"tool": "account"})
		if err != nil {
			log.Fatal(err)
		}
		var got struct{ User, Session string }
		if err := res.Decode(&got); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("python asked the host: user=%s session=%s\n", got.User, got.Session)
		workers = append(workers, res.WorkerID)
	}
	fmt.Println("same worker for the session:", workers[0] == workers[1] && workers[1] == workers[2])
}
