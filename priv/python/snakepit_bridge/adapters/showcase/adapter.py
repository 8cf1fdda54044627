"""ShowcaseAdapter: small tools that exercise every path of the bridge.

Used by ``snakepit demo``, the test suites and the benchmarks. Each tool is a
minimal, honest example of one feature: plain calls, async calls, streaming,
binary data, errors, memory held by the worker, crashes, identity, and calls
back into the host.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from typing import Any, AsyncIterator, Iterator, Optional

from ... import hardware, shm, tracing
from ...base_adapter import BaseAdapter, current_worker_id, tool
from ...payloads import Binary
from ...version import __version__

_ERRORS: dict[str, type[BaseException]] = {
    "value": ValueError,
    "key": KeyError,
    "type": TypeError,
    "runtime": RuntimeError,
    "zero_division": ZeroDivisionError,
    "not_implemented": NotImplementedError,
    "permission": PermissionError,
    "file_not_found": FileNotFoundError,
    "index": IndexError,
    "attribute": AttributeError,
    "timeout": TimeoutError,
}


class ShowcaseAdapter(BaseAdapter):
    """Reference adapter; one instance per worker process.

    Thread-safe (state is guarded by a lock), so it also runs under the thread
    profile (grpc_server_threaded.py).
    """

    __thread_safe__ = True

    def __init__(self) -> None:
        self._held: list[bytearray] = []
        self._lock = threading.Lock()
        self._streams: list[dict[str, Any]] = []
        self.started_at = time.time()

    @tool(description="Answers pong; the cheapest round trip")
    def ping(self) -> str:
        return "pong"

    @tool(description="Returns its arguments unchanged, as a map")
    def echo(self, **kwargs: Any) -> dict[str, Any]:
        return kwargs

    @tool(description="Adds two numbers")
    def add(self, a: float, b: float) -> float:
        return a + b

    @tool(description="Sleeps ms milliseconds without blocking the worker (async)")
    async def sleep(self, ms: int) -> dict[str, Any]:
        await asyncio.sleep(ms / 1000)
        return {"slept_ms": ms}

    @tool(description="Streams n chunks {index: i} (with tag, when given), delay_ms apart")
    async def stream_count(self, n: int, delay_ms: int = 0,
                           tag: Optional[str] = None) -> AsyncIterator[dict[str, Any]]:
        record = {"n": n, "produced": 0, "closed": False, "completed": False}
        with self._lock:
            self._streams.append(record)
        try:
            for i in range(n):
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                record["produced"] = i + 1
                yield {"index": i} if tag is None else {"index": i, "tag": tag}
            record["completed"] = True
        finally:
            record["closed"] = True

    @tool(description="Streams n chunks of size bytes each", supports_streaming=True)
    def stream_bytes(self, n: int, size: int = 65536) -> Iterator[bytes]:
        """Yields n bytes objects of size bytes (sent as binary chunks); for throughput benchmarks.

        The block is made once and yielded n times, so the generator costs
        next to nothing and the figure measures the bridge, not the tool.
        """
        if n < 0 or size < 0:
            raise ValueError("n and size must not be negative")
        block = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        for _ in range(n):
            yield block

    @tool(description="What stream_count calls did: produced, closed, completed (newest last)")
    def stream_stats(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._streams]

    @tool(description="Returns the bytes of binary parameter data unchanged, in binary_result")
    def echo_binary(self, data: bytes, note: Optional[str] = None) -> Binary:
        return Binary(data, {"size": len(data), "note": note} if note else {"size": len(data)})

    @tool(description="How a binary parameter arrived: its Python type (memoryview when by shared memory), size and sha256; nonce is echoed")
    def describe_binary(self, data: bytes, nonce: Optional[str] = None) -> dict[str, Any]:
        return {"type": type(data).__name__, "size": memoryview(data).nbytes, "sha256": hashlib.sha256(data).hexdigest(),
                "nonce": nonce}

    @tool(description="Sleeps ms milliseconds (async), then returns data unchanged")
    async def slow_echo_binary(self, data: bytes, ms: int) -> Binary:
        await asyncio.sleep(ms / 1000)
        return Binary(data)

    @tool(description="Writes a shared-memory result segment of size bytes, then exits with code 3 before answering")
    def crash_holding_segment(self, size: int) -> None:
        shm.put(b"x" * size, current_worker_id(), "-")
        sys.stderr.flush()
        os._exit(3)

    @tool(description="The trace this call runs in (trace_id, span_id, parent_id), null when untraced; calls host tool `then` first when given")
    def trace_info(self, then: Optional[str] = None, args: Optional[dict[str, Any]] = None) -> Optional[dict[str, Any]]:
        host = None
        if then:
            ctx = self.session_context
            if ctx is None:
                raise RuntimeError("trace_info with `then` needs a session context")
            host = ctx.call_host_tool(then, **(args or {}))
        span = tracing.current()
        if span is None:
            return None
        return {"trace_id": span.trace_id, "span_id": span.span_id, "parent_id": span.parent_id, "host": host}

    @tool(description="What this worker can use: CPUs, memory, the GPUs it sees and the device it should use")
    def hardware_info(self) -> dict[str, Any]:
        return hardware.info()

    @tool(description="Logs message with Python logging at level (debug, info, warning, error); also prints it when printed")
    def log_message(self, message: str, level: str = "info", printed: bool = False) -> str:
        logging.getLogger("showcase").log(logging.getLevelName(level.upper()), "%s", message)
        if printed:
            print(f"printed: {message}", flush=True)
        return level

    @tool(description="Raises the Python exception named by kind (value, key, type, runtime, ...)")
    def raise_error(self, kind: str = "value", message: str = "boom") -> None:
        exc = _ERRORS.get(kind)
        if exc is None:
            raise ValueError(f"unknown error kind {kind!r}; kinds: {', '.join(sorted(_ERRORS))}")
        raise exc(message)

    @tool(description="Allocates and holds n MiB (touched, so RSS grows); returns the total held")
    def allocate_mb(self, n: int) -> dict[str, int]:
        if n < 0:
            raise ValueError("n must not be negative")
        block = bytearray(n * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
        with self._lock:
            self._held.append(block)
            held = sum(len(b) for b in self._held) // (1024 * 1024)
        return {"held_mb": held}

    @tool(description="Releases what allocate_mb holds")
    def free_memory(self) -> dict[str, int]:
        with self._lock:
            self._held.clear()
        return {"held_mb": 0}

    @tool(description="Ends the worker process at once with exit code code (a crash)")
    def crash(self, code: int = 1) -> None:
        sys.stderr.flush()
        os._exit(code)

    @tool(description="Starts `sleep seconds` in a session of its own (it leaves the worker's process group) and returns its pid")
    def spawn_detached(self, seconds: int = 60) -> int:
        child = subprocess.Popen(["sleep", str(seconds)], start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return child.pid

    @tool(description="Identity of this worker process")
    def whoami(self, env_keys: Optional[list[str]] = None) -> dict[str, Any]:
        ctx = self.session_context
        keys = env_keys or []
        return {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "pgid": os.getpgid(0),
            "worker_id": _flag("--snakepit-worker-id") or os.environ.get("SNAKEPIT_WORKER_ID", ""),
            "run_id": _flag("--snakepit-run-id"),
            "instance_name": _flag("--snakepit-instance-name"),
            "adapter": f"{type(self).__module__}.{type(self).__qualname__}",
            "argv": list(sys.argv),
            "env": {k: os.environ[k] for k in keys if k in os.environ},
            "python": sys.version.split()[0],
            "bridge": os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
            "bridge_version": __version__,
            "session_id": ctx.session_id if ctx is not None else "",
            "thread": threading.current_thread().name,
            "uptime_s": round(time.time() - self.started_at, 3),
        }

    @tool(description="Calls the host tool named tool with args and returns its result")
    def call_host(self, tool: str, args: Optional[dict[str, Any]] = None) -> Any:
        ctx = self.session_context
        if ctx is None:
            raise RuntimeError("call_host needs a session context")
        return ctx.call_host_tool(tool, **(args or {}))

    @tool(description="Calls host tool `tool` with `data` as a binary parameter named `name`")
    def call_host_binary(self, tool: str, data: bytes, name: str = "data",
                         args: Optional[dict[str, Any]] = None) -> Any:
        ctx = self.session_context
        if ctx is None:
            raise RuntimeError("call_host_binary needs a session context")
        result = ctx.call_host_tool(tool, **{**(args or {}), name: data})
        return Binary(result) if isinstance(result, bytes) else result

    @tool(description="Consumes the streaming host tool `tool` and returns its items")
    def stream_host(self, tool: str, args: Optional[dict[str, Any]] = None) -> list[Any]:
        ctx = self.session_context
        if ctx is None:
            raise RuntimeError("stream_host needs a session context")
        return [{"binary_len": len(item)} if isinstance(item, bytes) else item
                for item in ctx.stream_host_tool(tool, **(args or {}))]


def _flag(name: str) -> str:
    argv = sys.argv
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return ""
