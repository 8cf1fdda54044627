#!/usr/bin/env python3
"""Snakepit Python worker: serves an adapter's tools over gRPC.

Usage: grpc_server.py --adapter pkg.module.Class [--port 0 | --listen unix:/path] ...
(see ``--help`` and README_GRPC.md for the launch contract).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from snakepit_bridge.server import run_main  # noqa: E402

if __name__ == "__main__":
    run_main()
