"""Who may talk to a worker, and what wire data may ask of it.

The host hands each worker two secrets in its environment (never on the
command line, which every local user can read with ``ps``):

* ``SNAKEPIT_SERVER_SECRET``: callers of this worker's gRPC server must send
  it in the ``x-snakepit-auth`` header (the host does on every call); any
  other call is refused with UNAUTHENTICATED before a handler runs.
* ``SNAKEPIT_WORKER_SECRET``: the worker sends it to the host's bridge in
  the same header; it proves "I am worker W" there and nothing more.

Both are removed from ``os.environ`` once read, so the processes a tool
starts do not inherit them. ``SNAKEPIT_ALLOW_PICKLE`` is the host's own pool
setting (``PoolConfig.AllowPickle``): only when it is ``1`` may a binary
parameter be unpickled; request metadata alone never can turn it on.
"""

from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Optional

import grpc

log = logging.getLogger(__name__)

AUTH_HEADER = "x-snakepit-auth"
SERVER_SECRET_ENV = "SNAKEPIT_SERVER_SECRET"
WORKER_SECRET_ENV = "SNAKEPIT_WORKER_SECRET"
ALLOW_PICKLE_ENV = "SNAKEPIT_ALLOW_PICKLE"


@dataclass(frozen=True)
class Secrets:
    """The worker's secrets, read once at start."""

    server: str = ""  # required from callers of this worker
    worker: str = ""  # presented to the host's bridge
    allow_pickle: bool = False


def take_secrets(environ: Optional[dict[str, str]] = None) -> Secrets:
    """Reads the secrets and removes them from the environment (os.environ by default)."""
    env: Any = os.environ if environ is None else environ
    server = env.pop(SERVER_SECRET_ENV, "")
    worker = env.pop(WORKER_SECRET_ENV, "")
    allow = env.get(ALLOW_PICKLE_ENV, "").strip() == "1"
    return Secrets(server=server, worker=worker, allow_pickle=allow)


def secret_matches(got: str, want: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    return hmac.compare_digest(got.encode("utf-8"), want.encode("utf-8"))


def _metadata_value(details: Any, key: str) -> str:
    for k, v in details.invocation_metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode("utf-8", "replace")
    return ""


_DENIED = "snakepit worker: missing or wrong " + AUTH_HEADER


async def _deny_unary(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)


async def _deny_stream(request: Any, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _DENIED)
    yield  # pragma: no cover - abort raises


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call that does not carry the server secret."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("AuthInterceptor needs a secret")
        self._secret = secret

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[Any]],
        handler_call_details: Any,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if secret_matches(_metadata_value(handler_call_details, AUTH_HEADER), self._secret):
            return handler
        log.warning("refused an unauthenticated call to %s", handler_call_details.method)
        if handler.unary_unary is not None or handler.stream_unary is not None:
            factory = (grpc.unary_unary_rpc_method_handler if handler.unary_unary is not None
                       else grpc.stream_unary_rpc_method_handler)
            return factory(_deny_unary, request_deserializer=handler.request_deserializer,
                           response_serializer=handler.response_serializer)
        factory = (grpc.unary_stream_rpc_method_handler if handler.unary_stream is not None
                   else grpc.stream_stream_rpc_method_handler)
        return factory(_deny_stream, request_deserializer=handler.request_deserializer,
                       response_serializer=handler.response_serializer)


class _MetadataClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds headers to every call on a blocking channel (those the call does not set itself)."""

    def __init__(self, headers: tuple[tuple[str, str], ...]) -> None:
        self._headers = headers

    def _details(self, details: Any) -> Any:
        metadata = list(details.metadata or ())
        present = {k for k, _ in metadata}
        metadata += [(k, v) for k, v in self._headers if k not in present]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, method: str, timeout: Any, metadata: Any, credentials: Any,
                 wait_for_ready: Any, compression: Any) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def authenticated_channel(channel: grpc.Channel, secret: str) -> grpc.Channel:
    """Wraps a blocking channel so every call carries secret (for clients of a worker)."""
    return with_metadata(channel, ((AUTH_HEADER, secret),)) if secret else channel


def with_metadata(channel: grpc.Channel, headers: tuple[tuple[str, str], ...]) -> grpc.Channel:
    """Wraps a blocking channel so every call carries headers, unless it sets them itself."""
    return grpc.intercept_channel(channel, _MetadataClientInterceptor(headers)) if headers else channel
