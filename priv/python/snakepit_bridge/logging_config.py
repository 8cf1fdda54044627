"""Logging of the worker: stderr, level from SNAKEPIT_LOG_LEVEL."""

from __future__ import annotations

import logging
import os
import sys

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "none": logging.CRITICAL + 10,
}


def configure_logging(default_level: str = "warning", worker_id: str = "") -> None:
    """Sends log records to stderr; SNAKEPIT_LOG_LEVEL (debug..error, none) wins over default_level."""
    name = os.environ.get("SNAKEPIT_LOG_LEVEL", "").strip().lower() or default_level
    level = _LEVELS.get(name, logging.WARNING)
    tag = f" worker={worker_id}" if worker_id else ""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s %(levelname)s [snakepit pid=%(process)d{tag}] %(name)s: %(message)s"
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    """Returns the logger called name (upstream API; records go where configure_logging sends them)."""
    return logging.getLogger(name)
