"""Starting a real worker process from Python (tests, the demo, tooling).

:class:`WorkerProcess` launches ``grpc_server.py`` by the launch contract:
its own process group, stdin as a lifeline pipe, ``SNAKEPIT_READY_FILE``,
and waits for the ready file with a deadline. Stopping ends only the process
group it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import grpc

from . import serialization
from . import snakepit_bridge_pb2 as pb2
from . import snakepit_bridge_pb2_grpc as pb2_grpc
from .security import SERVER_SECRET_ENV, authenticated_channel
from .session_context import channel_options
from .version import HANDSHAKE

PYTHON_DIR = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = PYTHON_DIR / "grpc_server.py"
THREADED_SERVER_SCRIPT = PYTHON_DIR / "grpc_server_threaded.py"


def address_of(ready: str) -> str:
    """The gRPC target a ready file names: the handshake, or upstream's bare port / unix:/path."""
    parts = ready.split("|")
    if len(parts) == 4 and parts[0] == HANDSHAKE:
        return f"unix:{parts[3]}" if parts[2] == "unix" else parts[3]
    return ready if ready.startswith("unix:") else f"127.0.0.1:{ready}"


class WorkerStartError(RuntimeError):
    """The worker did not become ready; the message holds its output."""


class ToolCallError(RuntimeError):
    """A tool called with :meth:`WorkerProcess.call` failed; ``payload`` is the structured error."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(f"{payload.get('type')}: {payload.get('message')}")
        self.payload = payload


class WorkerProcess:
    """A grpc_server.py child process and a channel to it."""

    def __init__(
        self,
        adapter: str = "snakepit_bridge.adapters.showcase.ShowcaseAdapter",
        *,
        unix_socket: bool = False,
        extra_args: Optional[list[str]] = None,
        env: Optional[dict[str, str]] = None,
        python: str = sys.executable,
        ready_timeout: float = 20.0,
        stdin_pipe: bool = True,
        threaded: bool = False,
        secret: Optional[str] = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="snakepit-worker-")
        self.ready_file = os.path.join(self._tmp.name, "ready")
        self.socket_path = os.path.join(self._tmp.name, "worker.sock") if unix_socket else ""
        script = THREADED_SERVER_SCRIPT if threaded else SERVER_SCRIPT
        args = [python, "-u", str(script), "--adapter", adapter, "--port", "0"]
        if unix_socket:
            args += ["--listen", f"unix:{self.socket_path}"]
        args += list(extra_args or [])
        # The worker requires this secret from every caller, as the Go host's
        # workers do; "" starts it without one (upstream's contract).
        self.secret = secrets.token_hex(16) if secret is None else secret
        child_env = dict(os.environ)
        child_env.pop(SERVER_SECRET_ENV, None)
        if self.secret:
            child_env[SERVER_SECRET_ENV] = self.secret
        child_env.update(env or {})
        child_env["SNAKEPIT_READY_FILE"] = self.ready_file
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PYTHON_DIR), child_env.get("PYTHONPATH", "")) if p
        )
        self.log_path = os.path.join(self._tmp.name, "output.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
        )
        self.address = ""
        self.raw_channel: Optional[grpc.Channel] = None  # without the secret
        self.channel: Optional[grpc.Channel] = None
        self._ready_timeout = ready_timeout

    def wait_ready(self) -> "WorkerProcess":
        """Waits for the ready file; raises WorkerStartError with the output if it never comes."""
        deadline = time.monotonic() + self._ready_timeout
        while time.monotonic() < deadline:
            if os.path.exists(self.ready_file):
                content = Path(self.ready_file).read_text(encoding="utf-8").strip()
                self.address = address_of(content)
                self.raw_channel = grpc.insecure_channel(self.address, options=channel_options(200 << 20))
                self.channel = authenticated_channel(self.raw_channel, self.secret)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        output = self.output()
        self._tmp.cleanup()
        raise WorkerStartError(f"worker not ready (exit code {self.proc.returncode}); output:\n{output}")

    @property
    def stub(self) -> pb2_grpc.BridgeServiceStub:
        """A blocking stub on the worker's channel."""
        assert self.channel is not None, "call wait_ready first"
        return pb2_grpc.BridgeServiceStub(self.channel)

    def output(self) -> str:
        """Everything the worker wrote to stdout and stderr so far."""
        if not self._log.closed:
            self._log.flush()
        return Path(self.log_path).read_text(encoding="utf-8", errors="replace")

    def wait_exit(self, timeout: float) -> Optional[int]:
        """Waits up to timeout seconds for the process to exit; returns its code or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def close_stdin(self) -> None:
        """Closes the lifeline pipe, as a dying host would."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()

    def stop(self, grace: float = 5.0) -> Optional[int]:
        """SIGTERM the worker's process group, SIGKILL after grace; returns the exit code."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.raw_channel is not None:
            self.raw_channel.close()
            self.raw_channel = None
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            if self.wait_exit(grace) is None:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.close_stdin()
        self._log.close()
        return self.proc.returncode

    def cleanup(self) -> None:
        """Stops the worker and removes its temporary directory."""
        self.stop()
        self._tmp.cleanup()

    def call(self, tool: str, /, timeout: float = 30.0, **params: Any) -> Any:
        """Runs tool over real gRPC, as the host would, and returns its decoded value (bytes for a
        binary result); a failing tool raises :class:`ToolCallError` with the structured payload."""
        resp = self.stub.ExecuteTool(pb2.ExecuteToolRequest(
            tool_name=tool, parameters=serialization.encode_params(params)), timeout=timeout)
        if not resp.success:
            raise ToolCallError(json.loads(resp.error_message))
        if resp.metadata.get("result_encoding") == "binary":
            return resp.binary_result
        return serialization.decode_any(resp.result)

    def __enter__(self) -> "WorkerProcess":
        return self.wait_ready()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
