"""The worker process: command line, start-up, readiness, and shutdown.

The launch contract (README_GRPC.md, "Launching a worker") in short:

* flags ``--adapter pkg.mod.Class --port 0 [--listen unix:/path] --elixir-address
  host:port --snakepit-run-id R --snakepit-instance-name N
  --snakepit-instance-token T [--snakepit-worker-id W] [--heartbeat-*]``;
* once serving, the handshake ``snakepit-bridge|1|tcp|127.0.0.1:PORT`` (or
  ``snakepit-bridge|1|unix|/path``) is written atomically to
  ``$SNAKEPIT_READY_FILE``;
* ``SNAKEPIT_PROCESS_GROUP`` truthy → the process makes itself a session
  leader (``setsid``) so the host can kill its whole group;
* SIGTERM / SIGINT, or EOF on stdin when stdin is a pipe (the host's
  lifeline), stop the server gracefully;
* exit codes: 0 clean stop, 1 start-up failure (bad adapter, bind failure,
  host unreachable, ``initialize()`` raised), 2 bad command line,
  70 a dependent heartbeat lost the host.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import stat
import sys
import threading
import time
from typing import Any, Optional

import grpc

from . import __version__
from . import snakepit_bridge_pb2 as pb2
from . import snakepit_bridge_pb2_grpc as pb2_grpc
from . import serialization, telemetry
from . import snakepit_control_pb2_grpc as control_pb2_grpc
from .base_adapter import BaseAdapter, registration_accepted, set_worker_id
from .dispatch import TRUTHY, Dispatcher, parse_thread_sensitive
from .heartbeat import EXIT_HEARTBEAT_LOST, HeartbeatClient, HeartbeatConfig
from .logging_config import configure_logging
from .security import AuthInterceptor, take_secrets
from .servicer import ControlServicer, WorkerServicer
from .session_context import HostClient, channel_options
from .version import HANDSHAKE, PROTOCOL_VERSION

log = logging.getLogger("snakepit_bridge.server")

DEFAULT_ADAPTER = "snakepit_bridge.adapters.showcase.ShowcaseAdapter"

def handshake_line(address: str, host: str, concurrency: int = 1) -> str:
    """The ready file's content for a bound address (a port, or unix:/path).

    A worker that runs more than one call at once says so in a trailing
    ``concurrency=N`` field (the host then gives it capacity N).
    """
    extra = f"|concurrency={concurrency}" if concurrency > 1 else ""
    if address.startswith("unix:"):
        return f"{HANDSHAKE}|{PROTOCOL_VERSION}|unix|{address[len('unix:'):]}{extra}"
    return f"{HANDSHAKE}|{PROTOCOL_VERSION}|tcp|{host}:{address}{extra}"


EXIT_OK, EXIT_STARTUP, EXIT_USAGE = 0, 1, 2


class StartupError(Exception):
    """The worker cannot start; the message says why (exit code 1)."""


MAX_CONCURRENCY = 1024


def declared_concurrency(cls: type, path: str) -> int:
    """The calls one process of adapter cls may run at once (its max_concurrency, default 1)."""
    n = getattr(cls, "max_concurrency", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CONCURRENCY:
        raise StartupError(f"adapter {path!r}: max_concurrency must be an int from 1 to {MAX_CONCURRENCY}, got {n!r}")
    return n


def build_parser(threaded: bool = False) -> argparse.ArgumentParser:
    """The worker's command line (upstream's flags plus ours), with defaults from the environment."""
    p = flags_parser(threaded)
    env_defaults(p, threaded)
    return p


def env_defaults(p: argparse.ArgumentParser, threaded: bool) -> None:
    """Sets the flags' defaults the environment gives, as it is now.

    Apart from :func:`flags_parser`, so the fork server builds the parser once and
    each forked worker sets only these (its environment is its own).
    """
    lifeline = os.environ.get("SNAKEPIT_LIFELINE", "auto")
    p.set_defaults(
        listen=os.environ.get("SNAKEPIT_LISTEN", ""),
        elixir_address=os.environ.get("SNAKEPIT_GRPC_ADDRESS") or os.environ.get("SNAKEPIT_ELIXIR_ADDRESS", ""),
        instance_name=os.environ.get("SNAKEPIT_INSTANCE_NAME", ""),
        instance_token=os.environ.get("SNAKEPIT_INSTANCE_TOKEN", ""),
        worker_id=os.environ.get("SNAKEPIT_WORKER_ID", ""),
        lifeline=lifeline if lifeline in ("auto", "stdin", "none") else "auto",
    )
    if not threaded:
        p.set_defaults(max_threads=int(os.environ.get("SNAKEPIT_MAX_THREADS", "32")))


def flags_parser(threaded: bool) -> argparse.ArgumentParser:
    """The worker's flags, without the defaults the environment gives (see env_defaults)."""
    prog = "grpc_server_threaded.py" if threaded else "grpc_server.py"
    p = argparse.ArgumentParser(prog=prog, description="Snakepit Python worker")
    p.add_argument("--adapter", help="adapter class as pkg.module.Class")
    p.add_argument("--port", type=int, default=0, help="TCP port (0 = any free port)")
    p.add_argument("--host", default="127.0.0.1", help="TCP address to bind (default loopback)")
    p.add_argument("--listen",
                   help="unix:/path to serve on a unix socket instead of TCP (default $SNAKEPIT_LISTEN)")
    p.add_argument(
        "--elixir-address",
        help="host BridgeService address (host:port or unix:/path) for sessions and host tools",
    )
    p.add_argument("--host-connect-timeout-ms", type=int, default=30000,
                   help="how long to wait for the host to answer Ping at start")
    p.add_argument("--snakepit-run-id", "--run-id", dest="run_id", default="")
    p.add_argument("--snakepit-instance-name", dest="instance_name")
    p.add_argument("--snakepit-instance-token", dest="instance_token")
    p.add_argument("--snakepit-worker-id", dest="worker_id")
    p.add_argument("--lifeline", choices=("auto", "stdin", "none"),
                   help="exit on stdin EOF: auto = when stdin is a pipe or socket (default $SNAKEPIT_LIFELINE)")
    if threaded:
        p.add_argument("--max-workers", dest="max_threads", type=int, default=10,
                       help="concurrent calls (threads for sync tools); the host's capacity for this worker")
    else:
        p.add_argument("--max-threads", type=int, help="threads for sync tools")
    p.add_argument("--shutdown-grace-ms", type=int, default=2000)
    p.add_argument("--snakepit-fork-server", dest="fork_server", action="store_true",
                   help="run as the pool's fork server on the socket at $SNAKEPIT_FORK_SERVER_FD "
                   "(started by the host; see snakepit_bridge.forkserver)")
    p.add_argument("--health-check", action="store_true",
                   help="import and instantiate the adapter, list its tools, exit 0 or 1")
    hb = p.add_argument_group("heartbeat (worker → host)")
    hb.add_argument("--heartbeat-enabled", dest="hb_enabled", action="store_true", default=None)
    hb.add_argument("--heartbeat-interval-ms", dest="hb_interval_ms", type=int)
    hb.add_argument("--heartbeat-timeout-ms", dest="hb_timeout_ms", type=int)
    hb.add_argument("--heartbeat-max-missed", dest="hb_max_missed", type=int)
    hb.add_argument("--heartbeat-initial-delay-ms", dest="hb_initial_delay_ms", type=int)
    hb.add_argument("--heartbeat-jitter-ms", dest="hb_jitter_ms", type=int)
    dep = hb.add_mutually_exclusive_group()
    dep.add_argument("--heartbeat-dependent", dest="hb_dependent", action="store_true", default=None)
    dep.add_argument("--heartbeat-independent", dest="hb_dependent", action="store_false")
    return p


