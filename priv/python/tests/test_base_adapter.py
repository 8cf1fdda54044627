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
