package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
	"github.com/snakepit-go/snakepit/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m)
}

func TestParseArgs(t *testing.T) {
	got, err := parseArgs([]string{"a=1", "b=hello", "c=[1,2]", `d={"k":true}`, "e=", "f=x=y"})
	require.NoError(t, err)
	want := map[string]string{"a": "1", "b": `"hello"`, "c": "[1,2]", "d": `{"k":true}`, "e": `""`, "f": `"x=y"`}
	for k, v := range want {
		assert.JSONEq(t, v, string(got[k]), k)
	}
	for _, bad := range []string{"novalue", "=1"} {
		_, err := parseArgs([]string{bad})
		assert.Error(t, err, bad)
	}
}

func TestNormalizeArgs(t *testing.T) {
	got := normalizeArgs([]string{"-workers", "2", "--arg", "a=-1", "-dry-run=true", "-h", "-1", "pool", "--", "-raw"})
	assert.Equal(t, []string{"--workers", "2", "--arg", "a=-1", "--dry-run=true", "-h", "-1", "pool", "--", "-raw"}, got)
}

func TestErrorLineSaysSnakepitOnce(t *testing.T) {
	assert.Equal(t, "snakepit: boom", errorLine(errors.New("snakepit: snakepit: boom")))
	assert.Equal(t, "snakepit: boom", errorLine(errors.New("boom")))
	e := snakepit.NewError(snakepit.CodePoolNotFound, "no pool x")
	assert.Equal(t, e.Error(), errorLine(e), "a structured error is printed as it is")
	assert.True(t, strings.HasPrefix(e.Error(), "snakepit "))
}

func TestUsageHelpAndExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(nil, &out, &errb))
	assert.Contains(t, errb.String(), "Usage:")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"frobnicate"}, &out, &errb))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
	assert.Equal(t, 1, strings.Count(errb.String(), "snakepit:"), "the error is printed once: %s", errb.String())
	errb.Reset()
	assert.Equal(t, 2, run([]string{"exec", "onlypool"}, &out, &errb), "a missing argument is a usage error")
	assert.Contains(t, errb.String(), "accepts 2 arg(s), received 1")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"demo", "-no-such-flag"}, &out, &errb))
	assert.Contains(t, errb.String(), "unknown flag: --no-such-flag")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"-log-level", "loud", "status"}, &out, &errb))
	assert.Contains(t, errb.String(), "-log-level")

	// Help on -h, --help and help exits 0 and lists every flag, the global ones too.
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		out.Reset()
		assert.Equal(t, 0, run(args, &out, &errb), args)
		for _, cmd := range []string{"run", "status", "demo", "exec", "demo-cluster", "serve", "cleanup", "bench"} {
			assert.Contains(t, out.String(), "  "+cmd+" ", args)
		}
	}
	root := newRoot(&globals{stdout: &out, stderr: &errb})
	for _, c := range root.Commands() {
		out.Reset()
		assert.Equal(t, 0, run([]string{c.Name(), "-h"}, &out, &errb), c.Name())
		c.Flags().VisitAll(func(f *pflag.Flag) {
			assert.Contains(t, out.String(), "--"+f.Name, "%s -h lists --%s", c.Name(), f.Name)
		})
		for _, g := range []string{"--python", "--pythonpath", "--priv-dir", "--log-level"} {
			assert.Contains(t, out.String(), g, "%s -h lists the global %s", c.Name(), g)
		}
	}
}

func TestExecRunsATool(t *testing.T) {
	testutil.Python(t)
	var out, errb bytes.Buffer
	code := run([]string{"exec", "default", "add", "--arg", "a=40", "--arg", "b=2"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Equal(t, "42", strings.TrimSpace(out.String()))

	out.Reset()
	code = run([]string{"exec", "-stream", "default", "stream_count", "--arg", "n=2"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	var m map[string]int
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &m))
	assert.Equal(t, 1, m["index"])

	errb.Reset()
	code = run([]string{"exec", "default", "raise_error", "--arg", "kind=key", "--arg", "message=k"}, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "python_error/python_exception")
	assert.Contains(t, errb.String(), "KeyError")
}

func TestDemoRuns(t *testing.T) {
	testutil.Python(t)
	var out, errb bytes.Buffer
	code := run([]string{"demo", "-workers", "2", "-duration", "300ms"}, &out, &errb)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	s := out.String()
	for _, want := range []string{"all 2 workers ready", `add   map[a:2 b:40] → 42`, "chunk stream_count-5",
		"python_type=ValueError", "ErrToolNotFound) = true", "calls/s", "caller got: worker/worker_exit (killed)",
		"restarted: new python pid", "restarts=1", "0 of 2 Python processes still alive"} {
		assert.Contains(t, s, want)
	}
}
