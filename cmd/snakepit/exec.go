package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/apps/snakepit/admin"
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

func newExecCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec POOL TOOL [--arg key=value ...]",
		Short: "Start a pool, run one tool and print its result as JSON",
		Long: `exec starts a pool named POOL, runs TOOL once and prints its result as JSON
(a streaming tool with -stream: one JSON line per chunk), then stops the pool.
Values of --arg are JSON when they parse as JSON (1, true, [1,2], {"a":1}), strings otherwise.`,
		Args: usageArgs(cobra.ExactArgs(2)),
	}
	fs := cmd.Flags()
	workers := fs.Int("workers", 1, "workers in the pool")
	adapter := fs.String("adapter", snakepit.DefaultAdapter, "Python adapter class")
	timeout := fs.Duration("timeout", 60*time.Second, "call timeout")
	stream := fs.Bool("stream", false, "call a streaming tool; print one JSON line per chunk")
	pairs := fs.StringArray("arg", nil, "a tool argument as key=value (repeat for more)")
	host := fs.Bool("host", false, "call the running host of -instance (snakepit run) through its admin endpoint instead of starting a pool")
	inst := addInstanceFlags(fs, "with -host: ")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *host {
			if *stream {
				return usageError{errors.New("-stream is not available with -host")}
			}
			dir, err := inst.dir()
			if err != nil {
				return err
			}
			return execOnHost(cmd.Context(), dir, args[0], args[1], *pairs, *timeout, cmd.OutOrStdout())
		}
		return runExec(cmd.Context(), g, args[0], args[1], *pairs, *workers, *adapter, *timeout, *stream, cmd.OutOrStdout())
	}
	return cmd
}

// execOnHost runs one call through a running host's admin endpoint.
func execOnHost(ctx context.Context, dir, poolName, tool string, pairs []string, timeout time.Duration, stdout io.Writer) error {
	callArgs, err := parseArgs(pairs)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(callArgs)
	if err != nil {
		return err
	}
	ep, err := admin.ReadEndpoint(dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rep, err := admin.Execute(ctx, ep, admin.ExecuteRequest{Pool: poolName, Tool: tool, Args: raw, TimeoutMS: int(timeout.Milliseconds())})
	if err != nil {
		return err
	}
	if rep.BinaryBytes > 0 {
		fmt.Fprintf(stdout, "<%d bytes>\n", rep.BinaryBytes)
		return nil
	}
	fmt.Fprintln(stdout, string(rep.Result))
	return nil
}

func runExec(ctx context.Context, g *globals, poolName, tool string, pairs []string, workersN int, adapterS string,
	timeoutD time.Duration, streamB bool, stdout io.Writer) error {
	workers, adapter, timeout, stream := &workersN, &adapterS, &timeoutD, &streamB
	callArgs, err := parseArgs(pairs)
	if err != nil {
		return err
	}
	app, err := snakepit.Start(ctx, g.apply(snakepit.Config{
		Pools: []snakepit.PoolConfig{{Name: poolName, Size: *workers, Adapter: *adapter}},
	}))
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
