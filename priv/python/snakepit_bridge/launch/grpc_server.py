#!/usr/bin/env python3
"""Snakepit Python worker of an installed snakepit_bridge (see ../../grpc_server.py in a checkout)."""

from snakepit_bridge.server import run_main

if __name__ == "__main__":
    run_main()
