"""What protects a worker: its server secret, the pickle switch, bounded and typed input."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import grpc
import pytest

from conftest import EDGE, ToolFailed, call, start_worker, stream_request, wait_until
from snakepit_bridge import serialization
from snakepit_bridge import snakepit_bridge_pb2 as pb2
from snakepit_bridge import snakepit_bridge_pb2_grpc as pb2_grpc
from snakepit_bridge import snakepit_control_pb2 as control_pb2
from snakepit_bridge import snakepit_control_pb2_grpc as control_pb2_grpc


class _Touch:
    """Unpickling this runs code: it creates a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # noqa: D105
        return (Path.touch, (Path(self.path),))


def _evil(path: Path) -> bytes:
    return pickle.dumps(_Touch(str(path)))


@pytest.mark.parametrize("unix_socket", [False, True])
def test_calls_without_the_server_secret_are_refused(unix_socket):
    with start_worker(EDGE, unix_socket=unix_socket) as w:
        raw = pb2_grpc.BridgeServiceStub(w.raw_channel)
        for rpc in (lambda: raw.Ping(pb2.PingRequest(message="x"), timeout=5),
                    lambda: raw.ExecuteTool(pb2.ExecuteToolRequest(tool_name="add"), timeout=5),
                    lambda: list(raw.ExecuteStreamingTool(stream_request("add"), timeout=5)),
                    lambda: control_pb2_grpc.WorkerControlStub(w.raw_channel).Status(
                        control_pb2.StatusRequest(), timeout=5)):
            with pytest.raises(grpc.RpcError) as info:
                rpc()
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        wrong = grpc.insecure_channel(w.address)
        try:
            with pytest.raises(grpc.RpcError) as info:
                pb2_grpc.BridgeServiceStub(wrong).Ping(pb2.PingRequest(), timeout=5,
                                                       metadata=(("x-snakepit-auth", "guess"),))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            wrong.close()
        assert w.stub.Ping(pb2.PingRequest(message="x"), timeout=5).message.endswith("x")


def test_the_secrets_do_not_reach_the_tools_environment():
    with start_worker(EDGE, env={"SNAKEPIT_WORKER_SECRET": "w-secret"}) as w:
        assert call(w.stub, "env_var", name="SNAKEPIT_SERVER_SECRET") is None
        assert call(w.stub, "env_var", name="SNAKEPIT_WORKER_SECRET") is None


def test_a_pickle_that_runs_code_never_runs_by_wire_data_alone(tmp_path):
    target = tmp_path / "pwned"
    with start_worker(EDGE) as w:
        for tool_name in ("describe", "no_such_tool"):
            with pytest.raises(ToolFailed) as info:
                call(w.stub, tool_name, binary={"value": _evil(target)},
                     metadata={"binary_format:value": "pickle"})
            assert info.value.payload["type"] in ("InvalidArgumentError", "ToolNotFoundError")
    assert not target.exists()


def test_an_allowed_pickle_is_decoded_only_after_the_tool_resolves(tmp_path):
    target = tmp_path / "pwned"
    with start_worker(EDGE, env={"SNAKEPIT_ALLOW_PICKLE": "1"}) as w:
        with pytest.raises(ToolFailed) as info:
            call(w.stub, "no_such_tool", binary={"value": _evil(target)}, metadata={"binary_format:value": "pickle"})
        assert info.value.payload["type"] == "ToolNotFoundError"
        with pytest.raises(ToolFailed):  # a parameter the tool does not take is not decoded either
            call(w.stub, "add", a=1, b=2, binary={"value": _evil(target)}, metadata={"binary_format:value": "pickle"})
        assert not target.exists()


def test_declared_types_are_checked(edge_worker):
    assert call(edge_worker.stub, "add", a=1, b=2) == 3
    for bad in ({"a": [1], "b": [2]}, {"a": True, "b": 1}, {"a": 1.5, "b": 1}, {"a": "1", "b": 2}):
        with pytest.raises(ToolFailed) as info:
            call(edge_worker.stub, "add", **bad)
        assert info.value.payload["type"] == "InvalidArgumentError", bad
        assert "expected int" in info.value.payload["message"]
    good = dict(f=1, s="x", flag=False, items=[1], opts={}, maybe=None, either="e")
    assert call(edge_worker.stub, "typed", **good) == "ok"
    assert call(edge_worker.stub, "typed", **{**good, "maybe": 3, "either": 4, "nothing": None}) == "ok"
    assert call(edge_worker.stub, "typed", **good, binary={"raw": b"\x00"}) == "ok"
    for field, value in (("f", "1"), ("s", 1), ("flag", 1), ("items", {}), ("opts", []), ("maybe", "x"),
                         ("either", 1.5)):
        with pytest.raises(ToolFailed) as info:
            call(edge_worker.stub, "typed", **{**good, field: value})
        assert f"parameter {field!r}" in info.value.payload["message"]


def test_over_deep_arguments_are_invalid_input(edge_worker):
    from google.protobuf import any_pb2

    deep = ("[" * 5000 + "]" * 5000).encode()
    req = pb2.ExecuteToolRequest(tool_name="describe", parameters={
        "value": any_pb2.Any(type_url="type.googleapis.com/google.protobuf.StringValue", value=deep)})
    resp = edge_worker.stub.ExecuteTool(req, timeout=10)
    assert not resp.success
    assert '"InvalidArgumentError"' in resp.error_message and "nested too deeply" in resp.error_message


def test_error_replies_echo_input_within_bounds(edge_worker):
    name = "x" * (1 << 20)
    resp = edge_worker.stub.ExecuteTool(pb2.ExecuteToolRequest(tool_name=name), timeout=10)
    assert not resp.success and "ToolNotFoundError" in resp.error_message
    assert len(resp.error_message) < 8 * 1024


def test_status_lists_a_cancelled_sync_tool_until_it_returns(edge_worker):
    control = control_pb2_grpc.WorkerControlStub(edge_worker.channel)
    req = pb2.ExecuteToolRequest(tool_name="spin", metadata={"snakepit_call_id": "c-2"})
    req.parameters["seconds"].CopyFrom(serialization.encode_any(1.5))
    future = edge_worker.stub.ExecuteTool.future(req, timeout=30)

    def running() -> list:
        return [c for c in control.Status(control_pb2.StatusRequest(), timeout=5).running if c.call_id == "c-2"]

    wait_until(running)
    future.cancel()
    started = time.monotonic()
    listed = wait_until(lambda: [c for c in running() if c.cancelled])
    assert listed[0].tool_name == "spin"
    wait_until(lambda: not running(), timeout=10)
    assert time.monotonic() - started > 0.5  # it stayed listed while the thread spun
    assert control.Status(control_pb2.StatusRequest(), timeout=5).pid > 0
    assert os.getpid() != control.Status(control_pb2.StatusRequest(), timeout=5).pid
