"""Telemetry events from the worker to the host over ``StreamTelemetry``.

Adapters call :func:`emit` (or use :func:`span`) from any thread; events wait
in a bounded buffer (1024 events; when full, new events are dropped and
counted) until the host's stream takes them, so events emitted before the
stream attaches are not lost. The host steers the stream with control
messages: on/off (``toggle``), a sampling rate in [0, 1] optionally limited
to some event patterns (``sampling``), and allow/deny glob filters
(``filter``) on the dotted event name. The worker itself emits
``tool.execution.stop`` / ``tool.execution.exception`` for every tool call
while a stream is attached.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import contextlib
import fnmatch
import random
import threading
import time
from typing import Any, Iterator, Optional, Sequence, Union

from . import snakepit_bridge_pb2 as pb2

MAX_BUFFERED = 1024

Measurement = Union[int, float, str]


def _value(v: Measurement) -> pb2.TelemetryValue:
    if isinstance(v, bool):
        return pb2.TelemetryValue(int_value=int(v))
    if isinstance(v, int):
        return pb2.TelemetryValue(int_value=v)
    if isinstance(v, float):
        return pb2.TelemetryValue(float_value=v)
    return pb2.TelemetryValue(string_value=str(v))


class TelemetryHub:
    """The worker's event buffer and the stream controls (one per process)."""

    def __init__(self, capacity: int = MAX_BUFFERED) -> None:
        self._lock = threading.Lock()
        self._events: collections.deque[pb2.TelemetryEvent] = collections.deque()
        self._capacity = capacity
        self.dropped = 0
        self.enabled = True
        self.sampling_rate = 1.0
        self.sampling_patterns: list[str] = []
        self.allow: list[str] = []
        self.deny: list[str] = []
        self.attached = 0
        self._wakeup: Optional[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = None

    # -- producing -----------------------------------------------------------------
    def _admits(self, name: str) -> bool:
        if not self.enabled:
            return False
        if self.allow and not any(fnmatch.fnmatchcase(name, p) for p in self.allow):
            return False
        if any(fnmatch.fnmatchcase(name, p) for p in self.deny):
            return False
        if self.sampling_rate < 1.0:
            sampled = not self.sampling_patterns or any(
                fnmatch.fnmatchcase(name, p) for p in self.sampling_patterns)
            if sampled and random.random() >= self.sampling_rate:
                return False
        return True

    def emit(
        self,
        event: Union[str, Sequence[str]],
        measurements: Optional[dict[str, Measurement]] = None,
        metadata: Optional[dict[str, Any]] = None,
        correlation_id: str = "",
    ) -> bool:
        """Buffers one event; returns False if it was filtered out or dropped."""
        parts = event.split(".") if isinstance(event, str) else [str(p) for p in event]
        name = ".".join(parts)
        with self._lock:
            if not self._admits(name):
                return False
            if len(self._events) >= self._capacity:
                self.dropped += 1
                return False
            self._events.append(pb2.TelemetryEvent(
                event_parts=parts,
                measurements={k: _value(v) for k, v in (measurements or {}).items()},
                metadata={str(k): str(v) for k, v in (metadata or {}).items()},
                timestamp_ns=time.time_ns(),
                correlation_id=correlation_id,
            ))
            wakeup = self._wakeup
        if wakeup is not None:
            loop, ready = wakeup
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:  # loop closed during shutdown
                pass
        return True

    # -- consuming -----------------------------------------------------------------
    def control(self, message: pb2.TelemetryControl) -> None:
        """Applies one control message from the host."""
        with self._lock:
            kind = message.WhichOneof("control")
            if kind == "toggle":
                self.enabled = message.toggle.enabled
            elif kind == "sampling":
                self.sampling_rate = min(1.0, max(0.0, message.sampling.sampling_rate))
                self.sampling_patterns = list(message.sampling.event_patterns)
            elif kind == "filter":
                self.allow = list(message.filter.allow)
                self.deny = list(message.filter.deny)

    def _take(self) -> list[pb2.TelemetryEvent]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    def attach(self) -> asyncio.Event:
        """Counts a stream as attached (events are built from now on); returns its wake-up event.

        :meth:`stream` attaches itself unless given what this returned, so a
        servicer can attach before it answers the stream's headers: a host
        that has the headers knows no event is missed from then on.
        """
        ready = asyncio.Event()
        with self._lock:
            self._wakeup = (asyncio.get_running_loop(), ready)
            self.attached += 1
        return ready

    def detach(self) -> None:
        """Ends what :meth:`attach` began."""
        with self._lock:
            self.attached -= 1
            if self.attached == 0:
                self._wakeup = None

    async def stream(self, controls: Any, ready: Optional[asyncio.Event] = None) -> Any:
        """Yields buffered and new events until cancelled; applies controls as they come.

        Without ``ready`` it attaches and detaches itself; with it (from
        :meth:`attach`) the caller detaches.
        """
        owned = ready is None
        if ready is None:
            ready = self.attach()

        async def read_controls() -> None:
            async for message in controls:
                self.control(message)

        reader = asyncio.create_task(read_controls())
        try:
            while True:
                for event in self._take():
                    yield event
                ready.clear()
                if self._events:
                    continue
                await ready.wait()
        finally:
            reader.cancel()
            if owned:
                self.detach()

hub = TelemetryHub()

#: The host's initial telemetry settings for this worker, as JSON:
#: {"allow": [...], "deny": [...], "sampling_rate": r, "sampling_patterns": [...]}.
CONFIG_ENV = "SNAKEPIT_TELEMETRY"


def configure_from_env(environ: Optional[dict[str, str]] = None) -> None:
    """Applies ``SNAKEPIT_TELEMETRY`` to :data:`hub` (the filters hold from the first event)."""
    raw = (environ if environ is not None else os.environ).get(CONFIG_ENV, "")
    if not raw:
        return
    cfg = json.loads(raw)
    with hub._lock:
        hub.allow = [str(p) for p in cfg.get("allow") or []]
        hub.deny = [str(p) for p in cfg.get("deny") or []]
        rate = float(cfg.get("sampling_rate") or 1.0)
        hub.sampling_rate = min(1.0, max(0.0, rate))
        hub.sampling_patterns = [str(p) for p in cfg.get("sampling_patterns") or []]


def emit(
    event: Union[str, Sequence[str]],
    measurements: Optional[dict[str, Measurement]] = None,
    metadata: Optional[dict[str, Any]] = None,
    correlation_id: str = "",
) -> bool:
    """Emits an event (``"a.b.c"`` or ``["a", "b", "c"]``) to the host; safe from any thread."""
    return hub.emit(event, measurements, metadata, correlation_id)


@contextlib.contextmanager
def span(name: str, metadata: Optional[dict[str, Any]] = None) -> Iterator[None]:
    """Emits ``<name>.start``, then ``<name>.stop`` or ``<name>.exception`` with duration_ms."""
    meta = dict(metadata or {})
    emit(f"{name}.start", {}, meta)
    started = time.monotonic()
    try:
        yield
    except BaseException as exc:
        emit(f"{name}.exception", {"duration_ms": (time.monotonic() - started) * 1000},
             {**meta, "error_type": type(exc).__name__})
        raise
    emit(f"{name}.stop", {"duration_ms": (time.monotonic() - started) * 1000}, meta)
