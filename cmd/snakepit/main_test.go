package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

func TestSplitArgFlags(t *testing.T) {
	rest, pairs, err := splitArgFlags([]string{"-workers", "2", "--arg", "a=1", "pool", "--arg=b=2", "tool", "-arg", "c=3"})
	require.NoError(t, err)
	assert.Equal(t, []string{"-workers", "2", "pool", "tool"}, rest)
	assert.Equal(t, []string{"a=1", "b=2", "c=3"}, pairs)
	_, _, err = splitArgFlags([]string{"--arg"})
	assert.Error(t, err)
}

func TestRunUsageAndUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	assert.Equal(t, 2, run(nil, &out, &errb))
	assert.Contains(t, errb.String(), "usage:")
	errb.Reset()
	assert.Equal(t, 2, run([]string{"frobnicate"}, &out, &errb))
	assert.Contains(t, errb.String(), `unknown command "frobnicate"`)
	assert.Equal(t, 0, run([]string{"help"}, &out, &errb))
	errb.Reset()
	assert.Equal(t, 1, run([]string{"exec", "onlypool"}, &out, &errb))
	assert.Contains(t, errb.String(), "exec needs POOL and TOOL")
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
