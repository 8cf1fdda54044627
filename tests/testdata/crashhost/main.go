// Command crashhost is a test helper: a host that starts a pool of real
// Python workers, prints its run id and their OS pids as one JSON line, and
// then waits to be killed. The process-hygiene tests build it and SIGKILL it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/snakepit-go/snakepit/actors/registry"
	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

func main() {
	workers := flag.Int("workers", 3, "pool size")
	pyHeartbeat := flag.Bool("python-heartbeat", false, "workers heartbeat to the host (dependent, 100 ms)")
	detach := flag.Bool("detach", false, "have a tool start a process in a session of its own (it leaves the worker's group)")
	fork := flag.Bool("fork", false, "fork the workers from the pool's fork server")
	flag.Parse()
	var args, env []string
	pyLevel := "warning"
	level := slog.LevelWarn
	if *pyHeartbeat {
		args = []string{"--heartbeat-enabled", "--heartbeat-interval-ms", "100", "--heartbeat-timeout-ms", "200",
			"--heartbeat-max-missed", "2", "--heartbeat-dependent"}
		// The workers' "heartbeat N answered" lines reach stderr.
		pyLevel, level = "debug", slog.LevelDebug
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app, err := snakepit.Start(ctx, snakepit.Config{
		Pools:          []snakepit.PoolConfig{{Name: "crash", Size: *workers, AdapterArgs: args, AdapterEnv: env, ForkServer: *fork}},
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		PythonLogLevel: pyLevel,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		os.Exit(1)
	}
	if err := app.AwaitInitComplete(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "await:", err)
		os.Exit(1)
	}
	reg := &registry.Client{Root: app.System().Root, PID: app.Registry()}
	var pids []int
	for _, id := range must(app.ListWorkers(ctx, "crash")) {
		meta, ok, err := reg.Lookup(ctx, id)
		if err != nil || !ok {
			fmt.Fprintln(os.Stderr, "lookup:", id, ok, err)
			os.Exit(1)
		}
		pids = append(pids, meta.OSPid)
	}
	detached := 0
	if *detach {
		res, err := app.Execute(ctx, "spawn_detached", map[string]any{"seconds": 60})
		if err != nil {
			fmt.Fprintln(os.Stderr, "spawn_detached:", err)
			os.Exit(1)
		}
		_ = json.Unmarshal(res.JSON, &detached)
	}
	zygote := 0
	if fs, ok := app.ForkServer("crash"); ok {
		zygote = fs.PID
	}
	out, _ := json.Marshal(map[string]any{"run_id": app.RunID(), "pids": pids, "detached": detached, "zygote": zygote,
		"shm_dir": app.SharedMemoryDir()})
	fmt.Println(string(out))
	select {} // until killed
}

func must[T any](v T, err error) T {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return v
}
