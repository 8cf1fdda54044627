"""Fixtures: real worker processes on free ports / unix sockets, and a host double.

The host double is a real gRPC server (in this test process) serving the
host's side of BridgeService: Ping, Heartbeat, RegisterTools,
GetExposedElixirTools, ExecuteElixirTool and the session RPCs. It records
what it received so tests can check the worker's side of the contract.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import grpc
import pytest

TESTS_DIR = Path(__file__).resolve().parent
PYTHON_DIR = TESTS_DIR.parent
sys.path.insert(0, str(PYTHON_DIR))
sys.path.insert(0, str(TESTS_DIR))

from snakepit_bridge import serialization  # noqa: E402
from snakepit_bridge import snakepit_bridge_pb2 as pb2  # noqa: E402
from snakepit_bridge import snakepit_bridge_pb2_grpc as pb2_grpc  # noqa: E402
from snakepit_bridge.testing import WorkerProcess  # noqa: E402

SHOWCASE = "snakepit_bridge.adapters.showcase.ShowcaseAdapter"
EDGE = "bridge_test_adapters.EdgeAdapter"
TOKEN = "test-token-1"


class ToolFailed(Exception):
    """A tool answered success=false; payload is the decoded error JSON."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message"))
        self.payload = payload


def call(stub: Any, tool: str, /, binary: Optional[dict[str, bytes]] = None,
         metadata: Optional[dict[str, str]] = None, session_id: str = "", **params: Any) -> Any:
    """Runs a tool over real gRPC; returns the decoded value (bytes for binary results)."""
    resp = stub.ExecuteTool(pb2.ExecuteToolRequest(
        session_id=session_id, tool_name=tool, parameters=serialization.encode_params(params),
        binary_parameters=binary or {}, metadata=metadata or {},
    ), timeout=30)
    if not resp.success:
        raise ToolFailed(json.loads(resp.error_message))
    if resp.metadata.get("result_encoding") == "binary":
        return resp.binary_result
    return serialization.decode_any(resp.result)


def stream_request(tool: str, metadata: Optional[dict[str, str]] = None, **params: Any) -> Any:
    """An ExecuteToolRequest for the streaming endpoint."""
    return pb2.ExecuteToolRequest(tool_name=tool, parameters=serialization.encode_params(params),
                                  metadata=metadata or {}, stream=True)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Polls predicate until it returns a truthy value or timeout passes (then fails)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s (last value {last!r})")


def start_worker(adapter: str = SHOWCASE, **kwargs: Any) -> WorkerProcess:
    """Starts a worker with /usr/bin/python3-compatible interpreter (this one) and the tests on PYTHONPATH."""
    env = dict(kwargs.pop("env", {}) or {})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    env.setdefault("SNAKEPIT_LOG_LEVEL", "info")
    return WorkerProcess(adapter, env=env, **kwargs)


@pytest.fixture
def worker() -> Iterator[WorkerProcess]:
    """A showcase worker on a free TCP port."""
    with start_worker() as w:
        yield w


@pytest.fixture(scope="module")
def shared_worker() -> Iterator[WorkerProcess]:
    """A showcase worker shared by a module's read-only tests."""
    with start_worker() as w:
        yield w


@pytest.fixture(scope="module")
def edge_worker() -> Iterator[WorkerProcess]:
    """An EdgeAdapter worker shared by a module's tests."""
    with start_worker(EDGE) as w:
        yield w


