"""The fork server (zygote): imports once, forks ready-to-serve workers on request.

The host starts one per pool when the pool asks for it (``fork_server``), as
``grpc_server.py --snakepit-fork-server ...`` with the pool's command line,
environment and markers, and a ``SOCK_SEQPACKET`` socket on the fd named by
``$SNAKEPIT_FORK_SERVER_FD``. The zygote imports ``grpc``, the bridge and the
adapter's module (and ``$SNAKEPIT_FORK_PRELOAD``'s modules), but creates no
gRPC object: a gRPC core initialised before ``fork`` leaves the children
unusable. It then serves these messages, one JSON object per packet:

* host → zygote ``{"op": "fork", "id": N, "args": [...], "env": {...}, "cwd": D}``
  with two file descriptors: the worker's lifeline (its stdin) and its
  output (stdout and stderr). The child makes itself a process group
  leader, takes the fds, the environment and the arguments, and runs
  :func:`snakepit_bridge.server.main` exactly as a spawned worker would.
  Answer: ``{"op": "forked", "id": N, "pid": P}`` (or ``"error"``).
* zygote → host ``{"op": "exited", "pid": P, "code": C, "signal": S}`` when a
  child ends. The child is left a zombie (``waitid(WNOWAIT)``) so its
  process group id stays the host's to signal, until
* host → zygote ``{"op": "reap", "pid": P}``.

The zygote ends when the host closes the socket or its lifeline (stdin), and
on SIGTERM (its parent-death signal), and then SIGKILLs the groups of the
children it has not reaped: a dead host leaves no forked worker, not even a
stopped one. A zygote that crashes leaves its children running: each has
its own lifeline to the host, which watches them and starts a new zygote. No data from the socket is run as code: the only module names the
zygote imports come from its own command line and environment.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import Any, Optional

log = logging.getLogger("snakepit_bridge.forkserver")

FD_ENV = "SNAKEPIT_FORK_SERVER_FD"
PRELOAD_ENV = "SNAKEPIT_FORK_PRELOAD"
MAX_PACKET = 1 << 20


def _send(ctl: socket.socket, msg: dict[str, Any]) -> None:
    ctl.send(json.dumps(msg).encode())


# The workers' command-line parsers, built once (argparse is slow to build).
_PARSERS: dict[bool, Any] = {}


def _preload(adapter: str) -> list[str]:
    """Imports what every worker would: the bridge, grpc, the adapter's class and the preload list.

    Also does once what each worker would do again: build the command-line
    parsers and discover the adapter's tools (cached per class).
    """
    from . import server  # grpc and the bridge, imported once for every child

    # What a worker's start imports lazily (its thread pool, grpc's helpers).
    for name in ("concurrent.futures.thread", "queue", "grpc._utilities"):
        importlib.import_module(name)
    cls = server.load_adapter_class(adapter)
    tools = getattr(cls, "tools", None)
    if callable(tools):
        try:
            tools()
        except Exception:  # noqa: BLE001 - the worker reports a broken adapter itself
            pass
    for threaded in (False, True):
        _PARSERS[threaded] = server.flags_parser(threaded)
    done = [adapter]
    for name in filter(None, (n.strip() for n in os.environ.get(PRELOAD_ENV, "").split(","))):
        try:
            importlib.import_module(name)
            done.append(name)
        except Exception as exc:  # noqa: BLE001 - a missing extra module only costs speed
            log.warning("fork server: cannot preload %s: %s: %s", name, type(exc).__name__, exc)
    return done


def _child(req: dict[str, Any], fds: list[int], closing: list[int]) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        for fd in closing:
            try:
                os.close(fd)
            except OSError:
                pass
        lifeline, out = fds
        os.dup2(lifeline, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        for fd in (lifeline, out):
            if fd > 2:
                os.close(fd)
        env = req.get("env") or {}
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        if req.get("cwd"):
            os.chdir(req["cwd"])
        args = [str(a) for a in req.get("args") or []]
        sys.argv = [sys.argv[0]] + args
        from . import server

        threaded = bool(req.get("threaded"))
        code = server.main(args, threaded=threaded, parser=_PARSERS.get(threaded))
        logging.shutdown()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must end here, whatever happened
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class ForkServer:
    """The zygote's loop: fork requests in, child exits out."""

    def __init__(self, ctl: socket.socket) -> None:
        self.ctl = ctl
        self.children: dict[int, bool] = {}  # pid -> exit reported
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.stop = False

    def run(self) -> int:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.sel.register(self.ctl, selectors.EVENT_READ, "ctl")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        try:
            if os.fstat(0).st_mode & 0o170000 in (0o010000, 0o140000):  # a pipe or socket: the lifeline
                self.sel.register(0, selectors.EVENT_READ, "lifeline")
        except OSError:
            pass
        while not self.stop:
            # Children are looked at when a signal (SIGCHLD) woke the loop, and
            # once a second in case a wake-up was lost: not once per packet.
            scan = False
            events = self.sel.select(timeout=1.0)
            if not events:
                scan = True
            for key, _ in events:
                if key.data == "ctl":
                    self._on_packet()
                elif key.data == "wake":
                    scan = True
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                elif key.data == "lifeline":
                    if not os.read(0, 4096):
                        log.info("fork server: lifeline closed")
                        self.stop = True
            if scan:
                self._report_exits()
        self._end_children()
        return 0

    def _end_children(self) -> None:
        """Ends every child not yet reaped, with its process group.

        The zygote ends when the host closed its side, or on SIGTERM, which
        is also its parent-death signal: a host that died leaves no forked
        worker behind, even a stopped one. A zygote that crashes leaves its
        children running (their lifelines and the host watch them).
        Unreaped, each child's group id is still its own to signal.
        """
        for pid in self.children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

    def _on_term(self, *_: Any) -> None:
        self.stop = True

    def _on_packet(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.ctl, MAX_PACKET, 4)
        except (ConnectionError, OSError):
            self.stop = True
            return
        if not data:
            for fd in fds:
                os.close(fd)
            self.stop = True
            return
        try:
            req = json.loads(data)
        except ValueError:
            for fd in fds:
                os.close(fd)
            log.error("fork server: a packet that is not JSON (%d bytes)", len(data))
            return
        op = req.get("op")
        if op == "fork":
            self._fork(req, fds)
        elif op == "reap":
            for fd in fds:
                os.close(fd)
            pid = int(req.get("pid", 0))
            if pid in self.children:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
                del self.children[pid]
        else:
            for fd in fds:
                os.close(fd)
            log.error("fork server: unknown op %r", op)

    def _fork(self, req: dict[str, Any], fds: list[int]) -> None:
        rid = req.get("id")
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            _send(self.ctl, {"op": "forked", "id": rid, "error": f"want 2 file descriptors, got {len(fds)}"})
            return
        sys.stdout.flush()
        sys.stderr.flush()
        # What the zygote holds moves to the collector's permanent generation:
        # the children's collections never walk it, so its pages stay shared
        # (a walk writes to every object it visits, copying the page).
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            _send(self.ctl, {"op": "forked", "id": rid, "error": f"fork: {exc}"})
            return
        if pid == 0:
            _child(req, fds, [self.ctl.fileno(), self.wake_r, self.wake_w, self.sel.fileno()])
        for fd in fds:
            os.close(fd)
        try:
            os.setpgid(pid, pid)  # the child does it too; whichever runs first
        except OSError:
            pass
        self.children[pid] = False
        _send(self.ctl, {"op": "forked", "id": rid, "pid": pid})

    def _report_exits(self) -> None:
        for pid, reported in list(self.children.items()):
            if reported:
                continue
            try:
                res = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                self.children.pop(pid, None)
                continue
            if res is None or res.si_pid == 0:
                continue
            self.children[pid] = True
            msg: dict[str, Any] = {"op": "exited", "pid": pid, "code": -1, "signal": 0}
            if res.si_code == os.CLD_EXITED:
                msg["code"] = res.si_status
            else:
                msg["signal"] = res.si_status
            try:
                _send(self.ctl, msg)
            except OSError:
                self.stop = True
                return


def run(adapter: str, fd: Optional[int] = None) -> int:
    """Runs the fork server on the socket at fd ($SNAKEPIT_FORK_SERVER_FD); returns the exit code."""
    if fd is None:
        raw = os.environ.get(FD_ENV, "")
        if not raw.isdigit():
            log.error("fork server: %s is not set to a file descriptor", FD_ENV)
            return 2
        fd = int(raw)
    ctl = socket.socket(fileno=fd)
    os.set_inheritable(ctl.fileno(), False)
    try:
        preloaded = _preload(adapter)
    except Exception as exc:  # noqa: BLE001 - reported to the host, which fails the start with it
        _send(ctl, {"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
        return 1
    _send(ctl, {"op": "ready", "pid": os.getpid(), "preloaded": preloaded})
    log.info("fork server %d ready: %s", os.getpid(), ", ".join(preloaded))
    return ForkServer(ctl).run()
