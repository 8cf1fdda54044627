"""Worker logging: the host's JSON lines and the correlation id of the call."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from snakepit_bridge import logging_config
from snakepit_bridge.base_adapter import current_context_var
from snakepit_bridge.session_context import SessionContext


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch):
    def setup(fmt: str, level: str = "info") -> io.StringIO:
        buf = io.StringIO()
        monkeypatch.setattr(logging_config.sys, "stderr", buf)
        monkeypatch.setenv("SNAKEPIT_LOG_FORMAT", fmt)
        monkeypatch.setenv("SNAKEPIT_LOG_LEVEL", level)
        logging_config.configure_logging(worker_id="w-1")
        return buf

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield setup
    root.handlers[:], root.level = saved


def in_call(correlation_id: str):
    ctx = SessionContext(None, "s-1", {"correlation_id": correlation_id})
    return current_context_var().set(ctx)


def test_json_lines_carry_level_logger_and_correlation_id(captured):
    buf = captured("json")
    log = logging.getLogger("my.adapter")
    token = in_call("cid-42")
    try:
        log.info("loaded %d weights", 3)
        try:
            raise ValueError("bad")
        except ValueError:
            log.exception("failed")
    finally:
        current_context_var().reset(token)
    log.warning("outside a call")
    log.debug("below the level")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first == {"snakepit_log": 1, "level": "info", "logger": "my.adapter", "msg": "loaded 3 weights",
                     "pid": os.getpid(), "correlation_id": "cid-42"}
    assert second["level"] == "error" and "ValueError: bad" in second["exc"]
    assert "correlation_id" not in third and third["level"] == "warning"


def test_plain_text_shows_the_correlation_id(captured):
    buf = captured("")
    token = in_call("cid-7")
    try:
        logging.getLogger("x").info("hello")
    finally:
        current_context_var().reset(token)
    out = buf.getvalue()
    assert "cid=cid-7" in out and "worker=w-1" in out and "INFO" in out and "hello" in out


def test_none_silences(captured):
    buf = captured("json", level="none")
    logging.getLogger("x").error("nobody hears this")
    assert buf.getvalue() == ""
