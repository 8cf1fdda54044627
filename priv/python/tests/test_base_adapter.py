"""Tool discovery, registrations and argument binding (no process needed)."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Iterator, Optional

import pytest

from snakepit_bridge import BaseAdapter, InvalidArgumentError, ToolNotFoundError, serialization, tool
from snakepit_bridge.adapters.showcase import ShowcaseAdapter


class Sample(BaseAdapter):
    @tool(description="Predict a label")
    def predict(self, text: str, top_k: int = 3, threshold: Optional[float] = None) -> dict:
        return {"text": text, "top_k": top_k}

    @tool
    async def generate(self, prompt: str) -> AsyncIterator[str]:
        yield prompt

    @tool
    def lines(self, n: int) -> Iterator[int]:
        yield from range(n)

    @tool(name="renamed", thread_sensitive=True)
    def original(self, **kwargs: Any) -> dict:
        """Docstring becomes the description."""
        return kwargs

    def not_a_tool(self) -> None:
        pass


def test_discovers_only_marked_methods():
    assert sorted(Sample.tools()) == ["generate", "lines", "predict", "renamed"]


def test_parameter_specs_from_type_hints_and_defaults():
    regs = {r.name: r for r in Sample().get_tools()}
    params = {p.name: p for p in regs["predict"].parameters}
    assert regs["predict"].description == "Predict a label"
    assert (params["text"].type, params["text"].required) == ("str", True)
    assert (params["top_k"].type, params["top_k"].required) == ("int", False)
    assert json.loads(params["top_k"].validation_json) == {"default": 3}
    assert serialization.decode_any(params["top_k"].default_value) == 3
    assert params["threshold"].type == "float"  # Optional[float] unwraps
    assert serialization.decode_any(params["threshold"].default_value) is None
    meta = regs["predict"].metadata
    assert meta["adapter_class"] == "Sample" and meta["module"] == __name__
    assert meta["function"] == "predict"


def test_streaming_is_detected_from_generators():
    regs = {r.name: r for r in Sample().get_tools()}
    assert regs["generate"].supports_streaming and regs["generate"].metadata["is_async"] == "true"
    assert regs["lines"].supports_streaming and regs["lines"].metadata["is_async"] == "false"
    assert not regs["predict"].supports_streaming


def test_tool_name_override_docstring_and_thread_sensitive():
    info = Sample.tools()["renamed"]
    assert info.function_name == "original"
    assert info.description == "Docstring becomes the description."
    assert info.thread_sensitive and info.var_kwargs


def test_duplicate_tool_names_are_refused():
    class Dup(BaseAdapter):
        @tool(name="x")
        def a(self) -> None: ...

        @tool(name="x")
        def b(self) -> None: ...

    with pytest.raises(TypeError, match="two tools are named 'x'"):
        Dup.tools()


def test_bind_reports_missing_and_unknown_parameters():
    adapter = Sample()
    info = adapter.resolve("predict")
    with pytest.raises(InvalidArgumentError, match="missing required parameter.*text"):
        adapter.bind(info, {})
    with pytest.raises(InvalidArgumentError, match="unknown parameter.*colour.*takes: text, top_k, threshold"):
        adapter.bind(info, {"text": "a", "colour": "red"})
    assert adapter.bind(adapter.resolve("renamed"), {"anything": 1}) == {"anything": 1}


def test_unknown_tool_lists_the_tools():
    with pytest.raises(ToolNotFoundError, match="no tool 'nope'.*generate, lines, predict, renamed"):
        Sample().resolve("nope")


def test_default_execute_tool_dispatches():
    assert Sample().execute_tool("predict", {"text": "hi"}) == {"text": "hi", "top_k": 3}


def test_showcase_has_every_documented_tool():
    expected = {"ping", "echo", "add", "sleep", "stream_count", "echo_binary", "raise_error",
                "allocate_mb", "crash", "whoami", "call_host"}
    assert expected <= set(ShowcaseAdapter.tools())


# -- upstream 0.13's adapter-author surface --------------------------------------

class AssignsContext(BaseAdapter):
    """Assigns session_context as upstream's ShowcaseAdapter does."""

    def __init__(self) -> None:
        super().__init__()
        self.session_context = None

    def set_session_context(self, session_context: Any) -> None:
        self.session_context = session_context

    @tool
    def which(self) -> Optional[str]:
        return self.session_id


class _Ctx:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id


def test_session_context_is_assignable_and_per_call():
    import asyncio
    import contextvars

    adapter = AssignsContext()
    assert adapter.session_context is None and adapter._tools_cache is None

    async def call(sid: str) -> tuple[Optional[str], Optional[str], Optional[str]]:
        adapter.set_session_context(_Ctx(sid))
        await asyncio.sleep(0.01)  # the other call assigns its own meanwhile
        return adapter.session_context.session_id, adapter._session_context.session_id, adapter.which()

    async def both() -> list[Any]:
        return await asyncio.gather(call("a"), call("b"))

    assert contextvars.copy_context().run(asyncio.run, both()) == [("a", "a", "a"), ("b", "b", "b")]
    adapter._session_context = _Ctx("private")
    assert adapter.session_context.session_id == "private" and adapter.session_id == "private"
    with pytest.raises(AttributeError):
        adapter.session_id = "x"  # read-only, as upstream's


def test_tool_metadata_has_upstreams_fields():
    meta = Sample.predict._tool_metadata
    assert (meta.description, meta.supports_streaming, meta.required_variables) == ("Predict a label", None, [])
    Sample.tools()
    assert [p.name for p in meta.parameters] == ["text", "top_k", "threshold"]


def test_call_tool_checks_arguments_and_calls_the_method():
    adapter = Sample()
    assert adapter.call_tool("predict", text="x", top_k=1) == {"text": "x", "top_k": 1}
    with pytest.raises(InvalidArgumentError):
        adapter.call_tool("predict", top_k=1)
    with pytest.raises(ToolNotFoundError):
        adapter.call_tool("nope")


class _AsyncStub:
    def __init__(self) -> None:
        self.requests: list[Any] = []

    async def RegisterTools(self, request: Any) -> Any:
        from snakepit_bridge import snakepit_bridge_pb2 as pb2
        self.requests.append(request)
        return pb2.RegisterToolsResponse(success=False, error_message="duplicate_tool: predict",
                                         tool_ids={t.name: "id-" + t.name for t in request.tools})


def test_register_with_session_async_counts_duplicate_as_success():
    import asyncio

    stub = _AsyncStub()
    ids = asyncio.run(Sample().register_with_session_async("s1", stub))
    assert sorted(ids) == ["id-generate", "id-lines", "id-predict", "id-renamed"]
    assert stub.requests[0].session_id == "s1"


def test_upstreams_import_paths_resolve():
    import snakepit_bridge
    import snakepit_bridge_pb2
    import snakepit_bridge_pb2_grpc
    from snakepit_bridge import (HeartbeatClient, HeartbeatConfig, SessionContext,  # noqa: F401
                                 configure_logging, get_logger)
    from snakepit_bridge.base_adapter import BaseAdapter as Base, tool as tool_  # noqa: F401

    assert snakepit_bridge_pb2 is snakepit_bridge.snakepit_bridge_pb2
    assert snakepit_bridge_pb2_grpc is snakepit_bridge.snakepit_bridge_pb2_grpc
    assert get_logger("x").name == "x"
