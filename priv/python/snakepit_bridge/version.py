"""The bridge's release and the protocol version it speaks.

``__version__`` is the release of snakepit-go this bridge ships with (the Go
module's ``snakepit.Version``; pyproject.toml reads it from here).
``PROTOCOL_VERSION`` is written into the ready file's handshake line; a host
of another protocol version refuses the worker at start. This module imports
nothing, so the host can read it without importing grpc.
"""

__version__ = "0.2.0"
PROTOCOL_VERSION = 1
# The ready file's handshake line starts with this (README_GRPC.md, "Readiness"):
# snakepit-bridge|<PROTOCOL_VERSION>|<tcp|unix>|<host:port or /socket/path>.
HANDSHAKE = "snakepit-bridge"
