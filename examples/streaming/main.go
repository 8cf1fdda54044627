// Command streaming reads a streaming Python tool chunk by chunk, then
// stops a long stream early (the tool is cancelled and its worker freed).
//
//	cd examples/streaming && go run .
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
		Pools: []snakepit.PoolConfig{{Name: "streams", Size: 1}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer app.Stop(context.Background())

	st, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 4})
	if err != nil {
		log.Fatal(err)
	}
	for chunk, err := range st.Chunks() {
		if err != nil {
			log.Fatal(err)
		}
		if chunk.Final && len(chunk.Data) == 0 {
			continue // an end marker, not an item
		}
		var item struct{ Index int }
		if err := chunk.Decode(&item); err != nil {
			log.Fatal(err)
		}
		fmt.Println("item", item.Index)
	}

	// A stream of a million items, closed after two.
	long, err := app.ExecuteStream(ctx, "stream_count", map[string]any{"n": 1000000, "delay_ms": 1})
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		if _, err := long.Recv(); err != nil {
			log.Fatal(err)
		}
	}
	long.Close()

	// The worker is free again for the next call.
	res, err := app.Execute(ctx, "ping", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("after closing the long stream: %s\n", res.JSON)
}