def check_thread_safe(cls: type, path: str) -> None:
    """The thread profile runs calls concurrently in one process: the adapter must say it can."""
    if getattr(cls, "__thread_safe__", False) is not True:
        raise StartupError(
            f"adapter {path!r} is not marked __thread_safe__ = True; the thread profile runs its tools "
            "concurrently in one process (use grpc_server.py, the process profile, instead)"
        )


def load_adapter_class(path: str) -> type:
    """Imports pkg.module.Class; raises StartupError with a clear reason."""
    module_name, _, class_name = path.rpartition(".")
    if not module_name or not class_name:
        raise StartupError(f"adapter {path!r} is not of the form package.module.Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is a start-up failure
        raise StartupError(f"cannot import adapter module {module_name!r}: "
                           f"{type(exc).__name__}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        raise StartupError(f"module {module_name!r} has no class {class_name!r}")
    if not isinstance(cls, type):
        raise StartupError(f"adapter {path!r} is not a class")
    if not issubclass(cls, BaseAdapter) and not callable(getattr(cls, "execute_tool", None)):
        raise StartupError(f"adapter {path!r} neither subclasses BaseAdapter nor has execute_tool")
    return cls


def heartbeat_config(args: argparse.Namespace) -> HeartbeatConfig:
    """Merges SNAKEPIT_HEARTBEAT_CONFIG with the --heartbeat-* flags."""
    return HeartbeatConfig.from_env().override(
        enabled=args.hb_enabled,
        interval_ms=args.hb_interval_ms,
        timeout_ms=args.hb_timeout_ms,
        max_missed_heartbeats=args.hb_max_missed,
        initial_delay_ms=args.hb_initial_delay_ms,
        jitter_ms=args.hb_jitter_ms,
        dependent=args.hb_dependent,
    )


def write_ready_file(path: str, content: str) -> None:
    """Writes content to path atomically: a temp file renamed into place.

    No fsync: the file is a signal to the host, read while both run; it is
    worthless after a crash of the machine, and an fsync per worker start
    costs milliseconds on a busy disk.
    """
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(content)
    os.replace(tmp, path)


def _become_group_leader() -> None:
    if os.environ.get("SNAKEPIT_PROCESS_GROUP", "").strip().lower() not in TRUTHY:
        return
    if os.getpgid(0) == os.getpid():
        return  # the host already started us in our own group
    try:
        os.setsid()
    except OSError as exc:
        log.warning("setsid failed: %s", exc)


def _stdin_is_lifeline(mode: str) -> bool:
    if mode == "none":
        return False
    if mode == "stdin":
        return True
    try:
        st = os.fstat(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode)


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: "Stopper") -> None:
    fd = sys.stdin.fileno()
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass
    loop.call_soon_threadsafe(stop.request, EXIT_OK, "stdin closed (host lifeline)")


class Stopper:
    """Collects the first stop request (signal, lifeline, heartbeat) and its exit code."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.code = EXIT_OK
        self.reason = ""

    def request(self, code: int, reason: str) -> None:
        if self.event.is_set():
            return
        self.code, self.reason = code, reason
        log.info("stopping: %s", reason)
        self.event.set()


async def _call_hook(adapter: Any, name: str) -> None:
    """Calls the adapter's optional initialize/cleanup hook, sync or async."""
    hook = getattr(adapter, name, None)
    if hook is None:
        return
    result = hook()
    if asyncio.iscoroutine(result):
        await result


async def _wait_for_host(host: HostClient, timeout_ms: int) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    delay = 0.05
    last = ""
    while True:
        try:
            await host.aio_stub.Ping(pb2.PingRequest(message="connection_test"), timeout=1.0,
                                     metadata=host.metadata)
            return
        except grpc.RpcError as exc:
            last = f"{exc.code().name}: {exc.details()}"
            if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                # Waiting will not help: the host refuses this worker's credentials.
                raise StartupError(f"the host at {host.address} refused this worker's credentials "
                                   f"({last}); is SNAKEPIT_WORKER_SECRET the one the host set?") from exc
        if time.monotonic() + delay > deadline:
            raise StartupError(f"host at {host.address} did not answer Ping within "
                               f"{timeout_ms} ms (last error {last})")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


async def _register_tools(adapter: BaseAdapter, host: HostClient, worker_id: str) -> None:
    try:
        resp = await host.aio_stub.RegisterTools(
            adapter.registration("", worker_id), timeout=5.0, metadata=host.metadata
        )
    except grpc.RpcError as exc:
        level = logging.DEBUG if exc.code() == grpc.StatusCode.UNIMPLEMENTED else logging.WARNING
        log.log(level, "RegisterTools: %s: %s", exc.code().name, exc.details())
        return
    if not registration_accepted(resp):
        log.warning("host refused the tool registration: %s", resp.error_message)


def _bind(server: grpc.aio.Server, args: argparse.Namespace) -> str:
    if args.listen:
        if not args.listen.startswith("unix:"):
            raise StartupError(f"--listen {args.listen!r}: only unix:/path is supported (use --host/--port for TCP)")
        path = args.listen[len("unix:"):]
        if not os.path.isabs(path):
            raise StartupError(f"--listen {args.listen!r}: the socket path must be absolute")
        if os.path.exists(path):
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                raise StartupError(f"--listen: {path} exists and is not a socket")
            os.unlink(path)
        try:
            server.add_insecure_port(f"unix:{path}")
        except RuntimeError as exc:
            raise StartupError(f"cannot listen on unix:{path}: {exc}") from exc
        return f"unix:{path}"
    try:
        port = server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError as exc:
        raise StartupError(f"cannot bind {args.host}:{args.port}: {exc}") from exc
    if port == 0:
        raise StartupError(f"cannot bind {args.host}:{args.port}")
    return str(port)


async def serve(args: argparse.Namespace, threaded: bool = False) -> int:
    """Runs the worker until asked to stop; returns the exit code."""
    loop = asyncio.get_running_loop()
    stopper = Stopper()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopper.request, EXIT_OK, f"signal {sig.name}")

    max_bytes = int(os.environ.get("SNAKEPIT_GRPC_MAX_MESSAGE_BYTES", str(100 * 1024 * 1024)))
    worker_id = args.worker_id or f"python-{os.getpid()}"
    set_worker_id(worker_id)
    secrets = take_secrets()
    host: Optional[HostClient] = None
    if args.elixir_address:
        host = HostClient(args.elixir_address, token=args.instance_token, worker_id=worker_id,
                          max_message_bytes=max_bytes, secret=secrets.worker)
    hb_config = heartbeat_config(args)
    adapter: Any = None
    dispatcher: Optional[Dispatcher] = None
    server: Optional[grpc.aio.Server] = None
    tasks: list[asyncio.Task[Any]] = []
    try:
        if host is not None:
            await _wait_for_host(host, args.host_connect_timeout_ms)
        cls = load_adapter_class(args.adapter)
        if threaded:
            check_thread_safe(cls, args.adapter)
        concurrency = 1 if threaded else declared_concurrency(cls, args.adapter)
        serialization.set_graceful(serialization.graceful() or getattr(cls, "graceful_serialization", False) is True)
        adapter = cls()
        try:
            await _call_hook(adapter, "initialize")
        except Exception as exc:  # noqa: BLE001
            raise StartupError(f"{args.adapter}.initialize() failed: {type(exc).__name__}: {exc}") from exc
        dispatcher = Dispatcher(
            adapter,
            thread_sensitive=parse_thread_sensitive(os.environ.get("SNAKEPIT_THREAD_SENSITIVE", "")),
            max_threads=max(1, args.max_threads, concurrency),
            allow_pickle=secrets.allow_pickle,
        )
        loop.set_default_executor(dispatcher.executor)
        interceptors = [AuthInterceptor(secrets.server)] if secrets.server else []
        if not secrets.server and not args.listen:
            log.warning("no SNAKEPIT_SERVER_SECRET: this TCP worker answers any local caller")
        server = grpc.aio.server(options=channel_options(max_bytes), interceptors=interceptors)
        pb2_grpc.add_BridgeServiceServicer_to_server(WorkerServicer(dispatcher, host, worker_id), server)
        control_pb2_grpc.add_WorkerControlServicer_to_server(ControlServicer(dispatcher), server)
        address = _bind(server, args)
        await server.start()
        if host is not None and isinstance(adapter, BaseAdapter):
            # In the background: a worker is ready once it serves; the host
            # learns its tools (for other workers to call) moments later.
            tasks.append(asyncio.create_task(_register_tools(adapter, host, worker_id), name="register-tools"))
            if hb_config.enabled:
                client = HeartbeatClient(
                    host.aio_stub, f"worker_{worker_id}", hb_config,
                    lambda: stopper.request(EXIT_HEARTBEAT_LOST, "heartbeat lost"), host.metadata,
                )
                tasks.append(asyncio.create_task(client.run(), name="heartbeat"))
        elif hb_config.enabled:
            log.warning("heartbeat enabled but no --elixir-address: heartbeat is off")
        ready_file = os.environ.get("SNAKEPIT_READY_FILE", "")
        if ready_file:
            write_ready_file(ready_file, handshake_line(address, args.host, concurrency))
        if address.startswith("unix:"):
            os.chmod(address[len("unix:"):], 0o600)
        if _stdin_is_lifeline(args.lifeline):
            threading.Thread(target=_watch_stdin, args=(loop, stopper), name="lifeline", daemon=True).start()
        log.info("worker %s serving %s on %s (run %s)", worker_id, args.adapter, address, args.run_id or "-")
        await stopper.event.wait()
        return stopper.code
    finally:
        for task in tasks:
            task.cancel()
        if server is not None:
            await server.stop(args.shutdown_grace_ms / 1000)
        if adapter is not None:
            try:
                await _call_hook(adapter, "cleanup")
            except Exception:  # noqa: BLE001
                log.exception("adapter cleanup failed")
        if dispatcher is not None:
            dispatcher.shutdown()
        if host is not None:
            await host.close()


