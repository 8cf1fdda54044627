"""Turning an ExecuteToolRequest into a running tool.

:class:`Dispatcher` decodes parameters (JSON in ``Any``) and
``binary_parameters``, resolves and binds the tool, and runs it where it
belongs: coroutines on the event loop, sync functions in the worker's thread
pool (or on the loop thread when thread-sensitive), and generators pulled one
item at a time so a slow consumer holds the producer back.
"""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextvars
import dataclasses
import inspect
import pickle
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Optional

from . import serialization, shm
from .base_adapter import ToolInfo, overrides_execute_tool, overrides_set_session_context
from .errors import InvalidArgumentError, StreamingMismatchError, bounded

TRUTHY = frozenset({"1", "true", "yes", "on"})
_END = object()

# Argument keys upstream uses to name the Python function a generic tool wraps;
# SNAKEPIT_THREAD_SENSITIVE entries are matched against them too.
_MODULE_KEYS = ("module_path", "python_module", "library")
_FUNCTION_KEYS = ("function", "method")


CALL_ID_KEY = "snakepit_call_id"


@dataclass
class Running:
    """A call whose tool has not returned yet (see :class:`RunningCalls`)."""

    call_id: str
    tool_name: str
    started: float
    threads: int = 0  # tool code running in the thread pool for this call
    handler_done: bool = False  # the RPC handler has returned (or was cancelled)
    cancelled: bool = False
    key: int = 0  # RunningCalls' own id of the entry


