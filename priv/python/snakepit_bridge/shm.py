"""Shared-memory payloads: large binary parameters and results skip gRPC.

The host (package ``internal/shm``) names a private directory in
``$SNAKEPIT_SHM_DIR`` and a size in ``$SNAKEPIT_SHM_THRESHOLD``. A binary
parameter of at least that size arrives as an empty ``binary_parameters``
entry plus the request metadata ``snakepit_shm:<param>`` naming a segment
(a file in that directory) the host wrote; the tool gets a read-only
``memoryview`` of it, mapped, not copied (``numpy.frombuffer`` keeps it that
way; ``bytes(view)`` copies). A binary result of at least that size is
written to a segment of this worker's (``r.<worker id>.<pid>.<random>``) whose
name goes back in the response metadata ``snakepit_shm_result``; the host
maps it and unlinks it. Segment names are checked before anything is
opened: a name from the wire never reaches outside the directory.
"""

from __future__ import annotations

import mmap
import os
import re
import secrets
from typing import Any, Optional

DIR_ENV = "SNAKEPIT_SHM_DIR"
THRESHOLD_ENV = "SNAKEPIT_SHM_THRESHOLD"
PARAM_KEY_PREFIX = "snakepit_shm:"
RESULT_KEY = "snakepit_shm_result"

_HOST_SEGMENT = re.compile(r"^q\.[0-9a-f]{32}$")


class SegmentError(ValueError):
    """A segment name that is not the host's, or a segment that cannot be read."""


def directory() -> str:
    """The segment directory the host gave this worker ("" when shared memory is off)."""
    return os.environ.get(DIR_ENV, "")


def threshold() -> int:
    """The size from which results go through shared memory (0 when off)."""
    if not directory():
        return 0
    try:
        return max(1, int(os.environ.get(THRESHOLD_ENV, "")))
    except ValueError:
        return 1 << 20


def attach(name: str) -> memoryview:
    """Maps the host's segment name read-only (no copy)."""
    d = directory()
    if not d:
        raise SegmentError("a shared-memory parameter, but this worker has no segment directory")
    if not _HOST_SEGMENT.match(name):
        raise SegmentError(f"{name[:80]!r} is not a segment name")
    fd = os.open(os.path.join(d, name), os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return memoryview(b"")
        return memoryview(mmap.mmap(fd, size, prot=mmap.PROT_READ))
    finally:
        os.close(fd)


def put(data: Any, worker_id: str) -> Optional[str]:
    """Writes a result to a new segment of this worker's; None when it cannot (the caller sends it inline)."""
    d = directory()
    if not d or not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", worker_id or ""):
        return None
    name = f"r.{worker_id}.{os.getpid()}.{secrets.token_hex(16)}"
    path = os.path.join(d, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(fd, view):]
    except OSError:  # a full /dev/shm: inline instead
        os.close(fd)
        os.unlink(path)
        return None
    os.close(fd)
    return name


def nbytes(data: Any) -> int:
    """The size in bytes of a buffer."""
    return memoryview(data).nbytes
