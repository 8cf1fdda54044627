package snakepit

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/snakepit-go/snakepit/proto/poolpb"
)

// traceContext is the W3C propagator (traceparent, tracestate).
var traceContext = propagation.TraceContext{}

// startSpan starts the client span of a call when the App has a tracer,
// and puts the trace context the call runs in (that span's, else the
// caller's own, when its context is traced) into the request's metadata,
// which the worker reads. With neither it does nothing. end records the
// call's outcome.
func (a *App) startSpan(ctx context.Context, req *poolpb.Execute, poolName string) (_ context.Context, end func(error)) {
	end = func(error) {}
	if a.tracer != nil {
		var span trace.Span
		ctx, span = a.tracer.Start(ctx, "snakepit.execute "+req.GetTool(), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("snakepit.pool", poolName), attribute.String("snakepit.tool", req.GetTool()),
				attribute.String("snakepit.correlation_id", req.GetCorrelationId()), attribute.Bool("snakepit.stream", req.GetStream())))
		end = func(err error) {
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}
	}
	injectTrace(ctx, req)
	return ctx, end
}

// injectTrace puts the trace context of ctx, when it is traced, into the
// request's metadata (traceparent, tracestate), which the worker reads.
func injectTrace(ctx context.Context, req *poolpb.Execute) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	md := maps.Clone(req.GetMetadata()) // the caller's map (WithMetadata) is not ours to change
	if md == nil {
		md = make(map[string]string, 2)
	}
	traceContext.Inject(ctx, propagation.MapCarrier(md))
	req.Metadata = md
}