def health_check(adapter_path: str, threaded: bool = False) -> int:
    """Imports, instantiates and initialises the adapter (as a worker would), logs its tools and
    cleans it up; returns the exit code (EXIT_STARTUP when any step fails)."""
    try:
        cls = load_adapter_class(adapter_path)
        if threaded:
            check_thread_safe(cls, adapter_path)
        adapter = cls()
    except StartupError as exc:
        log.error("health check failed: %s", exc)
        return EXIT_STARTUP
    except Exception as exc:  # noqa: BLE001
        log.error("health check failed: cannot instantiate %s: %s: %s", adapter_path, type(exc).__name__, exc)
        return EXIT_STARTUP
    try:
        asyncio.run(_call_hook(adapter, "initialize"))
    except Exception as exc:  # noqa: BLE001
        log.error("health check failed: %s.initialize() raised %s: %s", adapter_path, type(exc).__name__, exc)
        return EXIT_STARTUP
    try:
        tools = adapter.get_tools() if isinstance(adapter, BaseAdapter) else []
    except Exception as exc:  # noqa: BLE001
        log.error("health check failed: %s.get_tools() raised %s: %s", adapter_path, type(exc).__name__, exc)
        return EXIT_STARTUP
    finally:
        try:
            asyncio.run(_call_hook(adapter, "cleanup"))
        except Exception as exc:  # noqa: BLE001
            log.warning("health check: %s.cleanup() raised %s: %s", adapter_path, type(exc).__name__, exc)
    log.info("health check ok: snakepit_bridge %s, python %s, grpc %s, adapter %s, %d tools: %s",
             __version__, sys.version.split()[0], grpc.__version__, adapter_path, len(tools),
             ", ".join(t.name for t in tools))
    return EXIT_OK