class RunningCalls:
    """The calls whose tool code still runs, for WorkerControl.Status.

    An entry lives until the RPC handler has ended *and* no thread of the
    call is still inside tool code: a cancelled call whose sync tool spins
    in a thread stays listed, which is how the host learns it must replace
    the worker.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, Running] = {}
        self._next = 0

    def begin(self, call_id: str, tool_name: str) -> Running:
        with self._lock:
            self._next += 1
            entry = Running(call_id=call_id, tool_name=tool_name, started=time.monotonic(), key=self._next)
            self._calls[entry.key] = entry
        return entry

    def thread_started(self, entry: Optional[Running]) -> None:
        if entry is None:
            return
        with self._lock:
            entry.threads += 1

    def thread_finished(self, entry: Optional[Running]) -> None:
        if entry is None:
            return
        with self._lock:
            entry.threads -= 1
            self._drop_if_done(entry)

    def end(self, entry: Running, cancelled: bool) -> None:
        with self._lock:
            entry.handler_done = True
            entry.cancelled = entry.cancelled or cancelled
            self._drop_if_done(entry)

    def _drop_if_done(self, entry: Running) -> None:
        if entry.handler_done and entry.threads <= 0:
            self._calls.pop(entry.key, None)

    def snapshot(self) -> list[Running]:
        with self._lock:
            return [dataclasses.replace(e) for e in self._calls.values()]


@dataclass
class Call:
    """One prepared tool call."""

    tool_name: str
    arguments: dict[str, Any]
    metadata: dict[str, str]
    info: Optional[ToolInfo]  # None when the adapter dispatches itself
    context: Any = None
    running: Optional[Running] = field(default=None, repr=False)

    @property
    def function_name(self) -> str:
        """The Python function behind the tool (the tool name if unknown)."""
        return self.info.function_name if self.info else self.tool_name


def parse_thread_sensitive(spec: str) -> frozenset[str]:
    """Parses SNAKEPIT_THREAD_SENSITIVE: a comma list of modules or module.function."""
    return frozenset(s.strip() for s in spec.split(",") if s.strip())


class Dispatcher:
    """Runs an adapter's tools; one per worker process."""

    def __init__(
        self,
        adapter: Any,
        *,
        thread_sensitive: frozenset[str] = frozenset(),
        max_threads: int = 32,
        allow_pickle: bool = False,
    ) -> None:
        self.adapter = adapter
        self.legacy = overrides_execute_tool(adapter)
        # Upstream's server hands every call's context to set_session_context;
        # an adapter with its own gets it too.
        self.own_set_context = overrides_set_session_context(adapter)
        # Only the host's own pool configuration turns pickle on
        # (SNAKEPIT_ALLOW_PICKLE, set from PoolConfig.AllowPickle).
        self.allow_pickle = allow_pickle
        self.running = RunningCalls()
        self.thread_sensitive_spec = thread_sensitive
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="snakepit-tool"
        )

    # -- preparation -------------------------------------------------------------
    def prepare(self, request: Any, context: Any = None, metadata: Optional[dict[str, str]] = None) -> Call:
        """Decodes and validates a request; raises ToolNotFoundError / InvalidArgumentError.

        metadata is the request's metadata as a dict when the caller has read it already.
        """
        metadata = dict(request.metadata) if metadata is None else metadata
        info: Optional[ToolInfo] = None
        if not self.legacy:
            # Resolved first: nothing of an unknown tool's request is decoded.
            info = self.adapter.resolve(request.tool_name)
        try:
            arguments = serialization.decode_params(request.parameters)
        except serialization.EncodingError as exc:
            raise InvalidArgumentError(str(exc)) from exc
        for name, data in request.binary_parameters.items():
            if name in arguments:
                raise InvalidArgumentError(
                    f"parameter {bounded(name)!r} is given both in parameters and in binary_parameters"
                )
            if info is not None and not info.var_kwargs and name not in info.param_names:
                raise InvalidArgumentError(
                    f"tool {info.name!r} has no parameter {bounded(name)!r} (binary_parameters)"
                )
            segment = metadata.get(shm.PARAM_KEY_PREFIX + name)
            if segment:
                try:
                    value: Any = shm.attach(segment)
                except (shm.SegmentError, OSError) as exc:
                    raise InvalidArgumentError(f"binary parameter {bounded(name)!r}: {bounded(str(exc))}") from exc
            else:
                value = bytes(data)
            arguments[name] = _binary_value(name, value, metadata, self.allow_pickle)
        if info is not None:
            arguments = self.adapter.bind(info, arguments)
        return Call(
            tool_name=request.tool_name,
            arguments=arguments,
            metadata=metadata,
            info=info,
            context=context,
        )

    def is_thread_sensitive(self, call: Call) -> bool:
        """Whether a sync tool must run on the event-loop (main) thread."""
        if call.metadata.get("thread_sensitive", "").strip().lower() in TRUTHY:
            return True
        if call.info is not None and call.info.thread_sensitive:
            return True
        spec = self.thread_sensitive_spec
        if not spec:
            return False
        modules = {type(self.adapter).__module__}
        modules.update(str(call.arguments[k]) for k in _MODULE_KEYS if call.arguments.get(k))
        functions = {call.function_name}
        functions.update(str(call.arguments[k]) for k in _FUNCTION_KEYS if call.arguments.get(k))
        if modules & spec:
            return True
        return any(f"{m}.{f}" in spec for m in modules for f in functions)

    # -- running ---------------------------------------------------------------------
    async def _call_sync(self, call: Call, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.is_thread_sensitive(call):
            return fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        future = self.submit(call.running, ctx.run, fn, *args, **kwargs)
        return await asyncio.wrap_future(future)

    def submit(self, running: Optional[Running], fn: Callable[..., Any], *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Runs fn in the tool thread pool, counted as tool code of the call."""
        self.running.thread_started(running)
        try:
            future = self.executor.submit(fn, *args, **kwargs)
        except BaseException:
            self.running.thread_finished(running)
            raise
        future.add_done_callback(lambda _f: self.running.thread_finished(running))
        return future

    async def _invoke(self, call: Call) -> Any:
        """Calls the tool; returns its raw result (value, iterator or async iterator)."""
        if self.own_set_context:
            bound = self.adapter.set_session_context(call.context)
            if inspect.isawaitable(bound):
                await bound
        if self.legacy:
            fn: Callable[..., Any] = self.adapter.execute_tool
            kwargs = {"tool_name": call.tool_name, "arguments": call.arguments, "context": call.context}
        else:
            assert call.info is not None
            fn = self.adapter.function(call.info)
            kwargs = call.arguments
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
            result = fn(**kwargs)  # creating a coroutine/generator runs no user code yet
        else:
            result = await self._call_sync(call, fn, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def run_unary(self, call: Call) -> Any:
        """Runs a non-streaming call and returns the tool's value.

        A generator tool is only created, never run, before it is refused.
        """
        result = await self._invoke(call)
        if _is_stream(result):
            await _close_quietly(result)
            raise StreamingMismatchError(
                f"tool {call.tool_name!r} returned a stream; call it with ExecuteStreamingTool"
            )
        return result

    async def run_stream(self, call: Call) -> AsyncIterator[Any]:
        """Runs a call and yields its items one at a time; closes the producer on exit.

        A non-streaming tool yields its single value.
        """
        result = await self._invoke(call)
        if hasattr(result, "__aiter__"):
            agen = result.__aiter__()
            try:
                async for item in agen:
                    yield item
            finally:
                await _close_quietly(agen)
            return
        if _is_stream(result) or (
            call.info is not None and call.info.supports_streaming and isinstance(result, (list, tuple))
        ):
            puller = _SyncPuller(iter(result), self, call)
            try:
                while True:
                    item = await puller.next()
                    if item is _END:
                        return
                    yield item
            finally:
                await puller.close()
            return
        yield result

    def shutdown(self) -> None:
        """Stops taking work in the thread pool (running threads are not waited for)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def _binary_value(name: str, data: Any, metadata: dict[str, str], allow_pickle: bool) -> Any:
    fmt = metadata.get(f"binary_format:{name}", "").strip().lower()
    if fmt in ("", "raw", "bytes"):
        return data
    if fmt == "pickle":
        if not allow_pickle:
            raise InvalidArgumentError(
                f"binary parameter {bounded(name)!r} asks for pickle, which this pool does not allow "
                "(the host's PoolConfig.AllowPickle turns it on; request metadata cannot)"
            )
        try:
            return pickle.loads(data)  # noqa: S301 - allowed by the host's own pool configuration
        except Exception as exc:  # noqa: BLE001
            raise InvalidArgumentError(
                f"binary parameter {bounded(name)!r} is not a valid pickle: {bounded(str(exc))}"
            ) from exc
    raise InvalidArgumentError(f"binary parameter {bounded(name)!r}: unknown binary_format {bounded(fmt)!r}")


def _is_stream(value: Any) -> bool:
    return inspect.isasyncgen(value) or isinstance(value, collections.abc.Iterator)


async def _close_quietly(it: Any) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except (RuntimeError, StopAsyncIteration):
            pass
        return
    close = getattr(it, "close", None)
    if close is not None:
        _close_sync(close)


class _SyncPuller:
    """Pulls a sync iterator one item at a time, in the tool thread pool.

    If the consumer goes away while a ``next()`` runs in a thread, the
    generator is closed in that thread as soon as ``next()`` returns (a
    running generator cannot be closed from outside).
    """

    def __init__(self, it: Any, dispatcher: Dispatcher, call: Call) -> None:
        self._it = it
        self._in_loop = dispatcher.is_thread_sensitive(call)
        self._dispatcher = dispatcher
        self._running = call.running
        self._ctx = contextvars.copy_context()
        self._inflight: Optional[concurrent.futures.Future[Any]] = None

    async def next(self) -> Any:
        if self._in_loop:
            return next(self._it, _END)
        self._inflight = self._dispatcher.submit(self._running, self._ctx.run, next, self._it, _END)
        return await asyncio.wrap_future(self._inflight)

    async def close(self) -> None:
        close = getattr(self._it, "close", None)
        if close is None:
            return
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            inflight.add_done_callback(lambda _f: _close_sync(close))
            return
        _close_sync(close)


def _close_sync(close: Callable[[], Any]) -> None:
    try:
        close()
    except (RuntimeError, ValueError):
        pass
