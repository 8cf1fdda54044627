"""Unary tools over real gRPC: values, errors, binary data, threads, concurrency."""

from __future__ import annotations

import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from conftest import EDGE, ToolFailed, call, start_worker, stream_request
from snakepit_bridge import serialization
from snakepit_bridge import snakepit_bridge_pb2 as pb2


def test_ping_answers_like_upstream(shared_worker):
    assert shared_worker.stub.Ping(pb2.PingRequest(message="hello")).message == "Pong from Python: hello"


def test_showcase_basics(shared_worker):
    stub = shared_worker.stub
    assert call(stub, "ping") == "pong"
    assert call(stub, "add", a=2, b=3) == 5
    assert call(stub, "add", a=0.5, b=0.25) == 0.75
    nested = {"s": "ü", "n": [1, 2.5, None, True], "m": {"deep": {"x": -1}}}
    assert call(stub, "echo", **nested) == nested
    assert call(stub, "sleep", ms=5) == {"slept_ms": 5}


def test_response_fields(shared_worker):
    resp = shared_worker.stub.ExecuteTool(pb2.ExecuteToolRequest(tool_name="ping"))
    assert resp.success and resp.execution_time_ms >= 0
    assert resp.result.type_url == "type.googleapis.com/snakepit.string"
    assert resp.metadata["worker_id"].startswith("python-")


def test_python_exception_becomes_structured_payload(shared_worker):
    with pytest.raises(ToolFailed) as info:
        call(shared_worker.stub, "raise_error", kind="value", message="bad shape",
             session_id="s-1", metadata={"correlation_id": "c-9"})
    p = info.value.payload
    assert p["type"] == "ValueError" and p["message"] == "bad shape"
    assert "Traceback (most recent call last)" in p["traceback"] and "raise_error" in p["traceback"]
    assert any("raise_error" in frame for frame in p["stacktrace"])
    ctx = p["context"]
    assert ctx["tool_name"] == "raise_error" and ctx["session_id"] == "s-1"
    assert ctx["call_type"] == "unary" and ctx["function"] == "raise_error"
    assert ctx["correlation_id"] == "c-9" and ctx["payload_version"] == 1
    assert ctx["python_module"] == "snakepit_bridge.adapters.showcase.adapter"


@pytest.mark.parametrize("kind, py_type, base", [("key", "KeyError", "LookupError"),
                                                 ("zero_division", "ZeroDivisionError", "ArithmeticError"),
                                                 ("timeout", "TimeoutError", "OSError")])
def test_exception_types_are_named(shared_worker, kind, py_type, base):
    with pytest.raises(ToolFailed) as info:
        call(shared_worker.stub, "raise_error", kind=kind)
    assert info.value.payload["type"] == py_type
    bases = info.value.payload["bases"]
    assert bases[0] == py_type and base in bases and bases[-1] == "BaseException"


def test_unknown_tool_and_bad_arguments(shared_worker):
    with pytest.raises(ToolFailed) as info:
        call(shared_worker.stub, "no_such_tool")
    assert info.value.payload["type"] == "ToolNotFoundError"
    assert "ping" in info.value.payload["message"]
    with pytest.raises(ToolFailed) as info:
        call(shared_worker.stub, "add", a=1)
    assert info.value.payload["type"] == "InvalidArgumentError" and "b" in info.value.payload["message"]
    with pytest.raises(ToolFailed) as info:
        call(shared_worker.stub, "add", a=1, b=2, c=3)
    assert "unknown parameter" in info.value.payload["message"]


def test_undecodable_parameter_is_invalid_argument(shared_worker):
    req = pb2.ExecuteToolRequest(tool_name="echo")
    req.parameters["x"].type_url = "type.googleapis.com/snakepit.map"
    req.parameters["x"].value = b"\xff{"
    resp = shared_worker.stub.ExecuteTool(req)
    assert not resp.success and '"InvalidArgumentError"' in resp.error_message


def test_binary_round_trip_10mb_intact(shared_worker):
    data = bytes(range(256)) * (10 * 4096)  # 10 MiB
    resp = shared_worker.stub.ExecuteTool(pb2.ExecuteToolRequest(
        tool_name="echo_binary", binary_parameters={"data": data}), timeout=30)
    assert resp.success and resp.binary_result == data
    assert resp.result.type_url == "type.googleapis.com/snakepit.binary"
    assert resp.metadata["result_encoding"] == "binary"
    assert b'"size":10485760' in resp.result.value


