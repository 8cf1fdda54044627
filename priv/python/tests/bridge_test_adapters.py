"""Adapters used only by the bridge's own tests: one edge case per tool."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from typing import Any, Iterator, Optional, Union

from snakepit_bridge import BaseAdapter, Binary, StreamChunk, telemetry, tool


class Opaque:
    """An object JSON cannot represent and that offers no conversion."""

    def __repr__(self) -> str:
        return "Opaque(token=abc123)"


class Point:
    """An object with to_dict (graceful conversion)."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y}


class EdgeAdapter(BaseAdapter):
    """Tools for edge cases: threads, rendezvous, generators, markers, floats."""

    def __init__(self) -> None:
        self.init_calls = 0
        self.produced: dict[str, int] = {}
        self.closed: dict[str, bool] = {}
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._gates: dict[str, threading.Event] = {}

    def initialize(self) -> None:
        self.init_calls += 1
        if os.environ.get("EDGE_FAIL_INIT"):
            raise RuntimeError("model file missing")

    def cleanup(self) -> None:
        path = os.environ.get("EDGE_CLEANUP_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("cleaned")

    @tool
    def init_count(self) -> int:
        return self.init_calls

    @tool
    def thread_name(self) -> str:
        return threading.current_thread().name

    @tool(thread_sensitive=True)
    def main_thread_name(self) -> str:
        return threading.current_thread().name

    @tool
    async def rendezvous(self, group: str, peers: int) -> int:
        """Returns only when `peers` calls of the same group are running at once."""
        event = asyncio.Event()
        waiters = self._waiters.setdefault(group, [])
        waiters.append(event)
        if len(waiters) >= peers:
            for e in waiters:
                e.set()
        await asyncio.wait_for(event.wait(), timeout=10)
        return len(waiters)

    @tool
    def block(self, name: str) -> str:
        """Blocks its thread until release(name) is called (or 20 s pass)."""
        event = self._gates.setdefault(name, threading.Event())
        return "released" if event.wait(timeout=20) else "timed out"

    @tool
    def release(self, name: str) -> bool:
        self._gates.setdefault(name, threading.Event()).set()
        return True

    @tool
    def count_sync(self, name: str, n: int, size: int = 0, delay_ms: int = 0) -> Iterator[Any]:
        """A sync generator; records how many items it produced and whether it closed."""
        self.produced[name] = 0
        self.closed[name] = False
        try:
            for i in range(n):
                if delay_ms:
                    time.sleep(delay_ms / 1000)
                self.produced[name] = i + 1
                yield b"x" * size if size else {"i": i}
        finally:
            self.closed[name] = True

    @tool
    def producer_state(self, name: str) -> dict[str, Any]:
        return {"produced": self.produced.get(name, -1), "closed": self.closed.get(name, False)}

    @tool
    def mixed_chunks(self) -> Iterator[Any]:
        yield "text"
        yield b"\x00\xff"
        yield None
        yield StreamChunk({"done": True}, is_final=True, metadata={"stage": "end"})
        yield "never sent"

    @tool(supports_streaming=True)
    def list_stream(self) -> list[int]:
        return [1, 2, 3]

    @tool
    async def async_fail_stream(self, after: int) -> Any:
        for i in range(after):
            yield {"i": i}
        raise KeyError("missing-key")

    @tool
    def special_floats(self) -> dict[str, Any]:
        return {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "one": 1.5, "s": "NaN"}

    @tool
    def nan(self) -> float:
        return math.nan

    @tool
    def neg_inf(self) -> float:
        return -math.inf

    @tool
    def unserializable(self) -> dict[str, Any]:
        return {"ok": 1, "point": Point(1, 2), "opaque": Opaque(), "tags": {"a"}}

    @tool
    def bad_bytes_inside(self) -> dict[str, Any]:
        return {"blob": b"\xff\xfe"}

    @tool
    def env_var(self, name: str) -> Optional[str]:
        return os.environ.get(name)

    @tool
    def add(self, a: int, b: int) -> int:
        return a + b

    @tool
    def typed(self, f: float, s: str, flag: bool, items: list[int], opts: dict, maybe: Optional[int],
              either: Union[int, str], raw: bytes = b"", nothing: int = None) -> str:  # type: ignore[assignment]
        return "ok"

    @tool
    def spin(self, seconds: float) -> int:
        """Busy for seconds in a thread; ignores cancellation (a sync tool cannot be interrupted)."""
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
        return n

    @tool
    async def block_loop(self, seconds: float) -> str:
        """Blocks the event loop (a bug in an async tool): nothing else in the worker runs meanwhile."""
        time.sleep(seconds)
        return "unblocked"

    @tool
    def binary_with_meta(self, n: int) -> Binary:
        return Binary(bytes(range(256)) * n, {"dtype": "uint8", "shape": [n, 256]})

    @tool
    def describe(self, value: Any = None, blob: Optional[bytes] = None) -> dict[str, Any]:
        """Reports the Python types of what arrived."""
        return {
            "value_type": type(value).__name__,
            "value": value if not isinstance(value, (bytes, set)) else repr(value),
            "blob_type": type(blob).__name__,
            "blob_len": len(blob) if isinstance(blob, (bytes, bytearray)) else None,
        }

    @tool
    def host_roundtrip(self, tool_name: str, payload: Any) -> Any:
        return self.session_context.call_host_tool(tool_name, payload=payload)

    @tool
    async def host_roundtrip_async(self, tool_name: str, payload: Any) -> Any:
        return await self.session_context.acall_host_tool(tool_name, payload=payload)

    @tool
    def emit_event(self, name: str, value: float = 1.0) -> bool:
        return telemetry.emit(name, {"value": value}, {"source": "edge"})

    @tool
    def host_tools(self) -> list[str]:
        return sorted(self.session_context.host_tools)


class LegacyAdapter:
    """An upstream-style adapter: no BaseAdapter, its own execute_tool."""

    def execute_tool(self, tool_name: str, arguments: dict[str, Any], context: Any) -> Any:
        if tool_name == "shout":
            return str(arguments["text"]).upper()
        if tool_name == "numbers":
            return iter([1, 2, 3])
        raise ValueError(f"unknown tool {tool_name}")


class SecretiveAdapter(BaseAdapter):
    """Fails in its constructor (health check must report it)."""

    def __init__(self) -> None:
        raise RuntimeError("cannot construct")


class BrokenInitAdapter(BaseAdapter):
    """Constructs, but its initialize() raises (a model file missing, say): health check must fail."""

    def initialize(self) -> None:
        raise FileNotFoundError("weights.pt")

    @tool
    def ping(self) -> str:
        return "pong"


class AsyncInitAdapter(BaseAdapter):
    """An async initialize() and cleanup() that work: health check runs both."""

    initialized = False

    async def initialize(self) -> None:
        AsyncInitAdapter.initialized = True

    async def cleanup(self) -> None:
        print("cleanup ran", flush=True)

    @tool
    def ping(self) -> str:
        return "pong"


class GracefulEdge(EdgeAdapter):
    """EdgeAdapter with upstream's graceful serialization (markers) opted in."""

    graceful_serialization = True


class ThreadSafeEdge(EdgeAdapter):
    """EdgeAdapter declared thread-safe, with a rendezvous of sync calls."""

    __thread_safe__ = True

    def __init__(self) -> None:
        super().__init__()
        self._barriers: dict[str, threading.Barrier] = {}
        self._barrier_lock = threading.Lock()

    @tool
    def sync_rendezvous(self, group: str, peers: int) -> int:
        """Returns only when `peers` sync calls of the group run at once (in threads)."""
        with self._barrier_lock:
            barrier = self._barriers.setdefault(group, threading.Barrier(peers, timeout=10))
        return barrier.wait() + 1