def main(argv: Optional[list[str]] = None, threaded: bool = False,
         parser: Optional[argparse.ArgumentParser] = None) -> int:
    """Entry point of grpc_server.py (threaded: grpc_server_threaded.py); returns the exit code.

    parser is one :func:`flags_parser` built before (by the fork server); its
    environment defaults are set here.
    """
    if parser is None:
        parser = build_parser(threaded)
    else:
        env_defaults(parser, threaded)
    args = parser.parse_args(argv)
    if args.health_check:
        configure_logging(default_level="info")
        return health_check(args.adapter or DEFAULT_ADAPTER, threaded)
    configure_logging(worker_id=args.worker_id)
    telemetry.configure_from_env()
    if not args.adapter:
        parser.error("--adapter is required (pkg.module.Class)")
    try:
        heartbeat_config(args)
    except ValueError as exc:
        parser.error(str(exc))
    _become_group_leader()
    if args.fork_server:
        from . import forkserver

        return forkserver.run(args.adapter)
    try:
        return asyncio.run(serve(args, threaded))
    except StartupError as exc:
        log.error("worker failed to start: %s", exc)
        return EXIT_STARTUP


def run_main(threaded: bool = False) -> None:
    """Runs main and exits without waiting for tool threads still running."""
    code = main(threaded=threaded)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
