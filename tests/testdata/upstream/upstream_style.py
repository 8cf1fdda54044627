"""Adapters written the way upstream Snakepit 0.13's docs tell adapter authors to.

Written from UPSTREAM.md's "Adapter-author surface" (not copied from
upstream): the imports, ``self.session_context`` assigned in ``__init__`` and
in an own ``set_session_context``, an own ``execute_tool(tool_name,
arguments, context)`` that dispatches to handlers and then to
``self.call_tool``, ``call_elixir_tool``, ``register_with_session``,
``get_tools``, the top-level generated protobuf modules, and stream chunks
as objects with ``data``, ``is_final`` and ``metadata``. The Go host runs
them unchanged in tests/upstream_adapters_e2e_test.go.
"""

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import snakepit_bridge_pb2 as pb2  # upstream's top-level import path
import snakepit_bridge_pb2_grpc  # noqa: F401 - adapters import it so; it must resolve

from snakepit_bridge import SessionContext, get_logger
from snakepit_bridge.base_adapter import BaseAdapter, tool

logger = get_logger(__name__)


@dataclass
class StreamChunk:
    """Upstream's ShowcaseAdapter defines its own chunk type like this."""

    data: Any
    is_final: bool = False
    metadata: Dict[str, Any] = field(default_factory=dict)


class UpstreamStyleAdapter(BaseAdapter):
    """Dispatches itself, keeps the context in a plain-looking attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.session_context = None  # upstream's ShowcaseAdapter does this
        self.initialized = False
        self.contexts_seen = 0
        self._handlers = {
            "ping": self._ping,
            "session_echo": self._session_echo,
        }

    def set_session_context(self, session_context: Optional[SessionContext]) -> None:
        self.session_context = session_context
        self.contexts_seen += 1

    def initialize(self) -> None:
        self.initialized = True

    def cleanup(self) -> None:
        logger.info("upstream-style adapter cleaned up")

    def execute_tool(self, tool_name: str, arguments: Dict[str, Any], context: Any) -> Any:
        handler = self._handlers.get(tool_name)
        if handler is not None:
            return handler(context, **arguments)
        if tool_name == "count_chunks":
            return self._count_chunks(**arguments)
        if tool_name in {t.name for t in self.get_tools()}:
            return self.call_tool(tool_name, **arguments)
        raise ValueError(f"Unknown tool: {tool_name}")

    # -- handlers in upstream's style (context first) --------------------------
    def _ping(self, context: Any, message: str = "ping") -> Dict[str, Any]:
        return {"message": message, "initialized": self.initialized, "timestamp": time.time()}

    def _session_echo(self, context: Any, value: Any = None) -> Dict[str, Any]:
        return {
            "value": value,
            "context_session": context.session_id,
            "attribute_session": self.session_context.session_id,
            "private_session": self._session_context.session_id,
            "property_session": self.session_id,
            "same_object": context is self.session_context,
            "contexts_seen": self.contexts_seen,
        }

    def _count_chunks(self, count: int = 3):
        for i in range(count):
            yield StreamChunk(data={"i": i, "square": i * i}, is_final=False, metadata={"n": str(i)})
        yield StreamChunk(data={"done": True}, is_final=True)

    # -- tools reached through self.call_tool --------------------------------------
    @tool(description="Adds two numbers")
    def add(self, a: float, b: float) -> float:
        return a + b

    @tool(description="Sleeps, then echoes (async)")
    async def slow_echo(self, text: str, delay_ms: int = 10) -> str:
        await asyncio.sleep(delay_ms / 1000)
        return text

    @tool(description="Hashes binary input")
    def digest(self, blob: bytes) -> Dict[str, Any]:
        return {"sha256": hashlib.sha256(blob).hexdigest(), "size": len(blob)}

    @tool(description="Returns the input bytes reversed")
    def reverse_bytes(self, blob: bytes) -> bytes:
        return bytes(reversed(blob))

    @tool(description="Streams words", supports_streaming=True)
    def words(self, text: str):
        for w in text.split():
            yield StreamChunk(data=w)

    @tool(description="Calls a host tool by upstream's name")
    def ask_host(self, name: str, value: int) -> Any:
        return self.session_context.call_elixir_tool(name, value=value)

    @tool(description="Lists the host's tools")
    def host_tool_names(self) -> list:
        return sorted(self.session_context.elixir_tools)

    @tool(description="Calls a host tool that does not exist")
    def ask_missing(self) -> str:
        try:
            self.session_context.call_elixir_tool("no_such_tool_here")
        except ValueError as exc:  # upstream raises ValueError for an unknown tool
            return "ValueError: " + str(exc)
        return "no error"

    @tool(description="Registers the tools again, as upstream adapters do")
    def register_again(self) -> Dict[str, Any]:
        ctx = self.session_context
        ids = self.register_with_session(ctx.session_id, ctx.stub)
        return {"registered": len(ids)}

    @tool(description="Describes the tools with the top-level protobuf module")
    def describe(self) -> Dict[str, Any]:
        regs = self.get_tools()
        own = pb2.ToolRegistration(name="x", description="built by the adapter")
        return {
            "names": sorted(r.name for r in regs),
            "all_registrations": all(isinstance(r, pb2.ToolRegistration) for r in regs),
            "own": own.description,
            "metadata": json.loads(json.dumps(dict(next(r for r in regs if r.name == "add").metadata))),
            "decorator": {
                "description": self.add._tool_metadata.description,
                "supports_streaming": self.words._tool_metadata.supports_streaming,
            },
        }

    @tool(description="Fails the way an adapter's own code fails")
    def explode(self, reason: str) -> None:
        raise RuntimeError(f"exploded: {reason}")


class PlainExecuteToolAdapter:
    """No BaseAdapter at all: only execute_tool, as the oldest adapters are."""

    def execute_tool(self, tool_name: str, arguments: Dict[str, Any], context: Any) -> Any:
        if tool_name == "shout":
            return str(arguments["text"]).upper()
        if tool_name == "numbers":
            return iter([1, 2, 3])
        raise AttributeError(f"no tool {tool_name}")
