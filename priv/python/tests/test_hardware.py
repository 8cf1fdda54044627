"""The device helper: the host's choice first, then what the machine has."""

from __future__ import annotations

import importlib.util

import pytest

from snakepit_bridge import hardware


def test_host_choice_wins(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SNAKEPIT_DEVICE", "cuda:0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert hardware.device() == "cuda:0"
    got = hardware.info()
    assert got["device"] == "cuda:0" and got["cuda_visible_devices"] == ["3"]


def test_without_a_choice_and_without_torch_it_is_the_cpu(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SNAKEPIT_DEVICE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert hardware.device() == "cpu"
    got = hardware.info()
    assert got["cpu_count"] >= 1 and got["cpus_usable"] >= 1 and got["memory_bytes"] > 0
    assert got["cuda_visible_devices"] is None


def test_the_calls_metadata_names_the_device(monkeypatch: pytest.MonkeyPatch):
    from snakepit_bridge.base_adapter import current_context_var
    from snakepit_bridge.session_context import SessionContext

    monkeypatch.setenv("SNAKEPIT_DEVICE", "cuda:1")
    token = current_context_var().set(SessionContext(None, "s", {"snakepit_device": "cuda:0"}))
    try:
        assert hardware.device() == "cuda:0"
        assert hardware.info()["call_device"] == "cuda:0"
    finally:
        current_context_var().reset(token)
    assert hardware.device() == "cuda:1", "outside a call: the environment"