def test_stream_bytes_sends_binary_chunks(shared_worker):
    stub = shared_worker.stub
    chunks = list(stub.ExecuteStreamingTool(stream_request("stream_bytes", n=3, size=1000), timeout=10))
    data, final = chunks[:-1], chunks[-1]
    assert len(data) == 3 and all(len(c.data) == 1000 and c.data == data[0].data for c in data)
    assert data[0].data[:3] == b"\x00\x01\x02" and data[0].data[999] == 999 % 256
    assert all(c.metadata["encoding"] == "binary" and not c.is_final for c in data)
    assert final.is_final and final.data == b"" and final.metadata["chunks_sent"] == "3"
    default = list(stub.ExecuteStreamingTool(stream_request("stream_bytes", n=1), timeout=10))
    assert len(default) == 2 and len(default[0].data) == 65536
    assert [c.is_final for c in stub.ExecuteStreamingTool(stream_request("stream_bytes", n=0), timeout=10)] == [True]
    with pytest.raises(grpc.RpcError) as info:
        list(stub.ExecuteStreamingTool(stream_request("stream_bytes", n=1, size=-1), timeout=10))
    assert "ValueError" in info.value.details()


def test_binary_parameters_arrive_as_bytes_and_pickle_needs_the_pool_setting(edge_worker):
    got = call(edge_worker.stub, "describe", binary={"blob": b"\x00abc"})
    assert got["blob_type"] == "bytes" and got["blob_len"] == 4
    pickled = pickle.dumps({"a": (1, 2)})
    got = call(edge_worker.stub, "describe", binary={"value": pickled})
    assert got["value_type"] == "bytes"  # no binary_format: raw bytes, never unpickled
    with pytest.raises(ToolFailed) as info:  # the metadata alone cannot turn pickle on
        call(edge_worker.stub, "describe", binary={"value": pickled}, metadata={"binary_format:value": "pickle"})
    assert info.value.payload["type"] == "InvalidArgumentError"
    assert "does not allow" in info.value.payload["message"]


def test_pickle_when_the_pool_allows_it():
    with start_worker(EDGE, env={"SNAKEPIT_ALLOW_PICKLE": "1"}) as w:
        pickled = pickle.dumps({"a": (1, 2)})
        got = call(w.stub, "describe", binary={"value": pickled}, metadata={"binary_format:value": "pickle"})
        assert got == {"value_type": "dict", "value": {"a": [1, 2]}, "blob_type": "NoneType", "blob_len": None}
        with pytest.raises(ToolFailed) as info:
            call(w.stub, "describe", binary={"value": b"not a pickle"}, metadata={"binary_format:value": "pickle"})
        assert "not a valid pickle" in info.value.payload["message"]


@pytest.mark.parametrize(
    "binary, params, metadata, message",
    [
        ({"value": b"x"}, {"value": 1}, {}, "both in parameters and in binary_parameters"),
        ({"value": b"not a pickle"}, {}, {"binary_format:value": "pickle"}, "does not allow"),
        ({"nope": b"x"}, {}, {}, "has no parameter 'nope'"),
        ({"value": b"x"}, {}, {"binary_format:value": "msgpack"}, "unknown binary_format"),
    ],
)
def test_bad_binary_parameters(edge_worker, binary, params, metadata, message):
    with pytest.raises(ToolFailed) as info:
        call(edge_worker.stub, "describe", binary=binary, metadata=metadata, **params)
    assert info.value.payload["type"] == "InvalidArgumentError"
    assert message in info.value.payload["message"]


def test_bytes_result_is_binary_not_str(edge_worker):
    resp = edge_worker.stub.ExecuteTool(pb2.ExecuteToolRequest(
        tool_name="binary_with_meta", parameters={}), timeout=10)
    assert not resp.success  # n is required
    resp = edge_worker.stub.ExecuteTool(pb2.ExecuteToolRequest(
        tool_name="binary_with_meta", parameters=serialization.encode_params({"n": 2})))
    assert resp.binary_result == bytes(range(256)) * 2
    assert serialization.decode_any(resp.result) == {"dtype": "uint8", "shape": [2, 256]}


