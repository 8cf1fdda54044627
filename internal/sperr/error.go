// Package sperr is snakepit's structured error: a category for what kind of
// thing went wrong, a code for exactly what, and the Python side's type and
// traceback when the failure came from a tool. Package snakepit re-exports
// it as snakepit.Error; the actors build it; callers match it with errors.Is
// against the sentinels (ErrQueueTimeout, ErrWorkerExit, …) or errors.As.
package sperr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
)

// Category groups errors by what failed (upstream's Snakepit.Error categories,
// plus cancelled and shutdown, which upstream folds into others).
type Category string

// Categories.
const (
	CategoryWorker      Category = "worker"       // the worker process or its actor failed
	CategoryTimeout     Category = "timeout"      // a deadline passed (in the queue or during the call)
	CategoryPythonError Category = "python_error" // the tool raised
	CategoryGRPCError   Category = "grpc_error"   // the gRPC call failed for another reason
	CategoryValidation  Category = "validation"   // bad input, refused before any tool ran
	CategoryPool        Category = "pool"         // the pool could not take the call
	CategoryCancelled   Category = "cancelled"    // the caller cancelled
	CategoryShutdown    Category = "shutdown"     // the app or pool is stopping
	CategorySession     Category = "session"      // a session is unknown or over quota
	CategoryNode        Category = "node"         // another node of the cluster was lost
)

// Codes say exactly what happened. Each belongs to one category (CategoryOf).
const (
	CodeQueueTimeout             = "queue_timeout"
	CodeDeadlineExceeded         = "deadline_exceeded"
	CodePoolSaturated            = "pool_saturated"
	CodePoolNotFound             = "pool_not_found"
	CodePoolNotInitialized       = "pool_not_initialized"
	CodeNoWorkers                = "no_workers_available"
	CodeWorkerBusy               = "worker_busy"
	CodeSessionWorkerUnavailable = "session_worker_unavailable"
	CodeWorkerExit               = "worker_exit"
	CodeWorkerStartFailed        = "worker_start_failed"
	CodePythonException          = "python_exception"
	CodeToolNotFound             = "tool_not_found"
	CodeInvalidArgument          = "invalid_argument"
	CodeStreamingMismatch        = "streaming_mismatch"
	CodeGRPC                     = "grpc_error"
	CodeCancelled                = "cancelled"
	CodeShutdown                 = "shutdown"
	CodeInternal                 = "internal"
	CodeCircuitOpen              = "circuit_open"
	CodeSessionNotFound          = "session_not_found"
	CodeSessionQuotaExceeded     = "session_quota_exceeded"
	CodeNodeDown                 = "node_down"
)

var codeCategory = map[string]Category{
	CodeQueueTimeout:             CategoryTimeout,
	CodeDeadlineExceeded:         CategoryTimeout,
	CodePoolSaturated:            CategoryPool,
	CodePoolNotFound:             CategoryPool,
	CodePoolNotInitialized:       CategoryPool,
	CodeNoWorkers:                CategoryPool,
	CodeWorkerBusy:               CategoryPool,
	CodeSessionWorkerUnavailable: CategoryPool,
	CodeWorkerExit:               CategoryWorker,
	CodeWorkerStartFailed:        CategoryWorker,
	CodePythonException:          CategoryPythonError,
	CodeShapeMismatch:            CategoryPythonError,
	CodeDTypeMismatch:            CategoryPythonError,
	CodeDeviceMismatch:           CategoryPythonError,
	CodeOutOfMemory:              CategoryPythonError,
	CodeToolNotFound:             CategoryValidation,
	CodeInvalidArgument:          CategoryValidation,
	CodeStreamingMismatch:        CategoryValidation,
	CodeGRPC:                     CategoryGRPCError,
	CodeCancelled:                CategoryCancelled,
	CodeShutdown:                 CategoryShutdown,
	CodeInternal:                 CategoryWorker,
	CodeCircuitOpen:              CategoryPool,
	CodeSessionNotFound:          CategorySession,
	CodeSessionQuotaExceeded:     CategorySession,
	CodeNodeDown:                 CategoryNode,
}

// CategoryOf returns the category a code belongs to (CategoryWorker for an
// unknown code).
func CategoryOf(code string) Category {
	if c, ok := codeCategory[code]; ok {
		return c
	}
	return CategoryWorker
}

// CodeOf returns err's code when it is an *Error, else "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Error is snakepit's structured error.
type Error struct {
	Category Category
	Code     string
	Message  string
	// Details holds extra facts: exit_code, signal, last_output, queue_size, …
	Details map[string]string
	// PythonType and PythonTraceback are set when a tool raised;
	// PythonBases are its class and bases, nearest first; PythonStacktrace
	// the frames ("file:line in fn", innermost last); PythonContext what
	// the bridge reported with it (tool_name, session_id, function, ...).
	PythonType       string
	PythonTraceback  string
	PythonBases      []string
	PythonStacktrace []string
	PythonContext    map[string]string
	// Suggestion says what to try, for errors the host recognises (shape,
	// dtype and device mismatches, out of memory).
	Suggestion string
	// GRPCCode is the status code of the failed worker call (codes.OK if none).
	GRPCCode codes.Code
	WorkerID string
	Pool     string

	cause error
}

