package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// parseArgs turns --arg key=value pairs into a JSON object: a value that
// parses as JSON is taken as such, anything else is a string.
func parseArgs(pairs []string) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q: want key=value", kv)
		}
		if json.Valid([]byte(v)) {
			out[k] = json.RawMessage(v)
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = b
	}
	return out, nil
}

// splitArgFlags pulls every "--arg k=v" / "--arg=k=v" out of args.
func splitArgFlags(args []string) (rest, pairs []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--arg" || a == "-arg":
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("%s needs key=value", a)
			}
			pairs = append(pairs, args[i+1])
			i++
		case strings.HasPrefix(a, "--arg="), strings.HasPrefix(a, "-arg="):
			pairs = append(pairs, a[strings.Index(a, "=")+1:])
		default:
			rest = append(rest, a)
		}
	}
	return rest, pairs, nil
}

func runExec(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	rest, pairs, err := splitArgFlags(args)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	workers := fs.Int("workers", 1, "workers in the pool")
	adapter := fs.String("adapter", snakepit.DefaultAdapter, "Python adapter class")
	timeout := fs.Duration("timeout", 60*time.Second, "call timeout")
	stream := fs.Bool("stream", false, "call a streaming tool; print one JSON line per chunk")
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("exec needs POOL and TOOL, got %q", fs.Args())
	}
	poolName, tool := fs.Arg(0), fs.Arg(1)
	callArgs, err := parseArgs(pairs)
	if err != nil {
		return err
	}
	app, err := snakepit.Start(ctx, snakepit.Config{
		Logger: logger,
		Pools:  []snakepit.PoolConfig{{Name: poolName, Size: *workers, Adapter: *adapter}},
	})
	if err != nil {
		return err
	}
	defer app.Stop(context.Background())
	if err := app.AwaitReady(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *stream {
		st, err := app.ExecuteStream(cctx, tool, callArgs, snakepit.WithPool(poolName))
		if err != nil {
			return err
		}
		for c, err := range st.Chunks() {
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, string(c.Data))
		}
		return nil
	}
	res, err := app.Execute(cctx, tool, callArgs, snakepit.WithPool(poolName))
	if err != nil {
		return err
	}
	if res.IsBinary {
		fmt.Fprintf(stdout, "<%d bytes>\n", len(res.Binary))
		return nil
	}
	fmt.Fprintln(stdout, string(res.JSON))
	return nil
}
