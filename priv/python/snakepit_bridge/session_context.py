"""The host connection and the per-call session context.

:class:`HostClient` owns the channels to the host's BridgeService (the
``--elixir-address``) and adds the instance token and worker id to every
call as gRPC metadata (``x-snakepit-instance-token``,
``x-snakepit-worker-id``) and the worker's secret (``x-snakepit-auth``, from
``SNAKEPIT_WORKER_SECRET``), which is what the host checks. :class:`SessionContext` is what a tool sees:
the session id, the request metadata, and :meth:`SessionContext.call_host_tool`
to run a tool registered on the host. Parameters are encoded exactly as the
host encodes its own (JSON in ``Any.value``), so values round-trip.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any, AsyncIterator, Iterator, Optional

import grpc

from . import serialization, tracing
from . import snakepit_bridge_pb2 as pb2
from . import snakepit_bridge_pb2_grpc as pb2_grpc
from .errors import HostToolError, HostToolNotFoundError
from .security import AUTH_HEADER, with_metadata

log = logging.getLogger(__name__)

TOKEN_HEADER = "x-snakepit-instance-token"
WORKER_HEADER = "x-snakepit-worker-id"


BRIDGE_CA_ENV = "SNAKEPIT_BRIDGE_CA_FILE"
BRIDGE_SERVER_NAME_ENV = "SNAKEPIT_BRIDGE_SERVER_NAME"


def _tls_credentials(ca_file: str) -> Optional[grpc.ChannelCredentials]:
    """TLS credentials trusting the PEM bundle at ca_file ("" = plain text)."""
    if not ca_file:
        return None
    with open(ca_file, "rb") as fh:
        return grpc.ssl_channel_credentials(root_certificates=fh.read())


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    """gRPC channel/server options for the bridge's message size limit."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


class HostClient:
    """Channels (sync and asyncio) to the host, created lazily, closed together."""

    def __init__(
        self,
        address: str,
        *,
        token: str = "",
        worker_id: str = "",
        max_message_bytes: int = 100 * 1024 * 1024,
        secret: str = "",
    ) -> None:
        self.address = address
        # The token is upstream's instance marker (kept for upstream hosts);
        # the secret, from the environment, is what authenticates us.
        self.metadata: tuple[tuple[str, str], ...] = tuple(
            (k, v) for k, v in ((TOKEN_HEADER, token), (WORKER_HEADER, worker_id), (AUTH_HEADER, secret)) if v
        )
        self._options = channel_options(max_message_bytes)
        # A host bridge that serves TLS (BridgeConfig.TLS): its CA bundle.
        self._credentials = _tls_credentials(os.environ.get(BRIDGE_CA_ENV, ""))
        if os.environ.get(BRIDGE_SERVER_NAME_ENV):
            self._options = self._options + [("grpc.ssl_target_name_override", os.environ[BRIDGE_SERVER_NAME_ENV])]
        self._lock = threading.Lock()
        self._sync_channel: Optional[grpc.Channel] = None
        self._aio_channel: Optional[grpc.aio.Channel] = None
        self._stub: Optional[pb2_grpc.BridgeServiceStub] = None
        self._aio_stub: Optional[pb2_grpc.BridgeServiceStub] = None

    @property
    def stub(self) -> pb2_grpc.BridgeServiceStub:
        """A blocking stub (for tools running in threads).

        Every call on it carries the worker's credentials, so adapters that
        call the stub themselves (upstream style) are authenticated too.
        """
        with self._lock:
            if self._stub is None:
                self._sync_channel = (
                    grpc.secure_channel(self.address, self._credentials, options=self._options)
                    if self._credentials is not None
                    else grpc.insecure_channel(self.address, options=self._options)
                )
                self._stub = pb2_grpc.BridgeServiceStub(with_metadata(self._sync_channel, self.metadata))
            return self._stub

    @property
    def aio_stub(self) -> pb2_grpc.BridgeServiceStub:
        """An asyncio stub; must be used from the worker's event loop."""
        with self._lock:
            if self._aio_stub is None:
                self._aio_channel = (
                    grpc.aio.secure_channel(self.address, self._credentials, options=self._options)
                    if self._credentials is not None
                    else grpc.aio.insecure_channel(self.address, options=self._options)
                )
                self._aio_stub = pb2_grpc.BridgeServiceStub(self._aio_channel)
            return self._aio_stub

    async def close(self) -> None:
        """Closes both channels."""
        with self._lock:
            sync_channel, aio_channel = self._sync_channel, self._aio_channel
            self._sync_channel = self._aio_channel = None
            self._stub = self._aio_stub = None
        if sync_channel is not None:
            sync_channel.close()
        if aio_channel is not None:
            await aio_channel.close()


