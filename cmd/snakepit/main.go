// Command snakepit runs Python tools through a supervised pool of Python
// worker processes. `snakepit -h` lists its commands; `snakepit COMMAND -h`
// lists a command's flags.
//
//	snakepit run -config snakepit.yaml     a host serving the pools of a config file, with its admin endpoint
//	snakepit status                        a running host's pools and workers (-json, -watch)
//	snakepit demo                          a tour: execute, stream, errors, a killed worker, stats
//	snakepit exec POOL TOOL --arg k=v      run one tool and print its result as JSON (-host: through a running host)
//	snakepit doctor                        check Python, packages, the bridge, adapters, directories, ports, GPUs
//	snakepit gen-adapter NAME              an adapter package whose tests pass as made
//	snakepit setup --requirements FILE     a venv for an adapter's requirements
//	snakepit demo-cluster                  three nodes, one SIGKILLed under load, every reply counted
//	snakepit serve                         a node whose pool other nodes call by name (-cluster) or PID
//	snakepit cleanup                       end what a dead host of an instance left behind
//	snakepit bench                         the benchmarks
//
// Flags take one dash or two (-config and --config are the same flag).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/pyenv"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// globals are the flags every command takes, and what they configure.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	logLevel       string
	python         string
	pythonPath     []string
	privDir        string
	logger         *slog.Logger
}

// apply puts the global flags into cfg: the logger, -pythonpath, and
// -python/-priv-dir (which Start also reads from the environment the
// persistent hook set).
func (g *globals) apply(cfg snakepit.Config) snakepit.Config {
	cfg.Logger = g.logger
	cfg.PythonPath = append(cfg.PythonPath, g.pythonPath...)
	if g.python != "" {
		cfg.Python = g.python
	}
	if g.privDir != "" {
		cfg.PrivDir = g.privDir
	}
	return cfg
}

// usageError marks an error in how the command was called (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usageArgs wraps a positional-argument check so its failure is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "snakepit",
		Short: "Run Python tools through a supervised pool of Python worker processes",
		Long: `snakepit runs pools of long-lived Python worker processes and calls their tools.

Flags take one dash or two: -config and --config are the same flag.
Values of exec's --arg are JSON when they parse as JSON (1, true, [1,2], {"a":1}), strings otherwise.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(g.logLevel)
			if err != nil {
				return usageError{err}
			}
			g.logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			// Python and the bridge are found through the environment by
			// every path that starts workers (and by the nodes demo-cluster
			// starts), so the flags set it for this process and its children.
			if g.python != "" {
				os.Setenv(pyenv.EnvPython, g.python)
			}
			if g.privDir != "" {
				os.Setenv("SNAKEPIT_PRIV_DIR", g.privDir)
			}
			return nil
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetIn(g.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	defLevel := "error"
	if os.Getenv("SNAKEPIT_LOG") != "" {
		defLevel = os.Getenv("SNAKEPIT_LOG")
	}
	pf.StringVar(&g.logLevel, "log-level", defLevel, "log level of the host's log on stderr: debug, info, warn or error (default from $SNAKEPIT_LOG)")
	pf.StringVar(&g.python, "python", "", "Python interpreter for the workers (default $SNAKEPIT_PYTHON, else python3, else /usr/bin/python3)")
	pf.StringSliceVar(&g.pythonPath, "pythonpath", nil, "directories added to the workers' PYTHONPATH (repeat or comma-separate), where adapters are imported from")
	pf.StringVar(&g.privDir, "priv-dir", "", "directory holding the Python bridge (grpc_server.py); default $SNAKEPIT_PRIV_DIR, else the installed or embedded bridge")
	root.AddCommand(newRunCmd(g), newStatusCmd(g), newDemoCmd(g), newExecCmd(g), newDemoClusterCmd(g),
		newServeCmd(g), newCleanupCmd(g), newBenchCmd(g), newDoctorCmd(g), newGenAdapterCmd(g), newSetupCmd(g))
	return root
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("-log-level %q: debug, info, warn or error", s)
	}
	return l, nil
}

// singleDashLong is a long flag written with one dash (-config, -dry-run=true).
var singleDashLong = regexp.MustCompile(`^-[a-zA-Z][a-zA-Z0-9-]+(=.*)?$`)

// normalizeArgs lets every long flag take one dash, as Go's flag package
// does and the documented commands use (snakepit run -config FILE): -name
// becomes --name. No flag of this command has a one-letter shorthand but
// -h, so nothing is ambiguous. Arguments after "--" are left alone.
func normalizeArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if singleDashLong.MatchString(a) {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

// run is the CLI: it returns the exit code (0 ok, 1 failed, 2 misused).
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, os.Stdin, stdout, stderr)
}

// runContext is run until ctx ends (a long-running command then stops).
func runContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	if len(args) == 0 {
		root.SetOut(stderr)
		_ = root.Usage()
		return 2
	}
	root.SetArgs(normalizeArgs(args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, errorLine(err))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "Run '%s -h' for usage.\n", cmd.CommandPath())
		return 2
	}
	return 1
}

// errorLine is err as one line prefixed "snakepit: " once, however many
// layers already said so.
func errorLine(err error) string {
	msg := err.Error()
	for strings.HasPrefix(msg, "snakepit: ") {
		msg = strings.TrimPrefix(msg, "snakepit: ")
	}
	if strings.HasPrefix(msg, "snakepit ") { // a structured error: "snakepit category/code ..."
		return msg
	}
	return "snakepit: " + msg
}
