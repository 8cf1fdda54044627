package snakepit

import "github.com/snakepit-go/snakepit/internal/sperr"

// Error is snakepit's structured error: Category says what kind of thing
// failed, Code exactly what; PythonType and PythonTraceback are set when a
// tool raised. Match it with errors.As, or a sentinel with errors.Is.
type Error = sperr.Error

// Category groups errors (worker, timeout, python_error, grpc_error,
// validation, pool, cancelled, shutdown).
type Category = sperr.Category

// Categories.
const (
	CategoryWorker      = sperr.CategoryWorker
	CategoryTimeout     = sperr.CategoryTimeout
	CategoryPythonError = sperr.CategoryPythonError
	CategoryGRPCError   = sperr.CategoryGRPCError
	CategoryValidation  = sperr.CategoryValidation
	CategoryPool        = sperr.CategoryPool
	CategoryCancelled   = sperr.CategoryCancelled
	CategoryShutdown    = sperr.CategoryShutdown
	CategorySession     = sperr.CategorySession
)

// Codes.
const (
	CodeQueueTimeout             = sperr.CodeQueueTimeout
	CodeDeadlineExceeded         = sperr.CodeDeadlineExceeded
	CodePoolSaturated            = sperr.CodePoolSaturated
	CodePoolNotFound             = sperr.CodePoolNotFound
	CodePoolNotInitialized       = sperr.CodePoolNotInitialized
	CodeNoWorkers                = sperr.CodeNoWorkers
	CodeWorkerBusy               = sperr.CodeWorkerBusy
	CodeSessionWorkerUnavailable = sperr.CodeSessionWorkerUnavailable
	CodeWorkerExit               = sperr.CodeWorkerExit
	CodeWorkerStartFailed        = sperr.CodeWorkerStartFailed
	CodePythonException          = sperr.CodePythonException
	CodeToolNotFound             = sperr.CodeToolNotFound
	CodeInvalidArgument          = sperr.CodeInvalidArgument
	CodeStreamingMismatch        = sperr.CodeStreamingMismatch
	CodeGRPC                     = sperr.CodeGRPC
	CodeCancelled                = sperr.CodeCancelled
	CodeShutdown                 = sperr.CodeShutdown
	CodeInternal                 = sperr.CodeInternal
	CodeCircuitOpen              = sperr.CodeCircuitOpen
	CodeSessionNotFound          = sperr.CodeSessionNotFound
	CodeSessionQuotaExceeded     = sperr.CodeSessionQuotaExceeded
)

// Sentinels for errors.Is: each matches every Error with its code (ErrTimeout
// and ErrValidation match a whole category).
var (
	ErrQueueTimeout             = sperr.ErrQueueTimeout
	ErrDeadlineExceeded         = sperr.ErrDeadlineExceeded
	ErrPoolSaturated            = sperr.ErrPoolSaturated
	ErrPoolNotFound             = sperr.ErrPoolNotFound
	ErrPoolNotInitialized       = sperr.ErrPoolNotInitialized
	ErrNoWorkers                = sperr.ErrNoWorkers
	ErrWorkerBusy               = sperr.ErrWorkerBusy
	ErrSessionWorkerUnavailable = sperr.ErrSessionWorkerUnavailable
	ErrWorkerExit               = sperr.ErrWorkerExit
	ErrWorkerStartFailed        = sperr.ErrWorkerStartFailed
	ErrPythonException          = sperr.ErrPythonException
	ErrToolNotFound             = sperr.ErrToolNotFound
	ErrInvalidArgument          = sperr.ErrInvalidArgument
	ErrCancelled                = sperr.ErrCancelled
	ErrShutdown                 = sperr.ErrShutdown
	ErrCircuitOpen              = sperr.ErrCircuitOpen
	ErrSessionNotFound          = sperr.ErrSessionNotFound
	ErrSessionQuotaExceeded     = sperr.ErrSessionQuotaExceeded
	ErrTimeout                  = sperr.ErrTimeout
	ErrValidation               = sperr.ErrValidation
)

// ErrorFromProto returns the Error a pool reply (poolpb.Result.Error or
// poolpb.Chunk.Error) carries, for actors that talk to pools directly.
var ErrorFromProto = sperr.FromProto
