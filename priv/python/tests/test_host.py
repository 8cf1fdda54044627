"""The worker's side of host interaction, against a real gRPC host double."""

from __future__ import annotations

import grpc
import pytest

from conftest import EDGE, TOKEN, ToolFailed, call, start_worker, wait_until
from snakepit_bridge import snakepit_bridge_pb2 as pb2
from snakepit_bridge.heartbeat import HeartbeatConfig
from snakepit_bridge.testing import WorkerStartError


def host_args(address: str, *extra: str) -> list[str]:
    return ["--elixir-address", address, "--snakepit-instance-token", TOKEN,
            "--snakepit-worker-id", "w-1", *extra]


@pytest.fixture
def hosted(host):
    servicer, address = host
    with start_worker(EDGE, extra_args=host_args(address)) as w:
        yield servicer, w


def test_tools_are_registered_with_the_host_at_start(host):
    servicer, address = host
    with start_worker(extra_args=host_args(address)):
        wait_until(lambda: servicer.received("RegisterTools"))
        (request, metadata), = servicer.received("RegisterTools")
        assert request.worker_id == "w-1"
        assert {"ping", "stream_count", "call_host"} <= {t.name for t in request.tools}
        assert metadata["x-snakepit-instance-token"] == TOKEN
        assert servicer.received("Ping")[0][0].message == "connection_test"


def test_call_host_tool_round_trips_json_values(hosted):
    servicer, w = hosted
    payload = {"s": "text", "b": True, "f": 2.5, "i": 3, "l": [1, "two", None], "m": {"k": {"x": 1}}}
    assert call(w.stub, "host_roundtrip", tool_name="identity", payload=payload, session_id="sess-7") == payload
    request, metadata = servicer.received("ExecuteElixirTool")[-1]
    assert request.session_id == "sess-7" and request.tool_name == "identity"
    assert metadata["x-snakepit-instance-token"] == TOKEN and metadata["x-snakepit-worker-id"] == "w-1"
    assert request.parameters["payload"].type_url == "type.googleapis.com/snakepit.map"
    for value in ("plain string", True, 7, 1.25):  # scalars too: the same JSON encoding as the host's
        assert call(w.stub, "host_roundtrip", tool_name="identity", payload=value) == value
    assert call(w.stub, "host_roundtrip_async", tool_name="double", payload=21) == 42


def test_showcase_call_host(host):
    servicer, address = host
    with start_worker(extra_args=host_args(address)) as w:
        assert call(w.stub, "call_host", tool="double", args={"payload": "ab"}) == "abab"
        assert call(w.stub, "call_host", tool="blob") == b"\x00\x01\x02"


def test_host_tool_error_becomes_python_exception(hosted):
    _, w = hosted
    with pytest.raises(ToolFailed) as info:
        call(w.stub, "host_roundtrip", tool_name="fail", payload=1)
    assert info.value.payload["type"] == "HostToolError"
    assert "lookup table is offline" in info.value.payload["message"]


def test_host_tools_listing(hosted):
    _, w = hosted
    assert call(w.stub, "host_tools") == ["blob", "double", "fail", "identity"]


def test_session_rpcs_are_forwarded_to_the_host(hosted):
    servicer, w = hosted
    resp = w.stub.InitializeSession(pb2.InitializeSessionRequest(session_id="abc", metadata={"k": "v"}))
    assert resp.success
    (request, metadata), = servicer.received("InitializeSession")
    assert request.session_id == "abc" and dict(request.metadata) == {"k": "v"}
    assert metadata["x-snakepit-instance-token"] == TOKEN


def test_without_host_session_rpcs_and_host_calls_fail_clearly(shared_worker):
    with pytest.raises(grpc.RpcError) as info:
        shared_worker.stub.InitializeSession(pb2.InitializeSessionRequest(session_id="abc"))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--elixir-address" in info.value.details()
    with pytest.raises(ToolFailed) as failed:
        call(shared_worker.stub, "call_host", tool="double", args={"payload": 1})
    assert failed.value.payload["type"] == "HostToolError"


def test_unreachable_host_fails_the_start():
    with pytest.raises(WorkerStartError, match="(?s)exit code 1.*did not answer Ping"):
        start_worker(extra_args=["--elixir-address", "127.0.0.1:1", "--host-connect-timeout-ms", "300"]).wait_ready()


HB = ["--heartbeat-enabled", "--heartbeat-interval-ms", "50", "--heartbeat-timeout-ms", "300",
      "--heartbeat-max-missed", "2"]


