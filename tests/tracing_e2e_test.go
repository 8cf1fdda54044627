//go:build unix

package tests

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	snakepit "github.com/snakepit-go/snakepit/apps/snakepit"
)

// One trace across a Go call, its Python tool and a host tool that tool
// calls: the Go client span (in-memory exporter) is the parent of the tool
// span (which the tool reports from the bridge's recorder), whose id is the
// parent of the host tool's server span (in-memory exporter again), all on
// one trace id; the host tool's handler runs in that trace too.
func TestOneTraceAcrossGoPythonAndAHostTool(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	app := startApp(t, snakepit.Config{DataDir: t.TempDir(), InstanceName: uniqueInstance("trace"),
		TracerProvider: tp, Pools: []snakepit.PoolConfig{{Name: "tr", Size: 1}}})
	var handlerTrace trace.SpanContext
	require.NoError(t, app.RegisterTool(snakepit.ToolSpec{Name: "lookup"}, func(ctx context.Context, call *snakepit.ToolCall) (any, error) {
		handlerTrace = trace.SpanContextFromContext(ctx)
		return "found", nil
	}))

	res, err := app.Execute(t.Context(), "trace_info", map[string]any{"then": "lookup"}, snakepit.WithPool("tr"),
		snakepit.WithSession("s-trace"))
	require.NoError(t, err)
	var py struct {
		TraceID  string `json:"trace_id"`
		SpanID   string `json:"span_id"`
		ParentID string `json:"parent_id"`
		Host     string `json:"host"`
	}
	require.NoError(t, res.Decode(&py))
	assert.Equal(t, "found", py.Host)

	spans := exp.GetSpans()
	var client, server *tracetest.SpanStub
	for i := range spans {
		switch spans[i].Name {
		case "snakepit.execute trace_info":
			client = &spans[i]
		case "snakepit.host_tool lookup":
			server = &spans[i]
		}
	}
	require.NotNil(t, client, "the Go call's span")
	require.NotNil(t, server, "the host tool's span")
	traceID := client.SpanContext.TraceID().String()
	t.Logf("trace %s\n  %s span %s (Go, %s)\n    tool trace_info span %s (Python, parent %s)\n      %s span %s (Go, parent %s)",
		traceID, client.Name, client.SpanContext.SpanID(), client.SpanKind, py.SpanID, py.ParentID,
		server.Name, server.SpanContext.SpanID(), server.Parent.SpanID())
	assert.Equal(t, traceID, py.TraceID, "the Python tool runs in the Go call's trace")
	assert.Equal(t, client.SpanContext.SpanID().String(), py.ParentID, "the tool span is the Go span's child")
	assert.Equal(t, traceID, server.SpanContext.TraceID().String(), "the host tool runs in the same trace")
	assert.Equal(t, py.SpanID, server.Parent.SpanID().String(), "the host tool span is the Python tool span's child")
	assert.True(t, server.Parent.IsRemote())
	assert.Equal(t, server.SpanContext.SpanID(), handlerTrace.SpanID(), "the handler's context carries its span")
	assert.Equal(t, trace.SpanKindClient, client.SpanKind)
}
