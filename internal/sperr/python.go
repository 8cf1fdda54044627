package sperr

import (
	"encoding/json"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pythonPayload is the JSON a failing tool sends in error_message (or, for a
// streaming call, in the gRPC status message); see README_GRPC.md "Errors".
type pythonPayload struct {
	Type       string         `json:"type"`
	Bases      []string       `json:"bases"`
	Message    string         `json:"message"`
	Traceback  string         `json:"traceback"`
	Stacktrace []string       `json:"stacktrace"`
	Context    map[string]any `json:"context"`
}

// bridgeCodes maps the Python bridge's own exception types to codes; every
// other Python type is a python_exception.
var bridgeCodes = map[string]string{
	"ToolNotFoundError":      CodeToolNotFound,
	"InvalidArgumentError":   CodeInvalidArgument,
	"StreamingMismatchError": CodeStreamingMismatch,
}

// FromPython translates a worker's error payload into an Error. A payload
// that is not the structured JSON (an older or foreign bridge) becomes a
// python_exception whose message is the raw text.
func FromPython(raw string) *Error {
	var p pythonPayload
	if err := json.Unmarshal([]byte(raw), &p); err != nil || p.Type == "" {
		return New(CodePythonException, "%s", Truncate(strings.TrimSpace(raw), MessageLimit))
	}
	code, ok := bridgeCodes[p.Type]
	var ml mlError
	if !ok {
		code = CodePythonException
		if ml, ok = classify(p.Type, p.Message); ok {
			code = ml.code
		}
	}
	e := New(code, "%s", Truncate(p.Message, MessageLimit))
	e.PythonType = Truncate(p.Type, EchoLimit)
	e.PythonTraceback = Truncate(p.Traceback, TracebackLimit)
	for i, b := range p.Bases {
		if i == maxBases {
			break
		}
		e.PythonBases = append(e.PythonBases, Truncate(b, EchoLimit))
	}
	if n := len(p.Stacktrace); n > 0 {
		frames := p.Stacktrace[max(0, n-maxFrames):]
		e.PythonStacktrace = make([]string, len(frames))
		for i, f := range frames {
			e.PythonStacktrace[i] = Truncate(f, EchoLimit)
		}
	}
	for k, v := range p.Context {
		if len(e.PythonContext) == maxContext {
			break
		}
		if e.PythonContext == nil {
			e.PythonContext = map[string]string{}
		}
		s, isString := v.(string)
		if !isString {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		e.PythonContext[Truncate(k, EchoLimit)] = Truncate(s, EchoLimit)
	}
	if tool, ok := p.Context["tool_name"].(string); ok && tool != "" {
		e.WithDetail("tool", Truncate(tool, EchoLimit))
	}
	if ml.code != "" {
		e.Suggestion = ml.suggestion
		for k, v := range ml.details {
			e.WithDetail(k, Truncate(v, EchoLimit))
		}
	}
	return e
}

// Bounds on what a payload may carry into an Error.
const (
	maxBases   = 16
	maxFrames  = 50
	maxContext = 32
)

// FromGRPC translates a failed gRPC call to a worker. A status whose message
// is the structured Python payload (streaming errors) is translated as
// FromPython, keeping the status code; context errors become
// deadline_exceeded / cancelled; anything else is grpc_error.
func FromGRPC(err error) *Error {
	st, ok := status.FromError(err)
	if !ok {
		e := Wrap(CodeGRPC, err, "%v", err)
		e.GRPCCode = codes.Unknown
		return e
	}
	var e *Error
	switch {
	case strings.HasPrefix(strings.TrimSpace(st.Message()), "{") && json.Valid([]byte(st.Message())):
		e = FromPython(st.Message())
	case st.Code() == codes.DeadlineExceeded:
		e = Wrap(CodeDeadlineExceeded, err, "deadline exceeded during the call")
	case st.Code() == codes.Canceled:
		e = Wrap(CodeCancelled, err, "call cancelled")
	case st.Code() == codes.NotFound:
		e = Wrap(CodeToolNotFound, err, "%s", st.Message())
	case st.Code() == codes.InvalidArgument:
		e = Wrap(CodeInvalidArgument, err, "%s", st.Message())
	default:
		e = Wrap(CodeGRPC, err, "%s: %s", st.Code(), st.Message())
	}
	e.GRPCCode = st.Code()
	return e
}
