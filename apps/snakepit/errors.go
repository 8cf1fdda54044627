package snakepit

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/snakepit-go/snakepit/internal/sperr"
	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// Error is snakepit's structured error (it encodes as JSON with the
// snake_case names of the protocol's error payload): Category says what kind of thing
// failed, Code exactly what; PythonType and PythonTraceback are set when a
// tool raised. Every error the App returns that is about a call, a pool or
// a session is one (match it with errors.As, or a sentinel with errors.Is);
// a host tool handler may return one to choose what the calling worker sees.
type Error struct {
	Category Category `json:"category"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	// Details holds extra facts: exit_code, signal, last_output, queue_size, …
	Details map[string]string `json:"details,omitempty"`
	// PythonType and PythonTraceback are set when a tool raised;
	// PythonBases are its class and bases, nearest first (so errors.Is
	// with ErrLookupError matches a KeyError); PythonStacktrace the frames
	// ("file:line in fn", innermost last); PythonContext what the bridge
	// reported with it (tool_name, session_id, function, call_type, ...).
	PythonType       string            `json:"python_type,omitempty"`
	PythonTraceback  string            `json:"python_traceback,omitempty"`
	PythonBases      []string          `json:"python_bases,omitempty"`
	PythonStacktrace []string          `json:"python_stacktrace,omitempty"`
	PythonContext    map[string]string `json:"python_context,omitempty"`
	// Suggestion says what to try, for the errors the host recognises
	// (CodeShapeMismatch, CodeDTypeMismatch, CodeDeviceMismatch,
	// CodeOutOfMemory); the figures it read are in Details.
	Suggestion string `json:"suggestion,omitempty"`
	// GRPCCode is the status code of the failed worker call (codes.OK if none).
	GRPCCode codes.Code `json:"grpc_code,omitempty"`
	WorkerID string     `json:"worker_id,omitempty"`
	Pool     string     `json:"pool,omitempty"`

	cause error
}

// NewError returns an Error with code's category and message.
func NewError(code, message string) *Error {
	return &Error{Category: Category(sperr.CategoryOf(code)), Code: code, Message: message}
}

// Error formats the error as "snakepit <category>/<code> [pool worker]:
// python type: message (details)".
func (e *Error) Error() string { return e.internal().Error() }

// Unwrap returns the underlying cause, if any (a context's error, say).
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is a sentinel with the same code (or a code
// e refines: a shape_mismatch is a python_exception), or, for a sentinel
// with only a Python type (ErrKeyError, PythonType("MyError")), an
// exception of that class or a subclass of it, or, for a sentinel with only
// a category, the same category: errors.Is(err, ErrQueueTimeout) matches
// any queue-timeout error, errors.Is(err, ErrLookupError) a KeyError.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return sperr.Matches(t.Code, string(t.Category), t.PythonType, e.Code, string(e.Category), e.PythonType, e.PythonBases)
}

// Category groups errors by what failed.
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

// Codes say exactly what happened; each belongs to one category.
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

	// Errors a tool raised that the host recognised from their message,
	// with a Suggestion; each refines python_exception.
	CodeShapeMismatch  = "shape_mismatch"  // shapes that do not fit (numpy, torch)
	CodeDTypeMismatch  = "dtype_mismatch"  // an input of the wrong dtype
	CodeDeviceMismatch = "device_mismatch" // tensors on different devices (cuda:0 and cpu)
	CodeOutOfMemory    = "out_of_memory"   // CUDA out of memory (Details device=cuda:N), or MemoryError (device=cpu)
)

// Sentinels for errors.Is. They carry only a code (or only a category).
var (
	ErrQueueTimeout             = sentinel(CodeQueueTimeout)
	ErrDeadlineExceeded         = sentinel(CodeDeadlineExceeded)
	ErrPoolSaturated            = sentinel(CodePoolSaturated)
	ErrPoolNotFound             = sentinel(CodePoolNotFound)
	ErrPoolNotInitialized       = sentinel(CodePoolNotInitialized)
	ErrNoWorkers                = sentinel(CodeNoWorkers)
	ErrWorkerBusy               = sentinel(CodeWorkerBusy)
	ErrSessionWorkerUnavailable = sentinel(CodeSessionWorkerUnavailable)
	ErrWorkerExit               = sentinel(CodeWorkerExit)
	ErrWorkerStartFailed        = sentinel(CodeWorkerStartFailed)
	ErrPythonException          = sentinel(CodePythonException)
	ErrToolNotFound             = sentinel(CodeToolNotFound)
	ErrInvalidArgument          = sentinel(CodeInvalidArgument)
	ErrCancelled                = sentinel(CodeCancelled)
	ErrShutdown                 = sentinel(CodeShutdown)
	ErrCircuitOpen              = sentinel(CodeCircuitOpen)
	ErrSessionNotFound          = sentinel(CodeSessionNotFound)
	ErrSessionQuotaExceeded     = sentinel(CodeSessionQuotaExceeded)
	// ErrNodeDown: the node running the call was lost (killed, hung or
	// unreachable); the call may or may not have run there.
	ErrNodeDown = sentinel(CodeNodeDown)
	// The recognised tool errors (each also matches ErrPythonException).
	ErrShapeMismatch  = sentinel(CodeShapeMismatch)
	ErrDTypeMismatch  = sentinel(CodeDTypeMismatch)
	ErrDeviceMismatch = sentinel(CodeDeviceMismatch)
	ErrOutOfMemory    = sentinel(CodeOutOfMemory)

	// Python exception classes, matched by class or subclass (the bridge
	// reports each exception's bases): errors.Is(err, ErrKeyError).
	ErrValueError          = PythonType("ValueError")
	ErrKeyError            = PythonType("KeyError")
	ErrIndexError          = PythonType("IndexError")
	ErrLookupError         = PythonType("LookupError")
	ErrTypeError           = PythonType("TypeError")
	ErrAttributeError      = PythonType("AttributeError")
	ErrRuntimeError        = PythonType("RuntimeError")
	ErrNotImplementedError = PythonType("NotImplementedError")
	ErrTimeoutError        = PythonType("TimeoutError")
	ErrMemoryError         = PythonType("MemoryError")
	ErrArithmeticError     = PythonType("ArithmeticError")
	ErrZeroDivisionError   = PythonType("ZeroDivisionError")
	ErrOSError             = PythonType("OSError")
	ErrFileNotFoundError   = PythonType("FileNotFoundError")
	ErrPermissionError     = PythonType("PermissionError")
	ErrImportError         = PythonType("ImportError")
	ErrAssertionError      = PythonType("AssertionError")

	// ErrTimeout matches every error of the timeout category.
	ErrTimeout = &Error{Category: CategoryTimeout}
	// ErrValidation matches every error of the validation category.
	ErrValidation = &Error{Category: CategoryValidation}
)

// PythonType returns a sentinel that matches, with errors.Is, an exception
// of the named Python class or of any subclass of it.
func PythonType(name string) *Error { return &Error{PythonType: name} }

func sentinel(code string) *Error {
	return &Error{Category: Category(sperr.CategoryOf(code)), Code: code}
}

// fromInternal is the public Error for an actor's.
func fromInternal(e *sperr.Error) *Error {
	if e == nil {
		return nil
	}
	return &Error{Category: Category(e.Category), Code: e.Code, Message: e.Message, Details: e.Details,
		PythonType: e.PythonType, PythonTraceback: e.PythonTraceback, PythonBases: e.PythonBases,
		PythonStacktrace: e.PythonStacktrace, PythonContext: e.PythonContext, Suggestion: e.Suggestion,
		GRPCCode: e.GRPCCode, WorkerID: e.WorkerID, Pool: e.Pool, cause: e.Unwrap()}
}

// internal is e as the actors carry it.
func (e *Error) internal() *sperr.Error {
	out := sperr.Wrap(e.Code, e.cause, "%s", e.Message)
	out.Category, out.Details = sperr.Category(e.Category), e.Details
	out.PythonType, out.PythonTraceback, out.GRPCCode = e.PythonType, e.PythonTraceback, e.GRPCCode
	out.PythonBases, out.PythonStacktrace, out.PythonContext, out.Suggestion = e.PythonBases, e.PythonStacktrace, e.PythonContext, e.Suggestion
	out.WorkerID, out.Pool = e.WorkerID, e.Pool
	return out
}

// public turns the actors' structured errors in err into the package's
// own: a *sperr.Error becomes an *Error; one wrapped deeper keeps err's
// message and unwraps to its public form. Other errors pass unchanged.
func public(err error) error {
	if err == nil {
		return nil
	}
	var se *sperr.Error
	if !errors.As(err, &se) {
		return err
	}
	if err == error(se) {
		return fromInternal(se)
	}
	return &wrapped{msg: err.Error(), err: fromInternal(se)}
}

// toInternal is the reverse, for errors a host tool handler returns.
func toInternal(err error) error {
	var pe *Error
	if err != nil && errors.As(err, &pe) {
		return pe.internal()
	}
	return err
}

type wrapped struct {
	msg string
	err *Error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// ErrorFromProto returns the Error a pool reply (poolpb.Result.Error or
// poolpb.Chunk.Error) carries, for actors that talk to pools directly; nil
// when it carries none.
func ErrorFromProto(p *poolpb.Error) *Error { return fromInternal(sperr.FromProto(p)) }
