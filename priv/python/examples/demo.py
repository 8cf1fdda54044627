#!/usr/bin/env python3
"""A tour of one Python worker over real gRPC, driven the way the Go host drives it.

Starts ``grpc_server.py`` with the showcase adapter (own process group, ready
file, stdin lifeline), then runs plain, streaming, binary and failing calls and
stops it. ``make demo`` runs this until the Go host's pool demo replaces it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snakepit_bridge import serialization  # noqa: E402
from snakepit_bridge import snakepit_bridge_pb2 as pb2  # noqa: E402
from snakepit_bridge.testing import WorkerProcess  # noqa: E402

log = logging.getLogger("demo")


def execute(stub, tool: str, binary=None, **params):
    """Runs a tool; returns (success, value or error payload)."""
    resp = stub.ExecuteTool(pb2.ExecuteToolRequest(
        tool_name=tool, parameters=serialization.encode_params(params), binary_parameters=binary or {}))
    if not resp.success:
        return False, json.loads(resp.error_message)
    if resp.metadata.get("result_encoding") == "binary":
        return True, resp.binary_result
    return True, serialization.decode_any(resp.result)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    started = time.monotonic()
    with WorkerProcess(unix_socket=True, extra_args=["--snakepit-worker-id", "demo_worker_1"]) as worker:
        log.info("worker ready in %.0f ms at %s (pid %d)", (time.monotonic() - started) * 1000,
                 worker.address, worker.proc.pid)
        stub = worker.stub
        log.info("Ping            -> %s", stub.Ping(pb2.PingRequest(message="demo")).message)
        log.info("add(2, 40)      -> %s", execute(stub, "add", a=2, b=40)[1])
        log.info("echo(...)       -> %s", execute(stub, "echo", text="héllo", nums=[1, 2.5], nested={"ok": True})[1])
        chunks = list(stub.ExecuteStreamingTool(pb2.ExecuteToolRequest(
            tool_name="stream_count", parameters=serialization.encode_params({"n": 4, "delay_ms": 20}))))
        log.info("stream_count(4) -> %s + final=%s",
                 [json.loads(c.data) for c in chunks if not c.is_final], chunks[-1].is_final)
        blob = os.urandom(1 << 20)
        ok, echoed = execute(stub, "echo_binary", binary={"data": blob})
        log.info("echo_binary     -> %d bytes back, intact=%s", len(echoed), echoed == blob)
        ok, err = execute(stub, "raise_error", kind="value", message="negative size")
        log.info("raise_error     -> success=%s %s: %s (traceback %d lines)", ok, err["type"],
                 err["message"], err["traceback"].count("\n"))
        ok, err = execute(stub, "nope")
        log.info("unknown tool    -> %s", err["type"])
        n, t0 = 200, time.monotonic()
        for _ in range(n):
            execute(stub, "ping")
        log.info("%d sequential pings: %.0f calls/s", n, n / (time.monotonic() - t0))
        me = execute(stub, "whoami")[1]
        log.info("whoami          -> pid=%s pgid=%s worker_id=%s", me["pid"], me["pgid"], me["worker_id"])
        worker.close_stdin()
        code = worker.wait_exit(5)
        log.info("stdin closed (host lifeline) -> worker exited with code %s", code)
        return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
