"""Telemetry: the bounded buffer, host controls, and StreamTelemetry over real gRPC."""

from __future__ import annotations

import queue
import threading

import pytest

from conftest import EDGE, call, start_worker
from snakepit_bridge import snakepit_bridge_pb2 as pb2
from snakepit_bridge.telemetry import TelemetryHub, span


def names(hub: TelemetryHub) -> list[str]:
    return [".".join(e.event_parts) for e in hub._take()]


def test_buffer_is_bounded_and_counts_drops():
    hub = TelemetryHub(capacity=3)
    results = [hub.emit(f"e.{i}") for i in range(5)]
    assert results == [True, True, True, False, False] and hub.dropped == 2
    assert names(hub) == ["e.0", "e.1", "e.2"]


def test_controls_toggle_filter_and_sampling():
    hub = TelemetryHub()
    hub.control(pb2.TelemetryControl(toggle=pb2.TelemetryToggle(enabled=False)))
    assert not hub.emit("a.b")
    hub.control(pb2.TelemetryControl(toggle=pb2.TelemetryToggle(enabled=True)))
    hub.control(pb2.TelemetryControl(filter=pb2.TelemetryEventFilter(allow=["tool.*", "py.*"], deny=["py.gc.*"])))
    for name in ("tool.execution.stop", "py.gc.completed", "py.memory.sampled", "other.x"):
        hub.emit(name)
    assert names(hub) == ["tool.execution.stop", "py.memory.sampled"]
    hub.control(pb2.TelemetryControl(filter=pb2.TelemetryEventFilter()))
    hub.control(pb2.TelemetryControl(sampling=pb2.TelemetrySamplingUpdate(sampling_rate=-3, event_patterns=["noisy.*"])))
    assert hub.sampling_rate == 0.0  # clamped to [0, 1]
    for name in ("noisy.a", "quiet.a"):
        hub.emit(name)
    assert names(hub) == ["quiet.a"]


def test_measurement_kinds_and_span():
    import snakepit_bridge.telemetry as t

    saved, t.hub = t.hub, TelemetryHub()
    try:
        with pytest.raises(KeyError):
            with span("work", {"job": "j1"}):
                raise KeyError("x")
        t.emit(["custom", "kinds"], {"i": 3, "f": 0.5, "s": "txt", "b": True})
        events = t.hub._take()
        assert [".".join(e.event_parts) for e in events] == ["work.start", "work.exception", "custom.kinds"]
        assert events[1].metadata["error_type"] == "KeyError" and events[1].metadata["job"] == "j1"
        m = events[2].measurements
        assert (m["i"].int_value, m["f"].float_value, m["s"].string_value, m["b"].int_value) == (3, 0.5, "txt", 1)
    finally:
        t.hub = saved


def test_emit_from_many_threads():
    hub = TelemetryHub(capacity=10_000)
    threads = [threading.Thread(target=lambda: [hub.emit("t.e") for _ in range(500)]) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(hub._take()) == 4000 and hub.dropped == 0


def test_stream_telemetry_over_grpc():
    with start_worker(EDGE) as w:
        assert call(w.stub, "emit_event", name="early.event", value=2.0)  # before any stream: buffered
        controls: queue.Queue = queue.Queue()

        def control_messages():
            while (item := controls.get()) is not None:
                yield item

        stream = w.stub.StreamTelemetry(control_messages(), timeout=30)
        try:
            first = next(stream)
            assert ".".join(first.event_parts) == "early.event"
            assert first.measurements["value"].float_value == 2.0 and first.metadata["source"] == "edge"
            call(w.stub, "init_count", metadata={"correlation_id": "corr-1"})
            stop = next(stream)
            assert ".".join(stop.event_parts) == "tool.execution.stop"
            assert stop.metadata["tool_name"] == "init_count" and stop.correlation_id == "corr-1"
            assert stop.measurements["duration_ms"].float_value >= 0

            def round_trip(i: int) -> list[str]:
                """Runs a tool and emits marker i; returns the events up to the marker."""
                call(w.stub, "init_count")
                call(w.stub, "emit_event", name=f"marker.{i}")
                seen = []
                while not seen or seen[-1] != f"marker.{i}":
                    seen.append(".".join(next(stream).event_parts))
                return seen

            assert "tool.execution.stop" in round_trip(0)
            controls.put(pb2.TelemetryControl(filter=pb2.TelemetryEventFilter(deny=["tool.*"])))
            # The control is applied asynchronously; once a round shows no tool.* event, none follow.
            rounds = [round_trip(i) for i in range(1, 3)]
            i = 3
            while any(e.startswith("tool.") for e in rounds[-1]) and i < 50:
                rounds.append(round_trip(i))
                i += 1
            assert round_trip(i) == [f"marker.{i}"]
        finally:
            controls.put(None)
            stream.cancel()


def test_configure_from_env_sets_the_first_filters():
    from snakepit_bridge import telemetry as tel

    hub = tel.hub
    saved = (hub.allow, hub.deny, hub.sampling_rate, hub.sampling_patterns)
    try:
        tel.configure_from_env({tel.CONFIG_ENV: '{"allow": ["tool.*"], "deny": ["tool.execution.exception"], '
                                                '"sampling_rate": 0.5, "sampling_patterns": ["tool.*"]}'})
        assert hub.allow == ["tool.*"] and hub.deny == ["tool.execution.exception"]
        assert hub.sampling_rate == 0.5 and hub.sampling_patterns == ["tool.*"]
        tel.configure_from_env({})  # unset: unchanged
        assert hub.allow == ["tool.*"]
    finally:
        hub.allow, hub.deny, hub.sampling_rate, hub.sampling_patterns = saved
