"""The launch contract: flags, ready file, unix socket, process group, lifeline, signals, exit codes."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EDGE, PYTHON_DIR, SHOWCASE, TESTS_DIR, call, start_worker, wait_until
from snakepit_bridge import snakepit_bridge_pb2 as pb2
from snakepit_bridge.testing import SERVER_SCRIPT, WorkerStartError

SERVER = [sys.executable, str(SERVER_SCRIPT)]


def run_server(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=f"{TESTS_DIR}{os.pathsep}{PYTHON_DIR}", **(env or {}))
    return subprocess.run([*SERVER, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, stdin=subprocess.DEVNULL)


def test_health_check_ok_and_default_adapter():
    res = run_server("--health-check", "--adapter", SHOWCASE)
    assert res.returncode == 0, res.stderr
    assert "health check ok" in res.stderr and "stream_count" in res.stderr
    assert run_server("--health-check").returncode == 0  # ShowcaseAdapter by default


@pytest.mark.parametrize("adapter, message", [
    ("no_such_pkg.Adapter", "cannot import adapter module 'no_such_pkg'"),
    ("snakepit_bridge.adapters.showcase.Missing", "has no class 'Missing'"),
    ("NoDots", "not of the form package.module.Class"),
    ("bridge_test_adapters.SecretiveAdapter", "cannot instantiate"),
    ("bridge_test_adapters.BrokenInitAdapter", "initialize() raised FileNotFoundError: weights.pt"),
])
def test_health_check_bad_adapter_is_clear(adapter, message):
    res = run_server("--health-check", "--adapter", adapter)
    assert res.returncode == 1
    assert message in res.stderr


def test_health_check_runs_initialize_and_cleanup():
    res = run_server("--health-check", "--adapter", "bridge_test_adapters.AsyncInitAdapter")
    assert res.returncode == 0, res.stderr
    assert "health check ok" in res.stderr and "cleanup ran" in res.stdout


def test_missing_adapter_is_a_usage_error():
    res = run_server("--port", "0")
    assert res.returncode == 2 and "--adapter is required" in res.stderr


def test_bad_adapter_at_start_exits_1_with_reason():
    with pytest.raises(WorkerStartError, match="(?s)exit code 1.*cannot import adapter module 'nope'"):
        start_worker("nope.Adapter").wait_ready()


def test_failing_initialize_exits_1():
    with pytest.raises(WorkerStartError, match=r"initialize\(\) failed: RuntimeError: model file missing"):
        start_worker(EDGE, env={"EDGE_FAIL_INIT": "1"}).wait_ready()


def test_port_in_use_exits_1():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        w = start_worker(extra_args=["--port", str(port)])
        with pytest.raises(WorkerStartError, match="exit code 1"):
            w.wait_ready()


def test_ready_file_holds_the_bound_port_atomically(worker):
    content = Path(worker.ready_file).read_text()
    magic, version, network, address = content.split("|")
    assert (magic, version, network) == ("snakepit-bridge", "1", "tcp")
    host, port = address.rsplit(":", 1)
    assert host == "127.0.0.1" and port.isdigit() and int(port) > 0
    assert not Path(worker.ready_file + ".tmp").exists()
    assert worker.address == address


def test_unix_socket_mode():
    with start_worker(unix_socket=True) as w:
        assert Path(w.ready_file).read_text() == f"snakepit-bridge|1|unix|{w.socket_path}"
        assert stat.S_IMODE(os.stat(w.socket_path).st_mode) == 0o600
        assert w.stub.Ping(pb2.PingRequest(message="u")).message == "Pong from Python: u"
        assert call(w.stub, "add", a=1, b=1) == 2


def test_relative_or_non_unix_listen_is_refused():
    for listen in ("unix:relative.sock", "tcp:127.0.0.1:0"):
        with pytest.raises(WorkerStartError, match="--listen"):
            start_worker(extra_args=["--listen", listen]).wait_ready()


def test_sigterm_stops_gracefully_and_runs_cleanup(tmp_path):
    marker = tmp_path / "cleaned"
    w = start_worker(EDGE, env={"EDGE_CLEANUP_FILE": str(marker)}).wait_ready()
    try:
        w.proc.send_signal(signal.SIGTERM)
        assert w.wait_exit(10) == 0
        assert marker.read_text() == "cleaned"
    finally:
        w.cleanup()


def test_stdin_eof_is_the_lifeline():
    w = start_worker().wait_ready()
    try:
        w.close_stdin()
        assert w.wait_exit(5) == 0, w.output()
        assert "stdin closed" in w.output()
    finally:
        w.cleanup()


def test_stdin_not_a_pipe_does_not_stop_the_worker():
    with start_worker(stdin_pipe=False) as w:  # /dev/null: auto mode ignores it
        assert call(w.stub, "ping") == "pong"
        assert w.proc.poll() is None


def test_lifeline_none_ignores_stdin_eof():
    w = start_worker(extra_args=["--lifeline", "none"]).wait_ready()
    try:
        w.close_stdin()
        assert call(w.stub, "ping") == "pong"
        assert w.proc.poll() is None
    finally:
        w.cleanup()


def test_process_group_env_makes_a_session_leader(tmp_path):
    """Started inside our group, SNAKEPIT_PROCESS_GROUP=1 makes the worker its own group leader."""
    ready = tmp_path / "ready"
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR), SNAKEPIT_PROCESS_GROUP="1", SNAKEPIT_READY_FILE=str(ready))
    proc = subprocess.Popen([*SERVER, "--adapter", SHOWCASE, "--lifeline", "none"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(ready.exists)
        assert os.getpgid(proc.pid) == proc.pid
        assert os.getsid(proc.pid) == proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # its own group now: only what we started
        proc.wait()


def test_whoami_reports_the_launch_flags():
    args = ["--snakepit-run-id", "r123", "--snakepit-instance-name", "inst", "--snakepit-instance-token",
            "tok", "--snakepit-worker-id", "pool_worker_7"]
    with start_worker(extra_args=args, env={"MY_ADAPTER_ENV": "on"}) as w:
        me = call(w.stub, "whoami", env_keys=["MY_ADAPTER_ENV", "ABSENT"])
        assert me["pid"] == w.proc.pid and me["pgid"] == w.proc.pid
        assert (me["worker_id"], me["run_id"], me["instance_name"]) == ("pool_worker_7", "r123", "inst")
        assert me["env"] == {"MY_ADAPTER_ENV": "on"}
        assert me["adapter"] == "snakepit_bridge.adapters.showcase.adapter.ShowcaseAdapter"
        assert call(w.stub, "ping", metadata={}) == "pong"
        resp = w.stub.ExecuteTool(pb2.ExecuteToolRequest(tool_name="ping"))
        assert resp.metadata["worker_id"] == "pool_worker_7"


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_allocate_mb_really_grows_rss(worker):
    before = _rss_kb(worker.proc.pid)
    assert call(worker.stub, "allocate_mb", n=64) == {"held_mb": 64}
    grown = _rss_kb(worker.proc.pid) - before
    assert grown >= 60 * 1024, f"RSS grew by {grown} KiB only"
    assert call(worker.stub, "free_memory") == {"held_mb": 0}


def test_crash_ends_the_process_with_its_code(worker):
    import grpc

    with pytest.raises(grpc.RpcError) as info:
        call(worker.stub, "crash", code=3)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert worker.wait_exit(5) == 3


def test_thread_profile_runs_sync_calls_concurrently():
    from concurrent.futures import ThreadPoolExecutor

    with start_worker("bridge_test_adapters.ThreadSafeEdge", threaded=True, extra_args=["--max-workers", "4"]) as w:
        with ThreadPoolExecutor(4) as pool:
            ranks = sorted(pool.map(lambda _: call(w.stub, "sync_rendezvous", group="t", peers=4), range(4)))
        assert ranks == [1, 2, 3, 4]
        assert call(w.stub, "thread_name").startswith("snakepit-tool")
        assert any(str(arg).endswith("grpc_server_threaded.py") for arg in w.proc.args)


def test_thread_profile_refuses_adapters_not_marked_thread_safe():
    with pytest.raises(WorkerStartError, match="(?s)exit code 1.*not marked __thread_safe__"):
        start_worker(EDGE, threaded=True).wait_ready()
    from snakepit_bridge.testing import THREADED_SERVER_SCRIPT

    res = subprocess.run([sys.executable, str(THREADED_SERVER_SCRIPT), "--health-check", "--adapter", EDGE],
                         capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, PYTHONPATH=f"{TESTS_DIR}{os.pathsep}{PYTHON_DIR}"))
    assert res.returncode == 1 and "__thread_safe__" in res.stderr
    res = subprocess.run([sys.executable, str(THREADED_SERVER_SCRIPT), "--health-check"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0  # the showcase adapter is thread-safe