class HostDouble(pb2_grpc.BridgeServiceServicer):
    """The host's side of the protocol, recording every call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: list[tuple[str, Any, dict[str, str]]] = []
        self.heartbeat_ok = True
        self.tools: dict[str, Callable[[dict[str, Any]], Any]] = {
            "double": lambda p: p["payload"] * 2,
            "identity": lambda p: p["payload"],
            "fail": lambda p: (_ for _ in ()).throw(RuntimeError("lookup table is offline")),
            "blob": lambda p: b"\x00\x01\x02",
        }

    def _record(self, name: str, request: Any, context: Any) -> None:
        with self.lock:
            self.calls.append((name, request, dict(context.invocation_metadata())))

    def received(self, name: str) -> list[tuple[Any, dict[str, str]]]:
        with self.lock:
            return [(r, m) for n, r, m in self.calls if n == name]

    def Ping(self, request: Any, context: Any) -> Any:
        self._record("Ping", request, context)
        return pb2.PingResponse(message=f"pong: {request.message}")

    def Heartbeat(self, request: Any, context: Any) -> Any:
        self._record("Heartbeat", request, context)
        if not self.heartbeat_ok:
            context.abort(grpc.StatusCode.UNAVAILABLE, "host is going away")
        return pb2.HeartbeatResponse(session_valid=True)

    def RegisterTools(self, request: Any, context: Any) -> Any:
        self._record("RegisterTools", request, context)
        return pb2.RegisterToolsResponse(success=True, tool_ids={t.name: f"{request.worker_id}:{t.name}"
                                                                 for t in request.tools})

    def InitializeSession(self, request: Any, context: Any) -> Any:
        self._record("InitializeSession", request, context)
        return pb2.InitializeSessionResponse(success=True)

    def ExecuteTool(self, request: Any, context: Any) -> Any:
        """The host's ExecuteTool: here it reports what arrived, binary parameters included."""
        self._record("ExecuteTool", request, context)
        params = serialization.decode_params(request.parameters)
        if request.tool_name == "reverse_bytes":
            return pb2.ExecuteToolResponse(success=True, binary_result=bytes(reversed(request.binary_parameters["data"])))
        seen = {"params": params, "binary": {k: len(v) for k, v in request.binary_parameters.items()}}
        return pb2.ExecuteToolResponse(success=True, result=serialization.encode_any(seen))

    def ExecuteStreamingTool(self, request: Any, context: Any) -> Iterator[Any]:
        """A streaming host tool: json, text and binary items, then the host's closing chunk."""
        self._record("ExecuteStreamingTool", request, context)
        n = int(serialization.decode_params(request.parameters).get("n", 2))
        for i in range(n):
            yield pb2.ToolChunk(chunk_id=f"t-{i}", data=json.dumps({"i": i}).encode(), metadata={"encoding": "json"})
        yield pb2.ToolChunk(chunk_id="t-text", data="héllo".encode(), metadata={"encoding": "text"})
        yield pb2.ToolChunk(chunk_id="t-bin", data=b"\x00\xff", metadata={"encoding": "binary"})
        if request.tool_name == "fail_stream":
            context.abort(grpc.StatusCode.INTERNAL, json.dumps({"type": "HostToolError", "message": "feed broke"}))
        yield pb2.ToolChunk(chunk_id="t-final", is_final=True,
                            metadata={"encoding": "empty", "synthetic_final": "true"})

    def GetExposedElixirTools(self, request: Any, context: Any) -> Any:
        self._record("GetExposedElixirTools", request, context)
        return pb2.GetExposedElixirToolsResponse(tools=[pb2.ToolSpec(name=n) for n in self.tools])

    def ExecuteElixirTool(self, request: Any, context: Any) -> Any:
        self._record("ExecuteElixirTool", request, context)
        fn = self.tools.get(request.tool_name)
        if fn is None:
            return pb2.ExecuteElixirToolResponse(success=False, error_message=f"unknown tool {request.tool_name}")
        params = serialization.decode_params(request.parameters)
        try:
            value = fn(params)
        except Exception as exc:  # noqa: BLE001
            return pb2.ExecuteElixirToolResponse(success=False, error_message=str(exc))
        if isinstance(value, bytes):
            return pb2.ExecuteElixirToolResponse(success=True, binary_result=value)
        return pb2.ExecuteElixirToolResponse(success=True, result=serialization.encode_any(value))


@pytest.fixture
def host() -> Iterator[tuple[HostDouble, str]]:
    """A running host double and its address."""
    servicer = HostDouble()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb2_grpc.add_BridgeServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()