def test_special_floats(edge_worker):
    assert math.isnan(call(edge_worker.stub, "nan"))
    assert call(edge_worker.stub, "neg_inf") == -math.inf
    assert call(edge_worker.stub, "special_floats") == {
        "nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "one": 1.5, "s": "NaN"}


def test_unserializable_result_is_an_encoding_error(edge_worker):
    for tool_name in ("unserializable", "bad_bytes_inside"):
        with pytest.raises(ToolFailed) as info:
            call(edge_worker.stub, tool_name)
        assert info.value.payload["type"] == "EncodingError", tool_name


def test_unserializable_result_uses_marker_when_the_adapter_opts_in():
    with start_worker("bridge_test_adapters.GracefulEdge") as w:
        out = call(w.stub, "unserializable")
        assert out["ok"] == 1 and out["point"] == {"x": 1, "y": 2} and out["tags"] == ["a"]
        assert out["opaque"]["__ffi_unserializable__"] is True
        assert out["opaque"]["__type__"] == "bridge_test_adapters.Opaque"


def test_sync_tools_run_in_threads_unless_thread_sensitive(edge_worker):
    assert call(edge_worker.stub, "thread_name").startswith("snakepit-tool")
    assert call(edge_worker.stub, "thread_name", metadata={"thread_sensitive": "true"}) == "MainThread"
    assert call(edge_worker.stub, "main_thread_name") == "MainThread"


def test_thread_sensitive_env_matches_module_function():
    env = {"SNAKEPIT_THREAD_SENSITIVE": "other.mod, bridge_test_adapters.thread_name"}
    with start_worker("bridge_test_adapters.EdgeAdapter", env=env) as w:
        assert call(w.stub, "thread_name") == "MainThread"
        assert call(w.stub, "init_count") == 1
    with start_worker("bridge_test_adapters.EdgeAdapter",
                      env={"SNAKEPIT_THREAD_SENSITIVE": "bridge_test_adapters"}) as w:
        assert call(w.stub, "thread_name") == "MainThread"


def test_async_tools_run_concurrently(edge_worker):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: call(edge_worker.stub, "rendezvous", group="g1", peers=4), range(4)))
    assert results == [4, 4, 4, 4]


def test_sync_tools_do_not_block_the_server(edge_worker):
    with ThreadPoolExecutor(1) as pool:
        blocked = pool.submit(call, edge_worker.stub, "block", name="gate1")
        # While a sync tool blocks its thread, Ping and other sync tools are still answered.
        assert edge_worker.stub.Ping(pb2.PingRequest(message="x"), timeout=5).message.endswith("x")
        assert call(edge_worker.stub, "thread_name").startswith("snakepit-tool")
        assert not blocked.done()
        assert call(edge_worker.stub, "release", name="gate1") is True
        assert blocked.result(timeout=10) == "released"


def test_initialize_runs_once_per_process(edge_worker):
    for _ in range(3):
        assert call(edge_worker.stub, "init_count") == 1


def test_upstream_style_adapter_with_own_execute_tool():
    with start_worker("bridge_test_adapters.LegacyAdapter") as w:
        assert call(w.stub, "shout", text="hi") == "HI"
        with pytest.raises(ToolFailed) as info:
            call(w.stub, "numbers")
        assert info.value.payload["type"] == "StreamingMismatchError"
        chunks = list(w.stub.ExecuteStreamingTool(pb2.ExecuteToolRequest(tool_name="numbers")))
        assert [c.data for c in chunks[:-1]] == [b"1", b"2", b"3"] and chunks[-1].is_final


def test_spawn_detached_leaves_the_group_and_keeps_the_markers(shared_worker):
    import os
    import signal
    pid = call(shared_worker.stub, "spawn_detached", seconds=30)
    try:
        assert os.getpgid(pid) == pid, "its own session and group"
        assert os.getpgid(pid) != os.getpgid(shared_worker.proc.pid)
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read().split(b"\0")
        assert any(e.startswith(b"PATH=") for e in env), "the worker's environment is inherited"
    finally:
        os.kill(pid, signal.SIGKILL)