def test_dependent_worker_exits_70_when_host_stops_answering(host):
    servicer, address = host
    w = start_worker(extra_args=host_args(address, *HB)).wait_ready()
    try:
        wait_until(lambda: len(servicer.received("Heartbeat")) >= 2)
        assert w.proc.poll() is None
        servicer.heartbeat_ok = False
        assert w.wait_exit(10) == 70, w.output()
        assert "dependent worker shuts down" in w.output()
    finally:
        w.cleanup()


def test_independent_worker_keeps_running(host):
    servicer, address = host
    with start_worker(extra_args=host_args(address, *HB, "--heartbeat-independent")) as w:
        servicer.heartbeat_ok = False
        seen = len(servicer.received("Heartbeat"))
        wait_until(lambda: len(servicer.received("Heartbeat")) >= seen + 4)
        assert w.proc.poll() is None
        assert call(w.stub, "ping") == "pong"
        servicer.heartbeat_ok = True


def test_heartbeat_config_from_env_json(host):
    servicer, address = host
    env = {"SNAKEPIT_HEARTBEAT_CONFIG": '{"enabled": true, "interval_ms": 40, "max_missed_heartbeats": 1,'
                                        ' "timeout_ms": 300, "dependent": true}'}
    w = start_worker(extra_args=host_args(address), env=env).wait_ready()
    try:
        wait_until(lambda: servicer.received("Heartbeat"))
        servicer.heartbeat_ok = False
        assert w.wait_exit(10) == 70
    finally:
        w.cleanup()


@pytest.mark.parametrize("raw, message", [
    ("not json", "not JSON"),
    ("[1]", "JSON object"),
    ('{"interval_ms": 0}', "interval_ms must be positive"),
])
def test_bad_heartbeat_config_is_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        HeartbeatConfig.from_env(raw)


def test_heartbeat_flags_override_env():
    cfg = HeartbeatConfig.from_env('{"enabled": true, "interval_ms": 100, "dependent": true}')
    cfg = cfg.override(interval_ms=7, dependent=False, timeout_ms=None)
    assert (cfg.enabled, cfg.interval_ms, cfg.dependent, cfg.timeout_ms) == (True, 7, False, 10000)


def test_register_with_session_upstream_api(host):
    from snakepit_bridge import snakepit_bridge_pb2_grpc as pb2_grpc
    from snakepit_bridge.adapters.showcase import ShowcaseAdapter
    from snakepit_bridge.base_adapter import registration_accepted

    servicer, address = host
    with grpc.insecure_channel(address) as channel:
        ids = ShowcaseAdapter().register_with_session("s-1", pb2_grpc.BridgeServiceStub(channel), "w-9")
    assert "w-9:ping" in ids
    (request, _), = servicer.received("RegisterTools")
    assert request.session_id == "s-1" and request.worker_id == "w-9"
    assert registration_accepted(pb2.RegisterToolsResponse(success=False, error_message="duplicate_tool: ping"))
    assert not registration_accepted(pb2.RegisterToolsResponse(success=False, error_message="quota"))


def test_bytes_parameters_travel_as_binary_parameters(host):
    servicer, address = host
    with start_worker(extra_args=host_args(address)) as w:
        got = call(w.stub, "call_host_binary", binary={"data": b"\x01" * 1000}, tool="inspect", name="blob",
                   args={"label": "cat"}, session_id="s-b")
        assert got == {"params": {"label": "cat"}, "binary": {"blob": 1000}}
        request, metadata = servicer.received("ExecuteTool")[-1]
        assert request.session_id == "s-b" and request.binary_parameters["blob"] == b"\x01" * 1000
        assert "blob" not in request.parameters
        assert metadata["x-snakepit-instance-token"] == TOKEN
        assert call(w.stub, "call_host_binary", binary={"data": b"abc"}, tool="reverse_bytes") == b"cba"


def test_stream_host_tool_yields_decoded_items(host):
    servicer, address = host
    with start_worker(extra_args=host_args(address)) as w:
        items = call(w.stub, "stream_host", tool="feed", args={"n": 3}, session_id="s-s")
        assert items == [{"i": 0}, {"i": 1}, {"i": 2}, "héllo", {"binary_len": 2}]
        request, metadata = servicer.received("ExecuteStreamingTool")[-1]
        assert request.session_id == "s-s" and request.stream
        assert metadata["x-snakepit-instance-token"] == TOKEN


def test_stream_host_tool_failure_is_a_python_exception(host):
    _, address = host
    with start_worker(extra_args=host_args(address)) as w:
        with pytest.raises(ToolFailed) as info:
            call(w.stub, "stream_host", tool="fail_stream")
        assert info.value.payload["type"] == "HostToolError"
        assert "feed broke" in info.value.payload["message"]
