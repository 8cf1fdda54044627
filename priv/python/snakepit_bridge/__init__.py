"""snakepit_bridge: the Python side of snakepit-go.

Write an adapter by subclassing :class:`BaseAdapter` and marking methods with
:func:`tool`; run it with ``grpc_server.py --adapter pkg.module.Class``.
"""

from .base_adapter import BaseAdapter, tool
from .errors import HostToolError, InvalidArgumentError, ToolNotFoundError
from .payloads import Binary, StreamChunk
from .session_context import SessionContext

__version__ = "0.1.0"

__all__ = [
    "BaseAdapter",
    "Binary",
    "HostToolError",
    "InvalidArgumentError",
    "SessionContext",
    "StreamChunk",
    "ToolNotFoundError",
    "tool",
    "__version__",
]
