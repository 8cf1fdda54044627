package sperr

import (
	"errors"

	"google.golang.org/grpc/codes"

	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// ToProto returns the wire form of err for a pool reply. A plain error
// becomes an internal error with its text; context errors keep their meaning.
func ToProto(err error) *poolpb.Error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		e = Wrap(CodeInternal, err, "%v", err)
	}
	return &poolpb.Error{
		Category:         string(e.Category),
		Code:             e.Code,
		Message:          e.Message,
		Details:          e.Details,
		PythonType:       e.PythonType,
		PythonTraceback:  e.PythonTraceback,
		GrpcCode:         int32(e.GRPCCode),
		WorkerId:         e.WorkerID,
		Pool:             e.Pool,
		PythonBases:      e.PythonBases,
		PythonStacktrace: e.PythonStacktrace,
		PythonContext:    e.PythonContext,
		Suggestion:       e.Suggestion,
	}
}

// FromProto returns the Error a pool reply carries (nil for nil).
func FromProto(p *poolpb.Error) *Error {
	if p == nil {
		return nil
	}
	cat := Category(p.GetCategory())
	if cat == "" {
		cat = CategoryOf(p.GetCode())
	}
	return &Error{
		Category:         cat,
		Code:             p.GetCode(),
		Message:          p.GetMessage(),
		Details:          p.GetDetails(),
		PythonType:       p.GetPythonType(),
		PythonTraceback:  p.GetPythonTraceback(),
		GRPCCode:         codes.Code(p.GetGrpcCode()),
		WorkerID:         p.GetWorkerId(),
		Pool:             p.GetPool(),
		PythonBases:      p.GetPythonBases(),
		PythonStacktrace: p.GetPythonStacktrace(),
		PythonContext:    p.GetPythonContext(),
		Suggestion:       p.GetSuggestion(),
	}
}
