"""Shared-memory payloads: large binary parameters and results skip gRPC.

The host (package ``internal/shm``) names a private directory in
``$SNAKEPIT_SHM_DIR`` and a size in ``$SNAKEPIT_SHM_THRESHOLD``. A binary
parameter of at least that size arrives as an empty ``binary_parameters``
entry plus the request metadata ``snakepit_shm:<param>`` naming a segment
(a file in that directory) the host wrote; the tool gets a read-only
``memoryview`` of it, mapped, not copied (``numpy.frombuffer`` keeps it that
way; ``bytes(view)`` copies). A binary result of at least that size is
written, when the request's metadata ``snakepit_shm_accept`` says the caller
takes segments (the host does; other callers get bytes), into the segment
the host lent for it, or else to a new one of this worker's (``r.<worker id>.<pid>.<random>``) whose
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
ACCEPT_KEY = "snakepit_shm_accept"

_HOST_SEGMENT = re.compile(r"^q\.[0-9a-f]{64}$")


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


def _parse_ref(ref: str) -> tuple[str, int]:
    name, _, num = ref.partition(":")
    if not _HOST_SEGMENT.match(name) or not num.isdigit():
        raise SegmentError(f"{ref[:80]!r} is not a segment reference")
    return name, int(num)


def attach(ref: str) -> memoryview:
    """Maps the host's segment ``name:length`` read-only (no copy)."""
    d = directory()
    if not d:
        raise SegmentError("a shared-memory parameter, but this worker has no segment directory")
    name, length = _parse_ref(ref)
    fd = os.open(os.path.join(d, name), os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    try:
        if length > os.fstat(fd).st_size:
            raise SegmentError(f"segment {name} is shorter than {length} bytes")
        if length == 0:
            return memoryview(b"")
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        return memoryview(mmap.mmap(fd, length, flags=flags, prot=mmap.PROT_READ))
    finally:
        os.close(fd)


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data).cast("B")
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)


def put(data: Any, worker_id: str, accept: str) -> Optional[str]:
    """Writes a result for a host that accepts segments; returns its reference, None to send it inline.

    accept is the request's ``snakepit_shm_accept``: a segment the host
    lent for the result (``name:size``; used when the result fits), or
    ``-``. Otherwise the result goes to a new segment of this worker's,
    which the host adopts.
    """
    d = directory()
    if not d or not accept:
        return None
    n = nbytes(data)
    if accept != "-":
        try:
            name, cap = _parse_ref(accept)
        except SegmentError:
            return None
        if n <= cap:
            try:
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
            except OSError:
                return None
            try:
                _write_all(fd, data)
            except OSError:
                return None
            finally:
                os.close(fd)
            return f"{name}:{n}"
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", worker_id or ""):
        return None
    name = f"r.{worker_id}.{os.getpid()}.{secrets.token_hex(32)}"
    path = os.path.join(d, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        _write_all(fd, data)
    except OSError:  # a full /dev/shm: inline instead
        os.close(fd)
        os.unlink(path)
        return None
    os.close(fd)
    return f"{name}:{n}"


def nbytes(data: Any) -> int:
    """The size in bytes of a buffer."""
    return memoryview(data).nbytes
