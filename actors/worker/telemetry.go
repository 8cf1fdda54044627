package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/snakepit-go/snakepit/proto/bridgepb"
)

// TelemetryConfig turns on the worker's Python telemetry stream
// (StreamTelemetry, upstream's): the events its bridge and adapter emit,
// filtered and sampled on the Python side.
type TelemetryConfig struct {
	Enabled bool
	// Allow and Deny are glob patterns on the dotted event name
	// ("tool.execution.*"); an event must match an Allow (when any is
	// given) and no Deny.
	Allow, Deny []string
	// SamplingRate in (0, 1) keeps that share of the events (of those
	// matching SamplingPatterns, when given); 0 or 1 keeps all.
	SamplingRate     float64
	SamplingPatterns []string
	// OnEvent receives each event, on the stream's goroutine.
	OnEvent func(TelemetryEvent)
}

// TelemetryEvent is one event of a worker's Python telemetry.
type TelemetryEvent struct {
	Pool, WorkerID string
	Generation     uint64
	Name           string // the dotted event name ("tool.execution.stop")
	Measurements   map[string]any
	Metadata       map[string]string
	CorrelationID  string
	At             time.Time
}

// telemetryEnv is SNAKEPIT_TELEMETRY: the filters and sampling the worker
// applies from its first event.
func telemetryEnv(cfg TelemetryConfig) string {
	b, _ := json.Marshal(map[string]any{"allow": cfg.Allow, "deny": cfg.Deny, "sampling_rate": cfg.SamplingRate,
		"sampling_patterns": cfg.SamplingPatterns})
	return string(b)
}

// openTelemetryHeaders opens a worker's telemetry stream for as long as
// streamCtx lives and waits, until waitCtx ends, for its headers: the
// worker sends them once the stream is attached, so no event of a call
// made after this returns is missed.
func openTelemetryHeaders(waitCtx, streamCtx context.Context, client bridgepb.BridgeServiceClient) (bridgepb.BridgeService_StreamTelemetryClient, error) {
	stream, err := client.StreamTelemetry(streamCtx)
	if err != nil {
		return nil, err
	}
	got := make(chan error, 1)
	go func() {
		_, err := stream.Header()
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			return nil, err
		}
		return stream, nil
	case <-waitCtx.Done():
		return nil, waitCtx.Err() // the caller cancels streamCtx, which ends Header too
	}
}

// readTelemetry hands a worker's telemetry to cfg.OnEvent until the stream
// ends (its context is cancelled or the worker's connection closes).
func readTelemetry(ctx context.Context, stream bridgepb.BridgeService_StreamTelemetryClient, cfg TelemetryConfig,
	pool, workerID string, gen uint64, log *slog.Logger) {
	for {
		ev, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil && status.Code(err) != codes.Canceled && status.Code(err) != codes.Unavailable {
				log.Debug("telemetry stream ended", "error", err)
			}
			return
		}
		if cfg.OnEvent != nil {
			cfg.OnEvent(telemetryEvent(ev, pool, workerID, gen))
		}
	}
}

func telemetryEvent(ev *bridgepb.TelemetryEvent, pool, workerID string, gen uint64) TelemetryEvent {
	out := TelemetryEvent{Pool: pool, WorkerID: workerID, Generation: gen, Name: strings.Join(ev.GetEventParts(), "."),
		Metadata: ev.GetMetadata(), CorrelationID: ev.GetCorrelationId(), At: time.Unix(0, ev.GetTimestampNs())}
	if len(ev.GetMeasurements()) > 0 {
		out.Measurements = make(map[string]any, len(ev.GetMeasurements()))
		for k, v := range ev.GetMeasurements() {
			switch x := v.GetValue().(type) {
			case *bridgepb.TelemetryValue_IntValue:
				out.Measurements[k] = x.IntValue
			case *bridgepb.TelemetryValue_FloatValue:
				out.Measurements[k] = x.FloatValue
			case *bridgepb.TelemetryValue_StringValue:
				out.Measurements[k] = x.StringValue
			}
		}
	}
	return out
}