def _split_params(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Separates bytes-like parameters (sent as ``binary_parameters``) from JSON ones."""
    json_params: dict[str, Any] = {}
    binary: dict[str, bytes] = {}
    for key, value in kwargs.items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            binary[key] = bytes(value)
        else:
            json_params[key] = value
    return json_params, binary


def _decode_chunk(chunk: Any) -> Any:
    """Decodes one stream chunk by its ``encoding`` metadata (the worker's own convention)."""
    encoding = chunk.metadata.get("encoding", "json")
    if encoding == "binary":
        return bytes(chunk.data)
    if encoding == "text":
        return chunk.data.decode("utf-8")
    if encoding == "empty" or not chunk.data:
        return None
    return json.loads(chunk.data)


def _no_host() -> HostToolError:
    return HostToolError("no host connection: the worker was started without --elixir-address")


def _rpc_failure(tool_name: str, exc: grpc.RpcError) -> HostToolError:
    details: Any = None
    message = exc.details() or ""
    try:
        details = json.loads(message)
        if isinstance(details, dict) and details.get("message"):
            message = str(details["message"])
    except ValueError:
        pass
    cls = HostToolNotFoundError if exc.code() == grpc.StatusCode.NOT_FOUND else HostToolError
    return cls(f"host tool {tool_name!r}: {exc.code().name}: {message}", tool_name=tool_name, details=details)


def _decode_result(tool_name: str, resp: Any) -> Any:
    if not resp.success:
        message = resp.error_message or "host tool failed"
        details: Any = None
        try:
            details = json.loads(message)
            if isinstance(details, dict) and details.get("message"):
                message = str(details["message"])
        except ValueError:
            pass
        raise HostToolError(f"host tool {tool_name!r} failed: {message}", tool_name=tool_name,
                            details=details)
    if resp.binary_result:
        return bytes(resp.binary_result)
    if not resp.HasField("result"):
        return None
    return serialization.decode_any(resp.result)


class SessionContext:
    """The session a tool call runs in, and the way back to the host.

    ``SessionContext(stub, session_id, request_metadata)`` is upstream's
    constructor; ``host`` (a :class:`HostClient`) adds the token metadata and
    the asyncio stub.
    """

    def __init__(
        self,
        stub: Any,
        session_id: str,
        request_metadata: Optional[dict[str, str]] = None,
        *,
        host: Optional[HostClient] = None,
    ) -> None:
        self.stub = stub
        self.session_id = session_id
        self.request_metadata = dict(request_metadata or {})
        self._host = host
        self._host_tools: Optional[dict[str, pb2.ToolSpec]] = None

    @property
    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        # For the asyncio stub; the blocking stub's channel adds the
        # credentials to every call itself (HostClient.stub).
        return self._host.metadata if self._host is not None else ()

    def _require_stub(self) -> Any:
        if self.stub is None:
            raise _no_host()
        return self.stub

    @property
    def host_tools(self) -> dict[str, pb2.ToolSpec]:
        """Tools the host exposes, by name (fetched once with GetExposedElixirTools)."""
        if self._host_tools is None:
            resp = self._require_stub().GetExposedElixirTools(
                pb2.GetExposedElixirToolsRequest(session_id=self.session_id)
            )
            self._host_tools = {t.name: t for t in resp.tools}
        return self._host_tools

    elixir_tools = host_tools

    def _outgoing_metadata(self) -> dict[str, str]:
        """What a host-tool call carries on: the correlation id and the tool span's trace context."""
        metadata = {k: v for k, v in self.request_metadata.items() if k == "correlation_id"}
        metadata.update(tracing.outgoing_metadata())
        return metadata

    def _request(self, tool_name: str, kwargs: dict[str, Any]) -> tuple[str, Any]:
        """The RPC and request for a host tool call.

        JSON-only calls use ``ExecuteElixirTool`` (upstream's RPC); a call with
        bytes parameters uses the host's ``ExecuteTool``, whose
        ``binary_parameters`` carry them untouched.
        """
        json_params, binary = _split_params(kwargs)
        metadata = self._outgoing_metadata()
        if binary:
            return "ExecuteTool", pb2.ExecuteToolRequest(
                session_id=self.session_id, tool_name=tool_name,
                parameters=serialization.encode_params(json_params),
                binary_parameters=binary, metadata=metadata,
            )
        return "ExecuteElixirTool", pb2.ExecuteElixirToolRequest(
            session_id=self.session_id,
            tool_name=tool_name,
            parameters=serialization.encode_params(json_params),
            metadata=metadata,
        )

    def call_host_tool(self, tool_name: str, /, *, _timeout: Optional[float] = None,
                       **kwargs: Any) -> Any:
        """Runs a host tool and returns its decoded result (blocking).

        Keyword arguments are the tool's parameters (bytes-like ones travel as
        binary parameters); ``_timeout`` (seconds) bounds the call. Raises
        :class:`HostToolError` with the host's error text when it fails.
        """
        method, request = self._request(tool_name, kwargs)
        try:
            resp = getattr(self._require_stub(), method)(request, timeout=_timeout)
        except grpc.RpcError as exc:
            raise _rpc_failure(tool_name, exc) from exc
        return _decode_result(tool_name, resp)

    call_elixir_tool = call_host_tool

    async def acall_host_tool(self, tool_name: str, /, *, _timeout: Optional[float] = None,
                              **kwargs: Any) -> Any:
        """Like :meth:`call_host_tool`, for async tools (does not block the loop)."""
        if self._host is None:
            raise _no_host()
        method, request = self._request(tool_name, kwargs)
        try:
            resp = await getattr(self._host.aio_stub, method)(
                request, timeout=_timeout, metadata=self._call_metadata
            )
        except grpc.RpcError as exc:
            raise _rpc_failure(tool_name, exc) from exc
        return _decode_result(tool_name, resp)

    def _stream_request(self, tool_name: str, kwargs: dict[str, Any]) -> pb2.ExecuteToolRequest:
        json_params, binary = _split_params(kwargs)
        return pb2.ExecuteToolRequest(
            session_id=self.session_id, tool_name=tool_name, stream=True,
            parameters=serialization.encode_params(json_params), binary_parameters=binary,
            metadata=self._outgoing_metadata(),
        )

    def stream_host_tool(self, tool_name: str, /, *, _timeout: Optional[float] = None,
                         **kwargs: Any) -> Iterator[Any]:
        """Iterates over the items a streaming host tool sends (blocking).

        Items are decoded by their encoding: JSON values, ``str`` for text,
        ``bytes`` for binary. The host's closing chunk is not an item.
        Raises :class:`HostToolError` if the tool fails, after the items
        sent before the failure.
        """
        request = self._stream_request(tool_name, kwargs)
        try:
            for chunk in self._require_stub().ExecuteStreamingTool(request, timeout=_timeout):
                if chunk.is_final and chunk.metadata.get("synthetic_final") == "true":
                    return
                yield _decode_chunk(chunk)
                if chunk.is_final:
                    return
        except grpc.RpcError as exc:
            raise _rpc_failure(tool_name, exc) from exc

    async def astream_host_tool(self, tool_name: str, /, *, _timeout: Optional[float] = None,
                                **kwargs: Any) -> AsyncIterator[Any]:
        """Like :meth:`stream_host_tool`, for async tools."""
        if self._host is None:
            raise _no_host()
        request = self._stream_request(tool_name, kwargs)
        try:
            async for chunk in self._host.aio_stub.ExecuteStreamingTool(
                request, timeout=_timeout, metadata=self._call_metadata
            ):
                if chunk.is_final and chunk.metadata.get("synthetic_final") == "true":
                    return
                yield _decode_chunk(chunk)
                if chunk.is_final:
                    return
        except grpc.RpcError as exc:
            raise _rpc_failure(tool_name, exc) from exc

    def cleanup(self) -> bool:
        """Asks the host to clean the session up (best effort); True on success."""
        if self.stub is None:
            return False
        try:
            resp = self.stub.CleanupSession(pb2.CleanupSessionRequest(session_id=self.session_id))
            return bool(resp.success)
        except grpc.RpcError as exc:
            log.debug("CleanupSession(%s) failed: %s", self.session_id, exc)
            return False

    def __enter__(self) -> "SessionContext":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()
