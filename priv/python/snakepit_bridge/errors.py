"""Exceptions of the bridge and the structured failure payload.

A failing tool answers ``success=false`` with ``error_message`` holding the
JSON payload built by :func:`error_payload` (README_GRPC.md, "Errors")::

    {"type": "ValueError", "bases": ["ValueError", "Exception", "BaseException"],
     "message": "...", "stacktrace": ["file:line in fn", ...],
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

# Bounds on what an error payload echoes: input (tool names, parameter
# names, values) is cut to ECHO_LIMIT characters, a message to
# MESSAGE_LIMIT, the traceback to TRACEBACK_LIMIT; lists of names to
# NAMES_LIMIT entries.
ECHO_LIMIT = 200
MESSAGE_LIMIT = 16 * 1024
TRACEBACK_LIMIT = 32 * 1024
NAMES_LIMIT = 20


def bounded(text: Any, limit: int = ECHO_LIMIT) -> str:
    """Returns text cut to limit characters, saying how much was cut."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…(+{len(text) - limit} chars)"


def bounded_names(names: Any, limit: int = NAMES_LIMIT) -> str:
    """Joins up to limit names (each bounded) with ', ', saying how many more there are."""
    items = list(names)
    shown = ", ".join(bounded(n, 64) for n in items[:limit])
    if len(items) > limit:
        shown += f", … and {len(items) - limit} more"
    return shown or "none"


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


class HostToolNotFoundError(HostToolError, ValueError):
    """The host has no tool of that name (a ValueError, as upstream's call_elixir_tool raises)."""


def error_payload(exc: BaseException, context: dict[str, Any]) -> dict[str, Any]:
    """Builds the structured failure payload for an exception raised by a tool."""
    frames = traceback.extract_tb(exc.__traceback__)[-50:]
    ctx = {k: (bounded(v) if isinstance(v, str) else v) for k, v in context.items() if v not in (None, "")}
    ctx["payload_version"] = PAYLOAD_VERSION
    return {
        "type": bounded(type(exc).__name__),
        # The class and its bases, nearest first, so the host can match a
        # KeyError as a LookupError (errors.Is with snakepit.ErrLookupError).
        "bases": [bounded(c.__name__) for c in type(exc).__mro__ if c is not object][:16],
        "message": bounded(str(exc) if str(exc) else repr(exc), MESSAGE_LIMIT),
        "stacktrace": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames],
        "traceback": bounded("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                             TRACEBACK_LIMIT),
        "context": ctx,
        "payload_version": PAYLOAD_VERSION,
    }


def error_json(exc: BaseException, context: dict[str, Any]) -> str:
    """Returns :func:`error_payload` as a JSON string."""
    return json.dumps(error_payload(exc, context), default=str)
