"""W3C trace context for tool calls: the host's trace goes on through the tool and its host-tool calls.

A call whose request metadata carries ``traceparent`` (the Go host sends it
when the caller is traced) runs inside a *tool span*: a new span id whose
parent is the host's span, on the same trace. :func:`current` is that span
while the tool runs; the tool's calls back into host tools carry its
``traceparent``, so the host's span for a host tool is the tool span's
child: one trace from the Go caller through Python to the host tool.

Finished tool spans are kept in :data:`recorder` (the last 256), for tests
and debugging. Exporting them to a collector needs the OpenTelemetry SDK,
which this module does not use.
"""

from __future__ import annotations

import contextvars
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass
class Span:
    """A tool span: ids in W3C hex, times from :func:`time.time`."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    sampled: bool = True
    start: float = field(default_factory=time.time)
    end: Optional[float] = None
    ok: Optional[bool] = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def traceparent(self) -> str:
        """This span as the ``traceparent`` of a call it makes."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


def parse_traceparent(value: str) -> Optional[tuple[str, str, bool]]:
    """(trace id, parent span id, sampled) of a valid ``traceparent``, else None."""
    m = _TRACEPARENT.match(value.strip().lower()) if value else None
    if m is None or m.group(1) == "ff" or set(m.group(2)) == {"0"} or set(m.group(3)) == {"0"}:
        return None
    return m.group(2), m.group(3), bool(int(m.group(4), 16) & 1)


class SpanRecorder:
    """Keeps the last finished spans (thread-safe)."""

    def __init__(self, keep: int = 256) -> None:
        self._spans: deque[Span] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def add(self, span: Span) -> None:
        with self._lock:
            self._spans.append(span)

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()


recorder = SpanRecorder()
_current: contextvars.ContextVar[Optional[Span]] = contextvars.ContextVar("snakepit_tool_span", default=None)


def current() -> Optional[Span]:
    """The tool span of the call this code runs in (None when the call is not traced)."""
    return _current.get()


def start(name: str, metadata: dict[str, str], **attributes: Any) -> Optional[contextvars.Token[Optional[Span]]]:
    """Starts the tool span of a call whose metadata carries a valid ``traceparent``; None otherwise."""
    parsed = parse_traceparent(metadata.get("traceparent", ""))
    if parsed is None:
        return None
    trace_id, parent_id, sampled = parsed
    span = Span(trace_id=trace_id, span_id=secrets.token_hex(8), parent_id=parent_id, name=name, sampled=sampled,
                attributes=attributes)
    return _current.set(span)


def finish(token: Optional[contextvars.Token[Optional[Span]]], ok: bool) -> None:
    """Ends the span :func:`start` began (nothing for None)."""
    if token is None:
        return
    span = _current.get()
    _current.reset(token)
    if span is not None:
        span.end, span.ok = time.time(), ok
        recorder.add(span)


def outgoing_metadata() -> dict[str, str]:
    """The trace context for a call the current tool makes (empty outside a traced call)."""
    span = _current.get()
    return {"traceparent": span.traceparent()} if span is not None else {}
