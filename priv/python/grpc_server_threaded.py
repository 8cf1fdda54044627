#!/usr/bin/env python3
"""Snakepit Python worker, thread profile: one process serves --max-workers calls at once.

The adapter must declare ``__thread_safe__ = True``. Flags and launch contract
are those of grpc_server.py (README_GRPC.md), plus ``--max-workers N``.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from snakepit_bridge.server import run_main  # noqa: E402

if __name__ == "__main__":
    run_main(threaded=True)
