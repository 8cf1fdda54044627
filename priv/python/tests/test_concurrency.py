"""An adapter's declared concurrency: validated at start, told to the host in the handshake."""

from __future__ import annotations

import pytest

from snakepit_bridge.adapters.concurrent import AsyncShowcaseAdapter
from snakepit_bridge.adapters.showcase import ShowcaseAdapter
from snakepit_bridge.server import StartupError, declared_concurrency, handshake_line


def test_the_default_is_one_call_per_process() -> None:
    assert declared_concurrency(ShowcaseAdapter, "showcase") == 1
    assert handshake_line("unix:/run/w.sock", "127.0.0.1") == "snakepit-bridge|1|unix|/run/w.sock"


def test_a_declared_concurrency_goes_into_the_handshake() -> None:
    assert declared_concurrency(AsyncShowcaseAdapter, "async") == 16
    assert handshake_line("4242", "127.0.0.1", 16) == "snakepit-bridge|1|tcp|127.0.0.1:4242|concurrency=16"


@pytest.mark.parametrize("bad", [0, -1, 1025, 2.5, "4", True, None])
def test_a_bad_declaration_fails_the_start(bad: object) -> None:
    cls = type("Bad", (ShowcaseAdapter,), {"max_concurrency": bad})
    with pytest.raises(StartupError, match="max_concurrency"):
        declared_concurrency(cls, "bad")
