package sperr

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestEveryCodeHasItsCategory(t *testing.T) {
	for code, cat := range codeCategory {
		e := New(code, "x")
		assert.Equal(t, cat, e.Category, code)
	}
	assert.Equal(t, CategoryWorker, CategoryOf("made_up"))
}

func TestIsMatchesSentinelsByCodeOrCategory(t *testing.T) {
	e := New(CodeQueueTimeout, "waited too long")
	wrapped := fmt.Errorf("call: %w", e)
	assert.ErrorIs(t, wrapped, ErrQueueTimeout)
	assert.ErrorIs(t, wrapped, ErrTimeout, "category sentinel")
	assert.NotErrorIs(t, wrapped, ErrDeadlineExceeded)
	assert.NotErrorIs(t, wrapped, ErrValidation)
	assert.NotErrorIs(t, wrapped, errors.New("other"))

	var got *Error
	require.ErrorAs(t, wrapped, &got)
	assert.Equal(t, "waited too long", got.Message)
}

func TestErrorString(t *testing.T) {
	e := New(CodeWorkerExit, "python process 7 ended")
	e.Pool, e.WorkerID = "p", "p-w1"
	e.WithDetail("signal", "killed").WithDetail("exit_code", "-1").WithDetail("last_output", "long…")
	assert.Equal(t, "snakepit worker/worker_exit [p p-w1]: python process 7 ended (exit_code=-1, signal=killed)", e.Error())

	py := FromPython(`{"type":"KeyError","message":"'k'"}`)
	assert.Equal(t, "snakepit python_error/python_exception: KeyError: 'k'", py.Error())
}

func TestFromContext(t *testing.T) {
	d := FromContext(context.DeadlineExceeded)
	assert.ErrorIs(t, d, ErrDeadlineExceeded)
	assert.ErrorIs(t, d, context.DeadlineExceeded, "unwraps to the context error")
	c := FromContext(context.Canceled)
	assert.ErrorIs(t, c, ErrCancelled)
	assert.ErrorIs(t, c, context.Canceled)
}

func TestFromPython(t *testing.T) {
	cases := []struct {
		name, raw, code, pyType, msg string
	}{
		{"exception", `{"type":"ValueError","message":"bad","traceback":"Traceback...","context":{"tool_name":"add"}}`, CodePythonException, "ValueError", "bad"},
		{"unknown tool", `{"type":"ToolNotFoundError","message":"no tool x"}`, CodeToolNotFound, "ToolNotFoundError", "no tool x"},
		{"bad argument", `{"type":"InvalidArgumentError","message":"missing a"}`, CodeInvalidArgument, "InvalidArgumentError", "missing a"},
		{"stream mismatch", `{"type":"StreamingMismatchError","message":"m"}`, CodeStreamingMismatch, "StreamingMismatchError", "m"},
		{"not JSON", "plain failure text\n", CodePythonException, "", "plain failure text"},
		{"JSON without type", `{"message":"m"}`, CodePythonException, "", `{"message":"m"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := FromPython(c.raw)
			assert.Equal(t, c.code, e.Code)
			assert.Equal(t, c.pyType, e.PythonType)
			assert.Equal(t, c.msg, e.Message)
		})
	}
	e := FromPython(`{"type":"ValueError","message":"bad","traceback":"Traceback (most recent call last)","context":{"tool_name":"add"}}`)
	assert.Equal(t, "Traceback (most recent call last)", e.PythonTraceback)
	assert.Equal(t, "add", e.Details["tool"])
}

func TestFromGRPC(t *testing.T) {
	cases := []struct {
		name string
		err  error
		code string
		grpc codes.Code
	}{
		{"payload in status", status.Error(codes.InvalidArgument, `{"type":"InvalidArgumentError","message":"x"}`), CodeInvalidArgument, codes.InvalidArgument},
		{"python error in stream", status.Error(codes.Internal, `{"type":"RuntimeError","message":"x"}`), CodePythonException, codes.Internal},
		{"deadline", status.Error(codes.DeadlineExceeded, "late"), CodeDeadlineExceeded, codes.DeadlineExceeded},
		{"cancel", status.Error(codes.Canceled, "gone"), CodeCancelled, codes.Canceled},
		{"not found", status.Error(codes.NotFound, "no tool"), CodeToolNotFound, codes.NotFound},
		{"unavailable", status.Error(codes.Unavailable, "conn refused"), CodeGRPC, codes.Unavailable},
		{"not a status", errors.New("boom"), CodeGRPC, codes.Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := FromGRPC(c.err)
			assert.Equal(t, c.code, e.Code)
			assert.Equal(t, c.grpc, e.GRPCCode)
		})
	}
}

func TestProtoRoundTrip(t *testing.T) {
	e := New(CodeWorkerExit, "ended")
	e.PythonType, e.PythonTraceback, e.GRPCCode, e.WorkerID, e.Pool = "T", "tb", codes.Unavailable, "w", "p"
	e.WithDetail("signal", "killed")
	back := FromProto(ToProto(e))
	assert.Equal(t, e.Category, back.Category)
	assert.Equal(t, e.Code, back.Code)
	assert.Equal(t, e.Message, back.Message)
	assert.Equal(t, e.Details, back.Details)
	assert.Equal(t, e.PythonType, back.PythonType)
	assert.Equal(t, e.PythonTraceback, back.PythonTraceback)
	assert.Equal(t, e.GRPCCode, back.GRPCCode)
	assert.Equal(t, e.WorkerID, back.WorkerID)
	assert.Equal(t, e.Pool, back.Pool)
	assert.ErrorIs(t, back, ErrWorkerExit)

	assert.Nil(t, ToProto(nil))
	assert.Nil(t, FromProto(nil))
	plain := FromProto(ToProto(errors.New("plain")))
	assert.Equal(t, CodeInternal, plain.Code)
	assert.Equal(t, "plain", plain.Message)
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…(+3 bytes)"},
		{"héllo", 2, "h…(+5 bytes)"}, // never splits the two bytes of é
		{"", 0, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	long := Truncate(string(make([]byte, 1<<20)), EchoLimit)
	if len(long) > EchoLimit+32 {
		t.Errorf("a 1 MiB input echoes %d bytes", len(long))
	}
}
