"""Logging of the worker: stderr, level from SNAKEPIT_LOG_LEVEL.

Every record carries the correlation id of the call it was logged in
(``record.correlation_id``, empty outside a call). Under a snakepit-go host
(``SNAKEPIT_LOG_FORMAT=json``) each record is one JSON line the host turns
into a record of its own log, with the worker's pool and id; otherwise
records are plain text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "none": logging.CRITICAL + 10,
}

#: The key that marks a line as a log record for the host.
HOST_MARKER = "snakepit_log"


class CorrelationFilter(logging.Filter):
    """Sets ``record.correlation_id`` from the call being served (its session context)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = current_correlation_id()
        return True


def current_correlation_id() -> str:
    """The correlation id of the call this code runs in, or ``""``."""
    from .base_adapter import current_request_metadata  # late: base_adapter imports this module's users

    return current_request_metadata("correlation_id")


class HostFormatter(logging.Formatter):
    """One JSON object per record, for the host to parse (keys: level, logger, msg, pid, correlation_id, exc)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            HOST_MARKER: 1,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        cid = getattr(record, "correlation_id", "")
        if cid:
            out["correlation_id"] = cid
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(default_level: str = "warning", worker_id: str = "") -> None:
    """Sends log records to stderr; SNAKEPIT_LOG_LEVEL (debug..error, none) wins over default_level.

    SNAKEPIT_LOG_FORMAT=json (set by the host) writes one JSON object per record.
    """
    name = os.environ.get("SNAKEPIT_LOG_LEVEL", "").strip().lower() or default_level
    level = _LEVELS.get(name, logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CorrelationFilter())
    if os.environ.get("SNAKEPIT_LOG_FORMAT", "").strip().lower() == "json":
        handler.setFormatter(HostFormatter())
    else:
        tag = f" worker={worker_id}" if worker_id else ""
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s %(levelname)s [snakepit pid=%(process)d{tag} cid=%(correlation_id)s] %(name)s: %(message)s"
        ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    """Returns the logger called name (upstream API; records go where configure_logging sends them)."""
    return logging.getLogger(name)
