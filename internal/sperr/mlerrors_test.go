package sperr

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func payload(t *testing.T, pyType, msg string, bases ...string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"type": pyType, "message": msg, "bases": bases,
		"stacktrace": []string{"/app/model.py:10 in predict", "/app/model.py:20 in forward"},
		"traceback":  "Traceback (most recent call last): ...",
		"context":    map[string]any{"tool_name": "predict", "session_id": "s1", "payload_version": 1}})
	require.NoError(t, err)
	return string(b)
}

// Messages as numpy, PyTorch and JAX print them.
func TestClassifyMLErrors(t *testing.T) {
	for _, tc := range []struct {
		name, pyType, msg, code string
		details                 map[string]string
	}{
		{"numpy dot", "ValueError", "shapes (2,3) and (4,5) not aligned: 3 (dim 1) != 4 (dim 0)", CodeShapeMismatch,
			map[string]string{"shapes": "(2,3) vs (4,5)"}},
		{"numpy broadcast", "ValueError", "operands could not be broadcast together with shapes (2,3) (4,) ", CodeShapeMismatch,
			map[string]string{"shapes": "(2,3) vs (4,)"}},
		{"torch matmul", "RuntimeError", "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", CodeShapeMismatch,
			map[string]string{"shapes": "(2x3) vs (4x5)"}},
		{"torch size", "RuntimeError", "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1", CodeShapeMismatch, nil},
		{"reshape", "ValueError", "cannot reshape array of size 6 into shape (4,)", CodeShapeMismatch, nil},
		{"torch dtype", "RuntimeError", "expected scalar type Float but found Double", CodeDTypeMismatch,
			map[string]string{"dtypes": "Float and Double"}},
		{"torch dtype 2", "RuntimeError", "expected m1 and m2 to have the same dtype, but got: float != double", CodeDTypeMismatch,
			map[string]string{"dtypes": "float and double"}},
		{"numpy cast", "TypeError", "Cannot cast array data from dtype('float64') to dtype('int64') according to the rule 'safe'", CodeDTypeMismatch,
			map[string]string{"dtypes": "float64 and int64"}},
		{"torch device", "RuntimeError", "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!", CodeDeviceMismatch,
			map[string]string{"devices": "cuda:0 and cpu"}},
		{"torch weight device", "RuntimeError", "Input type (torch.cuda.FloatTensor) and weight type (torch.FloatTensor) should be the same", CodeDeviceMismatch,
			map[string]string{"devices": "torch.cuda.FloatTensor and torch.FloatTensor"}},
		{"cuda oom", "OutOfMemoryError", "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity; 5.12 GiB already allocated; 1.01 GiB free)", CodeOutOfMemory,
			map[string]string{"device": "cuda:0", "requested": "2.00 GiB", "capacity": "7.79 GiB", "allocated": "5.12 GiB"}},
		{"cuda error", "RuntimeError", "CUDA error: out of memory", CodeOutOfMemory, map[string]string{"device": "cuda"}},
		{"jax oom", "XlaRuntimeError", "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1073741824 bytes.", CodeOutOfMemory, nil},
		{"host oom", "MemoryError", "", CodeOutOfMemory, map[string]string{"device": "cpu"}},
		{"plain", "ValueError", "bad shape of mind", CodePythonException, nil},
		{"key", "KeyError", "'weights'", CodePythonException, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := FromPython(payload(t, tc.pyType, tc.msg))
			assert.Equal(t, tc.code, e.Code)
			assert.Equal(t, CategoryPythonError, e.Category)
			assert.Equal(t, tc.pyType, e.PythonType)
			if tc.code == CodePythonException {
				assert.Empty(t, e.Suggestion)
				return
			}
			assert.NotEmpty(t, e.Suggestion)
			assert.Contains(t, e.Error(), "(try: ")
			for k, v := range tc.details {
				assert.Equal(t, v, e.Details[k], k)
			}
			assert.True(t, errors.Is(e, ErrPythonException), "a refined code still matches python_exception")
			assert.True(t, errors.Is(e, &Error{Code: tc.code}))
		})
	}
}

func TestFromPythonKeepsStacktraceContextAndBases(t *testing.T) {
	e := FromPython(payload(t, "KeyError", "'weights'", "KeyError", "LookupError", "Exception", "BaseException"))
	assert.Equal(t, []string{"/app/model.py:10 in predict", "/app/model.py:20 in forward"}, e.PythonStacktrace)
	assert.Equal(t, map[string]string{"tool_name": "predict", "session_id": "s1", "payload_version": "1"}, e.PythonContext)
	assert.Equal(t, []string{"KeyError", "LookupError", "Exception", "BaseException"}, e.PythonBases)

	// Matched by class and by base, not by an unrelated class.
	assert.True(t, errors.Is(e, PythonType("KeyError")))
	assert.True(t, errors.Is(e, PythonType("LookupError")))
	assert.True(t, errors.Is(e, PythonType("Exception")))
	assert.False(t, errors.Is(e, PythonType("ValueError")))
	assert.False(t, errors.Is(e, PythonType("IndexError")))
	assert.True(t, errors.Is(e, ErrPythonException))
	assert.False(t, errors.Is(e, ErrToolNotFound))

	// Across the wire (another node) nothing is lost.
	back := FromProto(ToProto(e))
	assert.Equal(t, e.PythonBases, back.PythonBases)
	assert.Equal(t, e.PythonStacktrace, back.PythonStacktrace)
	assert.Equal(t, e.PythonContext, back.PythonContext)
	assert.True(t, errors.Is(back, PythonType("LookupError")))
	oom := FromProto(ToProto(FromPython(payload(t, "MemoryError", ""))))
	assert.Equal(t, CodeOutOfMemory, oom.Code)
	assert.NotEmpty(t, oom.Suggestion)

	// Without bases (an older bridge) the class itself still matches.
	old := FromPython(`{"type":"KeyError","message":"k"}`)
	assert.True(t, errors.Is(old, PythonType("KeyError")))
	assert.False(t, errors.Is(old, PythonType("LookupError")))
}

// A payload cannot make the host keep unbounded data.
func TestFromPythonBoundsWhatItKeeps(t *testing.T) {
	frames := make([]string, 500)
	bases := make([]string, 100)
	ctx := map[string]any{}
	for i := range frames {
		frames[i] = "f.py:1 in g"
	}
	for i := range bases {
		bases[i] = "B"
	}
	for i := range 100 {
		ctx[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
	}
	b, _ := json.Marshal(map[string]any{"type": "ValueError", "message": "m", "stacktrace": frames, "bases": bases, "context": ctx})
	e := FromPython(string(b))
	assert.Len(t, e.PythonStacktrace, maxFrames)
	assert.Len(t, e.PythonBases, maxBases)
	assert.Len(t, e.PythonContext, maxContext)
}
