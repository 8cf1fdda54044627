"""W3C trace context through a tool: parse, the tool span, what host-tool calls carry on."""

from __future__ import annotations

import pytest

from conftest import call
from snakepit_bridge import tracing

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize("value, want", [
    (PARENT, ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", True)),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", False)),
    ("", None),
    ("garbage", None),
    ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),  # an all-zero trace id is invalid
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
    ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),  # version ff is invalid
])
def test_parse_traceparent(value, want):
    assert tracing.parse_traceparent(value) == want


def test_a_tool_span_is_a_child_on_the_same_trace():
    assert tracing.outgoing_metadata() == {}
    token = tracing.start("tool x", {"traceparent": PARENT}, tool="x")
    span = tracing.current()
    assert span is not None and span.parent_id == "00f067aa0ba902b7"
    assert span.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and len(span.span_id) == 16
    assert tracing.outgoing_metadata() == {"traceparent": f"00-{span.trace_id}-{span.span_id}-01"}
    tracing.finish(token, ok=True)
    assert tracing.current() is None
    assert tracing.recorder.spans()[-1] is span and span.ok and span.end >= span.start
    assert tracing.start("tool y", {}) is None, "an untraced call has no span"


def test_a_traced_call_records_its_span(shared_worker):
    # A real worker: the tool span lives in the worker process; what the
    # tool sees of it comes back in its result.
    got = call(shared_worker.stub, "trace_info", metadata={"traceparent": PARENT})
    assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert got["parent_id"] == "00f067aa0ba902b7"
    assert got["span_id"] != "00f067aa0ba902b7"
    assert call(shared_worker.stub, "trace_info") is None, "no traceparent: no span"
