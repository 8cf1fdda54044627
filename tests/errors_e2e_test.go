//go:build unix

package tests

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// A tool's exception reaches the Go caller whole: its class and bases
// (matchable with errors.Is), its stack and context; ML errors the host
// recognises come with a code of their own and a suggestion.
func TestPythonErrorsReachGoWhole(t *testing.T) {
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("pyerr"),
		Pools: []snakepit.PoolConfig{{Name: "default", Size: 1}}})
	call := func(kind, msg string) *snakepit.Error {
		t.Helper()
		_, err := app.Execute(t.Context(), "raise_error", map[string]string{"kind": kind, "message": msg})
		var se *snakepit.Error
		require.ErrorAs(t, err, &se)
		return se
	}

	e := call("key", "weights")
	for _, target := range []error{snakepit.ErrKeyError, snakepit.ErrLookupError, snakepit.ErrPythonException,
		snakepit.PythonType("Exception")} {
		assert.True(t, errors.Is(e, target), "%v", target)
	}
	for _, target := range []error{snakepit.ErrValueError, snakepit.ErrIndexError, snakepit.ErrToolNotFound} {
		assert.False(t, errors.Is(e, target), "%v", target)
	}
	assert.Equal(t, []string{"KeyError", "LookupError", "Exception", "BaseException"}, e.PythonBases)
	require.NotEmpty(t, e.PythonStacktrace)
	assert.Contains(t, e.PythonStacktrace[len(e.PythonStacktrace)-1], "in raise_error")
	assert.Equal(t, "raise_error", e.PythonContext["tool_name"])
	assert.Equal(t, "unary", e.PythonContext["call_type"])

	assert.True(t, errors.Is(call("zero_division", "x"), snakepit.ErrArithmeticError))
	assert.True(t, errors.Is(call("file_not_found", "x"), snakepit.ErrOSError))
	assert.True(t, errors.Is(call("timeout", "x"), snakepit.ErrTimeoutError))

	oom := call("runtime", "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity; 5.12 GiB already allocated)")
	assert.True(t, errors.Is(oom, snakepit.ErrOutOfMemory))
	assert.True(t, errors.Is(oom, snakepit.ErrRuntimeError))
	assert.True(t, errors.Is(oom, snakepit.ErrPythonException), "a refinement of python_exception")
	assert.Equal(t, "cuda:0", oom.Details["device"])
	assert.Equal(t, "2.00 GiB", oom.Details["requested"])
	assert.Contains(t, oom.Suggestion, "batch size")

	shape := call("value", "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")
	assert.True(t, errors.Is(shape, snakepit.ErrShapeMismatch))
	assert.Equal(t, "(2x3) vs (4x5)", shape.Details["shapes"])
	assert.True(t, strings.Contains(shape.Error(), "try: "), shape.Error())

	device := call("runtime", "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!")
	assert.True(t, errors.Is(device, snakepit.ErrDeviceMismatch))
	dtype := call("runtime", "expected scalar type Float but found Double")
	assert.True(t, errors.Is(dtype, snakepit.ErrDTypeMismatch))
}
