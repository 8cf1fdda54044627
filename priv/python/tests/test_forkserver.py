"""The fork server's protocol, driven as the host drives it: a SOCK_SEQPACKET
socketpair, JSON packets, the worker's lifeline and output passed as fds."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
SHOWCASE = "snakepit_bridge.adapters.showcase.ShowcaseAdapter"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux only")


class Zygote:
    """A fork server process and the host's end of its socket."""

    def __init__(self, adapter: str = SHOWCASE) -> None:
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, SNAKEPIT_FORK_SERVER_FD=str(child.fileno()), PYTHONPATH=str(PYTHON_DIR))
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(PYTHON_DIR / "grpc_server.py"), "--snakepit-fork-server", "--adapter", adapter],
            pass_fds=(child.fileno(),), env=env, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        child.close()
        self.sock = host
        self.sock.settimeout(20)

    def recv(self) -> dict[str, Any]:
        data = self.sock.recv(1 << 16)
        assert data, "the fork server closed its socket"
        return json.loads(data)

    def send(self, msg: dict[str, Any], fds: list[int] | None = None) -> None:
        if fds:
            socket.send_fds(self.sock, [json.dumps(msg).encode()], fds)
        else:
            self.sock.send(json.dumps(msg).encode())

    def close(self) -> int:
        self.sock.close()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = self.proc.wait(timeout=20)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    if z.proc.poll() is None:
        z.proc.kill()
        z.proc.wait()


def _fork(z: Zygote, rid: int, args: list[str]) -> tuple[int, int, int]:
    """Asks for a child; returns its pid, the lifeline's write end and the output's read end."""
    life_r, life_w = os.pipe()
    out_r, out_w = os.pipe()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(PYTHON_DIR), "SNAKEPIT_LOG_LEVEL": "info"}
    z.send({"op": "fork", "id": rid, "args": args, "env": env, "cwd": str(PYTHON_DIR)}, [life_r, out_w])
    os.close(life_r)
    os.close(out_w)
    msg = z.recv()
    assert msg["op"] == "forked" and msg["id"] == rid, msg
    return msg["pid"], life_w, out_r


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks).decode()


def test_a_forked_child_runs_the_worker_main_and_its_exit_is_reported_before_it_is_reaped(zygote: Zygote) -> None:
    ready = zygote.recv()
    assert ready["op"] == "ready" and ready["pid"] == zygote.proc.pid
    assert SHOWCASE in ready["preloaded"]
    pid, life_w, out_r = _fork(zygote, 1, ["--adapter", SHOWCASE, "--health-check"])
    assert os.getpgid(pid) == pid, "the child leads its own process group"
    exited = zygote.recv()
    assert exited == {"op": "exited", "pid": pid, "code": 0, "signal": 0}
    assert "health check ok" in _read_all(out_r)
    # Reported, not reaped: still a zombie until the host says so.
    with open(f"/proc/{pid}/stat") as fh:
        assert fh.read().split(") ")[1].startswith("Z")
    zygote.send({"op": "reap", "pid": pid})
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}")
    os.close(life_w)
    assert zygote.close() == 0


def test_a_killed_child_is_reported_with_its_signal(zygote: Zygote) -> None:
    assert zygote.recv()["op"] == "ready"
    # No --health-check and no host: the worker serves until its lifeline closes or a signal.
    pid, life_w, out_r = _fork(zygote, 7, ["--adapter", SHOWCASE, "--port", "0"])
    time.sleep(0.2)
    os.kill(pid, 9)
    assert zygote.recv() == {"op": "exited", "pid": pid, "code": -1, "signal": 9}
    zygote.send({"op": "reap", "pid": pid})
    os.close(life_w)
    _read_all(out_r)
    assert zygote.close() == 0


def test_bad_packets_are_refused_and_the_server_goes_on(zygote: Zygote) -> None:
    assert zygote.recv()["op"] == "ready"
    zygote.sock.send(b"not json")
    r, w = os.pipe()
    zygote.send({"op": "fork", "id": 3, "args": []}, [r])  # one fd, two wanted
    os.close(r)
    os.close(w)
    reply = zygote.recv()
    assert reply["op"] == "forked" and reply["id"] == 3 and "want 2 file descriptors" in reply["error"]
    zygote.send({"op": "exec", "code": "import os"})  # no such op: nothing runs
    pid, life_w, out_r = _fork(zygote, 4, ["--adapter", SHOWCASE, "--health-check"])
    assert zygote.recv()["op"] == "exited"
    zygote.send({"op": "reap", "pid": pid})
    os.close(life_w)
    _read_all(out_r)
    assert zygote.close() == 0


def test_the_zygote_ends_its_unreaped_children_when_it_ends(zygote: Zygote) -> None:
    assert zygote.recv()["op"] == "ready"
    pid, life_w, out_r = _fork(zygote, 1, ["--adapter", SHOWCASE, "--port", "0"])
    os.kill(pid, 19)  # SIGSTOP: it cannot read its lifeline
    zygote.proc.terminate()  # its parent-death signal
    zygote.proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}"), "a stopped child is SIGKILLed with its group"
    os.close(life_w)
    _read_all(out_r)


def test_an_adapter_that_cannot_be_imported_is_reported() -> None:
    z = Zygote("no_such_module_abc.Adapter")
    msg = z.recv()
    assert msg["op"] == "failed" and "no_such_module_abc" in msg["error"]
    assert z.proc.wait(timeout=20) == 1
    z.sock.close()
    assert z.proc.stdin is not None and z.proc.stderr is not None
    z.proc.stdin.close()
    z.proc.stderr.close()


def test_a_parser_built_before_takes_the_workers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from snakepit_bridge import server

    parser = server.flags_parser(False)  # as the fork server builds it, before any worker's environment exists
    monkeypatch.setenv("SNAKEPIT_WORKER_ID", "pool-w7")
    monkeypatch.setenv("SNAKEPIT_LISTEN", "unix:/run/w7.sock")
    monkeypatch.setenv("SNAKEPIT_LIFELINE", "bogus")
    monkeypatch.setenv("SNAKEPIT_MAX_THREADS", "5")
    server.env_defaults(parser, False)
    args = parser.parse_args(["--adapter", SHOWCASE])
    assert (args.worker_id, args.listen, args.lifeline, args.max_threads) == ("pool-w7", "unix:/run/w7.sock", "auto", 5)
    assert vars(args) == vars(server.build_parser(False).parse_args(["--adapter", SHOWCASE]))
