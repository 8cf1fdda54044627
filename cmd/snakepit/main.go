// Command snakepit runs Python tools through a supervised pool of Python
// worker processes.
//
//	snakepit demo [-workers N]                 a tour: execute, stream, errors, a killed worker, stats
//	snakepit exec [-workers N] POOL TOOL [--arg k=v ...]   run one tool and print its result as JSON
//	snakepit demo-cluster [-json]                       three nodes, one SIGKILLed under load, every reply counted
//	snakepit serve [-listen HOST:PORT] [-workers N]      a node whose pool other nodes call by name (-cluster) or PID
//	snakepit cleanup [-instance N] [-dry-run]            end what a dead host of an instance left behind
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  snakepit demo [-workers N] [-duration D]
  snakepit exec [-workers N] [-adapter A] POOL TOOL [--arg key=value ...]
  snakepit demo-cluster [-workers N] [-concurrency C] [-duration D] [-json]
  snakepit serve [-listen HOST:PORT] [-pool NAME] [-workers N] [-adapter A]
                 [-cluster NAME -gossip HOST:PORT -join ADDR,... -node NAME [-loopback-timings]] [-drive]
  snakepit cleanup [-instance N] [-data-dir D] [-token T] [-rogue=false] [-dry-run]
  snakepit bench [-workers N] [-concurrency C] [-duration D] [-startup 1,4,16,64] [-out DIR] [-json]
                 [unary|stream|binary|startup|memory ...]   (snakepit bench -h explains)

exec values are JSON when they parse as JSON (1, true, [1,2], {"a":1}), strings otherwise.`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelError
	if os.Getenv("SNAKEPIT_LOG") == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout, logger)
	case "exec":
		err = runExec(ctx, args[1:], stdout, logger)
	case "demo-cluster":
		err = runDemoCluster(ctx, args[1:], stdout, logger)
	case "serve":
		err = runServe(ctx, args[1:], os.Stdin, stdout, logger)
	case "cleanup":
		err = runCleanup(ctx, args[1:], stdout, logger)
	case "bench":
		err = runBench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "snakepit: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "snakepit:", err)
		return 1
	}
	return 0
}
