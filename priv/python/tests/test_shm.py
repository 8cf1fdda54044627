"""Shared-memory segments on the worker's side: names checked, views not copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snakepit_bridge import shm


@pytest.fixture
def shm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(shm.DIR_ENV, str(tmp_path))
    monkeypatch.setenv(shm.THRESHOLD_ENV, "1024")
    return tmp_path


def test_attach_maps_the_hosts_segment(shm_dir: Path) -> None:
    name = "q." + "0" * 32
    (shm_dir / name).write_bytes(b"abc" * 1000)
    view = shm.attach(name)
    assert isinstance(view, memoryview) and view.readonly
    assert view.nbytes == 3000 and bytes(view[:3]) == b"abc"


@pytest.mark.parametrize("name", ["../etc/passwd", "/etc/passwd", "r.w1.1." + "0" * 32, "q.short", "q." + "0" * 32 + "/x", ""])
def test_attach_refuses_what_is_not_a_host_segment(shm_dir: Path, name: str) -> None:
    with pytest.raises(shm.SegmentError):
        shm.attach(name)


def test_put_writes_a_segment_named_for_this_worker(shm_dir: Path) -> None:
    data = memoryview(bytearray(b"z" * 5000))
    name = shm.put(data, "pool-w1")
    assert name is not None and name.startswith(f"r.pool-w1.{os.getpid()}.")
    path = shm_dir / name
    assert path.read_bytes() == b"z" * 5000
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert shm.threshold() == 1024


def test_without_a_directory_nothing_goes_to_shared_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(shm.DIR_ENV, raising=False)
    assert shm.threshold() == 0
    assert shm.put(b"x", "pool-w1") is None
    with pytest.raises(shm.SegmentError):
        shm.attach("q." + "0" * 32)


def test_a_bad_worker_id_is_not_used_in_a_name(shm_dir: Path) -> None:
    assert shm.put(b"x", "../evil") is None
    assert list(shm_dir.iterdir()) == []
