package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/snakepit-go/snakepit/internal/pyenv"
)

// defaultIndex is where pip looks unless PIP_INDEX_URL says otherwise.
const defaultIndex = "https://pypi.org/simple/"

func newSetupCmd(*globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup --requirements FILE",
		Short: "Make a Python venv for an adapter and install its requirements (pip or uv), saying clearly when no index is reachable",
		Long: `setup makes a venv (-venv, default .venv) from the interpreter workers would use, with the system's
packages visible (--system-site-packages: Debian's python3-grpcio and python3-protobuf count), installs
-requirements with pip (or uv with -installer uv) from the package index ($PIP_INDEX_URL, else PyPI),
and checks the venv's Python can import grpc and protobuf. When no index is reachable it says so, and
installs offline when what the file asks for is already there; otherwise it names what is missing.
Point -python (or python: in the config file) at <venv>/bin/python afterwards.`,
		Args: usageArgs(cobra.NoArgs),
	}
	fs := cmd.Flags()
	reqs := fs.String("requirements", "", "requirements file to install (required)")
	venv := fs.String("venv", ".venv", "directory of the venv (made when missing)")
	installer := fs.String("installer", "pip", "pip or uv")
	indexTimeout := fs.Duration("index-timeout", 5*time.Second, "how long to wait for the package index to answer")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *reqs == "" {
			return usageError{errors.New("setup: -requirements FILE is required")}
		}
		if *installer != "pip" && *installer != "uv" {
			return usageError{fmt.Errorf("setup: -installer %q: pip or uv", *installer)}
		}
		return runSetup(cmd.Context(), *reqs, *venv, *installer, *indexTimeout, cmd.OutOrStdout())
	}
	return cmd
}

func runSetup(ctx context.Context, reqs, venv, installer string, indexTimeout time.Duration, out io.Writer) error {
	if _, err := os.Stat(reqs); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	venv, err := filepath.Abs(venv)
	if err != nil {
		return err
	}
	py := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(py); err != nil {
		interp, err := pyenv.Find(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "making venv %s from %s (Python %s), with the system's packages\n", venv, interp.Path, interp.Version)
		if b, err := exec.CommandContext(ctx, interp.Path, "-m", "venv", "--system-site-packages", venv).CombinedOutput(); err != nil {
			return fmt.Errorf("setup: python -m venv: %v: %s (Debian: apt install python3-venv)", err, strings.TrimSpace(string(b)))
		}
	} else {
		fmt.Fprintf(out, "using venv %s\n", venv)
	}
	index := os.Getenv("PIP_INDEX_URL")
	if index == "" {
		index = defaultIndex
	}
	reachErr := indexReachable(ctx, index, indexTimeout)
	args := installArgs(installer, py, reqs, reachErr != nil)
	if reachErr != nil {
		fmt.Fprintf(out, "no package index is reachable (%s: %v): installing offline, from what is already on this machine\n", index, reachErr)
	} else {
		fmt.Fprintf(out, "installing %s with %s from %s\n", reqs, installer, index)
	}
	b, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(b))
		if reachErr != nil {
			return fmt.Errorf("setup: no package index is reachable (%s) and %s asks for what this machine does not have:\n%s\n"+
				"set PIP_INDEX_URL to a reachable index, or install the packages with your system's package manager", index, reqs, msg)
		}
		return fmt.Errorf("setup: %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	venvInterp, err := pyenv.Probe(ctx, py)
	if err != nil {
		return fmt.Errorf("setup: the venv's Python cannot run workers: %w", err)
	}
	fmt.Fprintf(out, "ready: %s (grpcio %s protobuf %s)\nuse it with -python %s (or python: %s in the config file)\n",
		py, venvInterp.GRPC, venvInterp.Protobuf, py, py)
	return nil
}

// installArgs is the install command: pip in the venv, or uv for it.
func installArgs(installer, py, reqs string, offline bool) []string {
	var args []string
	if installer == "uv" {
		args = []string{"uv", "pip", "install", "--python", py, "-r", reqs}
		if offline {
			args = append(args, "--offline")
		}
		return args
	}
	args = []string{py, "-m", "pip", "install", "--disable-pip-version-check", "-r", reqs}
	if offline {
		args = append(args, "--no-index")
	}
	return args
}

// indexReachable asks the index for its root within timeout.
func indexReachable(ctx context.Context, index string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, index, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
