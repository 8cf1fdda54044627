"""Exceptions of the bridge and the structured failure payload.

A failing tool answers ``success=false`` with ``error_message`` holding the
JSON payload built by :func:`error_payload` (README_GRPC.md, "Errors")::

    {"type": "ValueError", "message": "...", "stacktrace": ["file:line in fn", ...],
     "traceback": "Traceback (most recent call last): ...",
     "context": {"tool_name": ..., "session_id": ..., "python_module": ...,
                 "function": ..., "call_type": "unary"|"stream", "payload_version": 1},
     "payload_version": 1}
"""

from __future__ import annotations

import json
import traceback
from typing import Any

PAYLOAD_VERSION = 1


class BridgeError(Exception):
    """Base class of the errors the bridge itself raises."""


class ToolNotFoundError(BridgeError, LookupError):
    """The adapter has no tool of the requested name."""


class InvalidArgumentError(BridgeError, ValueError):
    """The call's arguments do not fit the tool (missing, unknown, undecodable)."""


class StreamingMismatchError(BridgeError, TypeError):
    """A streaming tool was called through the unary endpoint."""


class HostToolError(BridgeError, RuntimeError):
    """A host (Go) tool called from Python failed; the message is the host's error text."""

    def __init__(self, message: str, *, tool_name: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.details = details


def error_payload(exc: BaseException, context: dict[str, Any]) -> dict[str, Any]:
    """Builds the structured failure payload for an exception raised by a tool."""
    frames = traceback.extract_tb(exc.__traceback__)
    ctx = {k: v for k, v in context.items() if v not in (None, "")}
    ctx["payload_version"] = PAYLOAD_VERSION
    return {
        "type": type(exc).__name__,
        "message": str(exc) if str(exc) else repr(exc),
        "stacktrace": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames],
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "context": ctx,
        "payload_version": PAYLOAD_VERSION,
    }


def error_json(exc: BaseException, context: dict[str, Any]) -> str:
    """Returns :func:`error_payload` as a JSON string."""
    return json.dumps(error_payload(exc, context), default=str)
