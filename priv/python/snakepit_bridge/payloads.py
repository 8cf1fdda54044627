"""Values a tool may return that the bridge encodes specially."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Binary:
    """Raw bytes returned in ``binary_result``, with optional JSON metadata.

    A tool that returns ``bytes`` gets the same treatment with empty metadata;
    the metadata travels as the JSON value of ``result`` (type ``snakepit.binary``).
    A ``memoryview`` is kept as it is (a large one is written straight to
    shared memory, see :mod:`snakepit_bridge.shm`); a ``bytearray`` is copied.
    """

    data: Any
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise TypeError(f"Binary data must be bytes, not {type(self.data).__name__}")
        if not isinstance(self.data, (bytes, memoryview)):
            object.__setattr__(self, "data", bytes(self.data))


@dataclass
class StreamChunk:
    """One chunk of a streaming tool: payload, whether it is the last, metadata.

    A streaming tool may yield plain values instead; then no chunk is final
    and the bridge appends an empty final chunk.
    """

    data: Any
    is_final: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
