"""The worker's BridgeService: tools run here, session RPCs go to the host."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any, AsyncIterator, Optional

import grpc
from google.protobuf import timestamp_pb2

from . import serialization, shm, telemetry, tracing
from . import snakepit_bridge_pb2 as pb2
from . import snakepit_bridge_pb2_grpc as pb2_grpc
from . import snakepit_control_pb2 as control_pb2
from . import snakepit_control_pb2_grpc as control_pb2_grpc
from .base_adapter import current_context_var, current_worker_id
from .dispatch import CALL_ID_KEY, Call, Dispatcher
from .errors import (
    InvalidArgumentError,
    StreamingMismatchError,
    ToolNotFoundError,
    error_json,
)
from .payloads import Binary, StreamChunk
from .session_context import HostClient, SessionContext

log = logging.getLogger(__name__)

BINARY_TYPE_URL = serialization.SNAKEPIT_TYPE_PREFIX + "binary"

# gRPC status for a failed streaming call, by the kind of failure.
_STREAM_STATUS = {
    ToolNotFoundError: grpc.StatusCode.NOT_FOUND,
    InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
}


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


class WorkerServicer(pb2_grpc.BridgeServiceServicer):
    """Serves Ping, ExecuteTool and ExecuteStreamingTool; forwards session RPCs."""

    def __init__(self, dispatcher: Dispatcher, host: Optional[HostClient], worker_id: str) -> None:
        self.dispatcher = dispatcher
        self.host = host
        self.worker_id = worker_id

    # -- local RPCs ----------------------------------------------------------------
    async def Ping(self, request: pb2.PingRequest, context: Any) -> pb2.PingResponse:
        return pb2.PingResponse(message=f"Pong from Python: {request.message}", server_time=_now())

    def _context_for(self, request: pb2.ExecuteToolRequest, metadata: dict[str, str]) -> SessionContext:
        stub = self.host.stub if self.host is not None else None
        return SessionContext(stub, request.session_id, dict(metadata), host=self.host)

    def _error_context(self, request: pb2.ExecuteToolRequest, call: Optional[Call],
                       call_type: str) -> dict[str, Any]:
        adapter = type(self.dispatcher.adapter)
        return {
            "tool_name": request.tool_name,
            "session_id": request.session_id,
            "worker_id": self.worker_id,
            "python_module": adapter.__module__,
            "adapter": adapter.__qualname__,
            "function": call.function_name if call else None,
            "call_type": call_type,
            "correlation_id": request.metadata.get("correlation_id"),
        }

    async def ExecuteTool(self, request: pb2.ExecuteToolRequest, context: Any) -> pb2.ExecuteToolResponse:
        started = time.monotonic()
        call: Optional[Call] = None
        # The request's metadata read once: each read of a protobuf map builds its strings anew.
        metadata = dict(request.metadata)
        session = self._context_for(request, metadata)
        token = current_context_var().set(session)
        span = tracing.start(f"tool {request.tool_name}", metadata, tool=request.tool_name,
                             worker_id=self.worker_id)
        running = self.dispatcher.running.begin(metadata.get(CALL_ID_KEY, ""), request.tool_name)
        cancelled = True  # until the handler gets to its end
        ok = False
        try:
            call = self.dispatcher.prepare(request, context=session, metadata=metadata)
            call.running = running
            value = await self.dispatcher.run_unary(call)
            response = encode_result(value, shm_accept=metadata.get(shm.ACCEPT_KEY, ""))
            cancelled, ok = False, True
        except Exception as exc:  # noqa: BLE001 - every tool failure becomes a payload
            cancelled = False
            if not isinstance(exc, (ToolNotFoundError, InvalidArgumentError, StreamingMismatchError)):
                log.info("tool %s failed: %s: %s", request.tool_name, type(exc).__name__, exc)
            response = pb2.ExecuteToolResponse(
                success=False, error_message=error_json(exc, self._error_context(request, call, "unary"))
            )
        finally:
            self.dispatcher.running.end(running, cancelled)
            tracing.finish(span, ok)
            current_context_var().reset(token)
        elapsed = time.monotonic() - started
        response.execution_time_ms = int(elapsed * 1000)
        response.metadata["worker_id"] = self.worker_id
        self._emit_call(request, "unary", response.success, elapsed)
        return response

    def _emit_call(self, request: pb2.ExecuteToolRequest, call_type: str, ok: bool, elapsed: float) -> None:
        if not telemetry.hub.attached:
            return
        telemetry.emit(
            f"tool.execution.{'stop' if ok else 'exception'}",
            {"duration_ms": elapsed * 1000},
            {"tool_name": request.tool_name, "worker_id": self.worker_id, "call_type": call_type},
            correlation_id=request.metadata.get("correlation_id", ""),
        )

    async def ExecuteStreamingTool(
        self, request: pb2.ExecuteToolRequest, context: Any
    ) -> AsyncIterator[pb2.ToolChunk]:
        call: Optional[Call] = None
        metadata = dict(request.metadata)  # read once, as ExecuteTool does
        session = self._context_for(request, metadata)
        token = current_context_var().set(session)
        sent = 0
        final_sent = False
        started = time.monotonic()
        running = self.dispatcher.running.begin(metadata.get(CALL_ID_KEY, ""), request.tool_name)
        completed = False
        try:
            call = self.dispatcher.prepare(request, context=session, metadata=metadata)
            call.running = running
            # aclosing: if this handler is closed (client gone), the tool's generator is closed too.
            async with contextlib.aclosing(self.dispatcher.run_stream(call)) as items:
                async for item in items:
                    sent += 1
                    chunk = encode_chunk(request.tool_name, sent, item)
                    final_sent = chunk.is_final
                    yield chunk
                    if final_sent:
                        break
            if not final_sent:
                sent += 1
                yield pb2.ToolChunk(
                    chunk_id=f"{request.tool_name}-{sent}",
                    is_final=True,
                    metadata={
                        "synthetic_final": "true",
                        "chunks_sent": str(sent - 1),
                        "execution_time_ms": str(int((time.monotonic() - started) * 1000)),
                    },
                )
            completed = True
            self._emit_call(request, "stream", True, time.monotonic() - started)
        except Exception as exc:  # noqa: BLE001 - every tool failure becomes a status
            completed = True
            self._emit_call(request, "stream", False, time.monotonic() - started)
            code = next((c for cls, c in _STREAM_STATUS.items() if isinstance(exc, cls)),
                        grpc.StatusCode.INTERNAL)
            payload = error_json(exc, self._error_context(request, call, "stream"))
            await context.abort(code, payload)
        finally:
            self.dispatcher.running.end(running, not completed)
            with contextlib.suppress(ValueError):  # closed from another context (finalizer): nothing to reset
                current_context_var().reset(token)

    async def StreamTelemetry(self, request_iterator: Any, context: Any) -> AsyncIterator[pb2.TelemetryEvent]:
        # Attached before the headers go out: a host that has them misses no event.
        ready = telemetry.hub.attach()
        try:
            await context.send_initial_metadata(())
            async for event in telemetry.hub.stream(request_iterator, ready):
                yield event
        finally:
            telemetry.hub.detach()

    # -- forwarded to the host ----------------------------------------------------
    async def _forward(self, method: str, request: Any, context: Any) -> Any:
        if self.host is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"{method} needs the host, and this worker has no --elixir-address",
            )
        try:
            return await getattr(self.host.aio_stub, method)(
                request, metadata=self.host.metadata, timeout=context.time_remaining()
            )
        except grpc.RpcError as exc:
            await context.abort(exc.code(), f"host {method}: {exc.details()}")

    async def InitializeSession(self, request: Any, context: Any) -> Any:
        return await self._forward("InitializeSession", request, context)

    async def CleanupSession(self, request: Any, context: Any) -> Any:
        return await self._forward("CleanupSession", request, context)

    async def GetSession(self, request: Any, context: Any) -> Any:
        return await self._forward("GetSession", request, context)

    async def Heartbeat(self, request: Any, context: Any) -> Any:
        return await self._forward("Heartbeat", request, context)


class ControlServicer(control_pb2_grpc.WorkerControlServicer):
    """WorkerControl: the host's liveness probe and list of running calls.

    It runs on the event loop, so a tool that blocks the loop keeps it from
    answering, which is what the host's probe relies on.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def Status(self, request: control_pb2.StatusRequest, context: Any) -> control_pb2.StatusResponse:
        now = time.monotonic()
        running = [
            control_pb2.RunningCall(call_id=e.call_id, tool_name=e.tool_name,
                                    elapsed_ms=int((now - e.started) * 1000), cancelled=e.cancelled)
            for e in self.dispatcher.running.snapshot()
        ]
        return control_pb2.StatusResponse(running=running, pid=os.getpid())


