// Command hello starts a pool of Python workers running the bundled
// showcase adapter and makes one call: the smallest program on snakepit.
//
//	cd examples/hello && go run .
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
		Pools: []snakepit.PoolConfig{{Name: "hello", Size: 2}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Stop(context.Background())

	res, err := app.Execute(ctx, "add", map[string]any{"a": 40, "b": 2})
	if err != nil {
		log.Fatal(err)
	}
	var sum int
	if err := res.Decode(&sum); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("add(40, 2) = %d (worker %s)\n", sum, res.WorkerID)
}
