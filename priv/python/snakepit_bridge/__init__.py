"""snakepit_bridge: the Python side of snakepit-go.

Write an adapter by subclassing :class:`BaseAdapter` and marking methods with
:func:`tool`; run it with ``grpc_server.py --adapter pkg.module.Class``.
"""

from .base_adapter import BaseAdapter, ToolMetadata, tool
from .errors import HostToolError, HostToolNotFoundError, InvalidArgumentError, ToolNotFoundError
from .heartbeat import HeartbeatClient, HeartbeatConfig
from .logging_config import configure_logging, get_logger
from .payloads import Binary, StreamChunk
from .session_context import SessionContext

from .version import PROTOCOL_VERSION, __version__

__all__ = [
    "BaseAdapter",
    "Binary",
    "HeartbeatClient",
    "HeartbeatConfig",
    "HostToolError",
    "HostToolNotFoundError",
    "InvalidArgumentError",
    "PROTOCOL_VERSION",
    "SessionContext",
    "StreamChunk",
    "ToolMetadata",
    "ToolNotFoundError",
    "configure_logging",
    "get_logger",
    "tool",
    "__version__",
]