def encode_result(value: Any, shm_accept: str = "") -> pb2.ExecuteToolResponse:
    """Builds a successful response: binary_result for bytes, JSON in Any otherwise.

    With shm_accept (the request's snakepit_shm_accept: the host takes
    shared-memory results), bytes of at least the shared-memory threshold go
    to a segment instead.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = Binary(value)
    if isinstance(value, Binary):
        meta = serialization.dumps(value.metadata)
        limit = shm.threshold() if shm_accept else 0
        segment = shm.put(value.data, current_worker_id(), shm_accept) if limit and shm.nbytes(value.data) >= limit else None
        if segment:
            response = pb2.ExecuteToolResponse(success=True)
            response.metadata[shm.RESULT_KEY] = segment
        else:
            response = pb2.ExecuteToolResponse(success=True, binary_result=bytes(value.data))
        response.result.type_url = BINARY_TYPE_URL
        response.result.value = meta
        response.metadata["result_encoding"] = "binary"
        return response
    response = pb2.ExecuteToolResponse(success=True)
    response.result.CopyFrom(serialization.encode_any(value))
    response.metadata["result_encoding"] = "json"
    return response


def encode_chunk(tool_name: str, n: int, item: Any) -> pb2.ToolChunk:
    """Encodes one streamed item (a StreamChunk-like object or a plain payload)."""
    is_final = False
    extra: dict[str, str] = {}
    payload = item
    if isinstance(item, StreamChunk) or (hasattr(item, "data") and hasattr(item, "is_final")):
        payload = item.data
        is_final = bool(item.is_final)
        extra = {str(k): str(v) for k, v in (getattr(item, "metadata", None) or {}).items()}
    elif isinstance(item, Binary):
        payload = item.data
        extra = {"binary_metadata": json.dumps(serialization.to_jsonable(item.metadata))}
    data, encoding = serialization.encode_chunk(payload)
    metadata = {"encoding": encoding}
    metadata.update(extra)
    return pb2.ToolChunk(chunk_id=f"{tool_name}-{n}", data=data, is_final=is_final, metadata=metadata)
