// Command runscript is a script on snakepit.Run for the tests: it prints
// the sum of 40 and 2 and "running", then makes a 60 s call that only a
// signal ends early, and exits with snakepit.ExitCode. With the argument
// "fail" its function returns an error instead.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

func main() {
	cfg := snakepit.Config{
		InstanceName: os.Getenv("RUNSCRIPT_INSTANCE"),
		Pools:        []snakepit.PoolConfig{{Name: "default", Size: 1}},
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	err := snakepit.Run(context.Background(), cfg, func(app *snakepit.App) error {
		res, err := app.Execute(context.Background(), "add", map[string]int{"a": 40, "b": 2})
		if err != nil {
			return err
		}
		fmt.Println(string(res.JSON))
		if len(os.Args) > 1 && os.Args[1] == "fail" {
			return errors.New("the script failed")
		}
		fmt.Println("running")
		_, err = app.Execute(context.Background(), "sleep", map[string]int{"ms": 60000})
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "runscript:", err)
	}
	os.Exit(snakepit.ExitCode(err))
}
