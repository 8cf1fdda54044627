#!/usr/bin/env python3
"""Snakepit Python worker, thread profile, of an installed snakepit_bridge."""

from snakepit_bridge.server import run_main

if __name__ == "__main__":
    run_main(threaded=True)
