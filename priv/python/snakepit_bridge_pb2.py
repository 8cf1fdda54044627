"""Upstream's import path for the generated bridge code: ``import snakepit_bridge_pb2``.

Upstream Snakepit puts its generated protobuf modules at the top level of the
worker's import path; adapters written for it import them so. This module is
the same module object as ``snakepit_bridge.snakepit_bridge_pb2`` (one set of message
classes, one descriptor pool).
"""

import sys

from snakepit_bridge import snakepit_bridge_pb2 as _generated

sys.modules[__name__] = _generated
