"""Shared-memory segments on the worker's side: names checked, views not copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from snakepit_bridge import shm

HOST = "q." + "0" * 64


@pytest.fixture
def shm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(shm.DIR_ENV, str(tmp_path))
    monkeypatch.setenv(shm.THRESHOLD_ENV, "1024")
    return tmp_path


def test_attach_maps_the_hosts_segment(shm_dir: Path) -> None:
    (shm_dir / HOST).write_bytes(b"abc" * 1000 + b"spare")
    view = shm.attach(f"{HOST}:3000")
    assert isinstance(view, memoryview) and view.readonly
    assert view.nbytes == 3000 and bytes(view[:3]) == b"abc"


@pytest.mark.parametrize("ref", ["../etc/passwd:1", "/etc/passwd:1", "r.w1.1." + "0" * 64 + ":1", "q.short:1",
                                 HOST + "/x:1", "", HOST, HOST + ":-1", HOST + ":99999"])
def test_attach_refuses_what_is_not_a_host_segment(shm_dir: Path, ref: str) -> None:
    (shm_dir / HOST).write_bytes(b"x")
    with pytest.raises(shm.SegmentError):
        shm.attach(ref)


def test_put_writes_into_the_lent_segment_when_it_fits(shm_dir: Path) -> None:
    (shm_dir / HOST).write_bytes(b"\0" * 8000)
    ref = shm.put(memoryview(bytearray(b"z" * 5000)), "pool-w1", f"{HOST}:8000")
    assert ref == f"{HOST}:5000"
    assert (shm_dir / HOST).read_bytes()[:5000] == b"z" * 5000
    assert [p.name for p in shm_dir.iterdir()] == [HOST]


def test_put_writes_a_segment_of_its_own_when_the_lent_one_is_too_small_or_none(shm_dir: Path) -> None:
    (shm_dir / HOST).write_bytes(b"\0" * 10)
    for accept in (f"{HOST}:10", "-"):
        ref = shm.put(b"z" * 5000, "pool-w1", accept)
        assert ref is not None
        name, _, n = ref.partition(":")
        assert name.startswith(f"r.pool-w1.{os.getpid()}.") and n == "5000"
        path = shm_dir / name
        assert path.read_bytes() == b"z" * 5000
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        path.unlink()
    assert shm.threshold() == 1024


def test_without_a_directory_or_an_accepting_host_nothing_goes_to_shared_memory(
        shm_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert shm.put(b"x", "pool-w1", "") is None, "a caller that did not say it takes segments gets bytes"
    monkeypatch.delenv(shm.DIR_ENV, raising=False)
    assert shm.threshold() == 0
    assert shm.put(b"x", "pool-w1", "-") is None
    with pytest.raises(shm.SegmentError):
        shm.attach(f"{HOST}:1")


def test_a_bad_worker_id_is_not_used_in_a_name(shm_dir: Path) -> None:
    assert shm.put(b"x", "../evil", "-") is None
    assert list(shm_dir.iterdir()) == []


def test_numpy_reads_a_parameter_view_without_copying(shm_dir: Path) -> None:
    np = pytest.importorskip("numpy")
    (shm_dir / HOST).write_bytes(np.arange(256, dtype=np.float32).tobytes())
    view = shm.attach(f"{HOST}:1024")
    arr = np.frombuffer(view, dtype=np.float32)
    assert arr[255] == 255.0 and not arr.flags.owndata and not arr.flags.writeable
    assert np.shares_memory(arr, np.frombuffer(view, dtype=np.uint8)), "the array is the mapped segment"