// New returns an error with code's category.
func New(code, format string, args ...any) *Error {
	return &Error{Category: CategoryOf(code), Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with code's category that unwraps to cause.
func Wrap(code string, cause error, format string, args ...any) *Error {
	e := New(code, format, args...)
	e.cause = cause
	return e
}

// Error formats the error as "snakepit <category>/<code>: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("snakepit ")
	b.WriteString(string(e.Category))
	b.WriteByte('/')
	b.WriteString(e.Code)
	if e.Pool != "" || e.WorkerID != "" {
		b.WriteString(" [")
		b.WriteString(e.Pool)
		if e.WorkerID != "" {
			if e.Pool != "" {
				b.WriteByte(' ')
			}
			b.WriteString(e.WorkerID)
		}
		b.WriteByte(']')
	}
	if e.PythonType != "" {
		b.WriteString(": ")
		b.WriteString(e.PythonType)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Suggestion != "" {
		b.WriteString(" (try: ")
		b.WriteString(e.Suggestion)
		b.WriteByte(')')
	}
	if len(e.Details) > 0 {
		keys := make([]string, 0, len(e.Details))
		for k := range e.Details {
			if k != "last_output" { // long; kept in Details
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i == 0 {
				b.WriteString(" (")
			} else {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			b.WriteString(e.Details[k])
			if i == len(keys)-1 {
				b.WriteByte(')')
			}
		}
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is a sentinel with the same code (or a code
// e's refines: shape_mismatch is a python_exception), or, for a sentinel
// with only a Python type, an exception of that class or a subclass, or,
// for one with only a category, the same category. It lets
// errors.Is(err, ErrQueueTimeout) match any queue-timeout error and
// errors.Is(err, PythonType("LookupError")) a KeyError.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return Matches(t.Code, string(t.Category), t.PythonType, e.Code, string(e.Category), e.PythonType, e.PythonBases)
}

// Matches is Is on the fields an Error and package snakepit's Error share:
// whether a target with code tCode, category tCat or Python type tType
// matches an error with the others.
func Matches(tCode, tCat, tType, code, cat, pyType string, bases []string) bool {
	switch {
	case tCode != "":
		return tCode == code || refines[code] == tCode
	case tType != "":
		if tType == pyType {
			return true
		}
		for _, b := range bases {
			if b == tType {
				return true
			}
		}
		return false
	}
	return tCat != "" && tCat == cat
}

// PythonType returns a sentinel matching an exception of the Python class
// name or any subclass of it (by the bases the bridge reports).
func PythonType(name string) *Error { return &Error{PythonType: name} }

// WithDetail sets one detail and returns e.
func (e *Error) WithDetail(key, value string) *Error {
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Details[key] = value
	return e
}

// Sentinels for errors.Is. They carry only a code (or only a category).
var (
	ErrQueueTimeout             = &Error{Category: CategoryTimeout, Code: CodeQueueTimeout}
	ErrDeadlineExceeded         = &Error{Category: CategoryTimeout, Code: CodeDeadlineExceeded}
	ErrPoolSaturated            = &Error{Category: CategoryPool, Code: CodePoolSaturated}
	ErrPoolNotFound             = &Error{Category: CategoryPool, Code: CodePoolNotFound}
	ErrPoolNotInitialized       = &Error{Category: CategoryPool, Code: CodePoolNotInitialized}
	ErrNoWorkers                = &Error{Category: CategoryPool, Code: CodeNoWorkers}
	ErrWorkerBusy               = &Error{Category: CategoryPool, Code: CodeWorkerBusy}
	ErrSessionWorkerUnavailable = &Error{Category: CategoryPool, Code: CodeSessionWorkerUnavailable}
	ErrWorkerExit               = &Error{Category: CategoryWorker, Code: CodeWorkerExit}
	ErrWorkerStartFailed        = &Error{Category: CategoryWorker, Code: CodeWorkerStartFailed}
	ErrPythonException          = &Error{Category: CategoryPythonError, Code: CodePythonException}
	ErrToolNotFound             = &Error{Category: CategoryValidation, Code: CodeToolNotFound}
	ErrInvalidArgument          = &Error{Category: CategoryValidation, Code: CodeInvalidArgument}
	ErrCancelled                = &Error{Category: CategoryCancelled, Code: CodeCancelled}
	ErrShutdown                 = &Error{Category: CategoryShutdown, Code: CodeShutdown}
	ErrCircuitOpen              = &Error{Category: CategoryPool, Code: CodeCircuitOpen}
	ErrSessionNotFound          = &Error{Category: CategorySession, Code: CodeSessionNotFound}
	ErrSessionQuotaExceeded     = &Error{Category: CategorySession, Code: CodeSessionQuotaExceeded}

	// ErrTimeout matches every error of the timeout category.
	ErrTimeout = &Error{Category: CategoryTimeout}
	// ErrValidation matches every error of the validation category.
	ErrValidation = &Error{Category: CategoryValidation}
)

// FromContext turns a context's error into a structured one: a passed
// deadline is deadline_exceeded, a cancel is cancelled. It unwraps to err.
func FromContext(err error) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return Wrap(CodeDeadlineExceeded, err, "deadline exceeded")
	}
	return Wrap(CodeCancelled, err, "cancelled")
}
