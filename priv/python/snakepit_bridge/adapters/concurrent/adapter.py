"""AsyncShowcaseAdapter: the ShowcaseAdapter's tools, plus coroutines that
show one worker process running many calls at once.

It declares ``max_concurrency = 16``: the host gives each of its workers 16
call slots (capped by the pool's MaxCallsPerWorker) instead of one, and the
coroutines interleave on the worker's event loop. Its sync tools (the
showcase's) run in the worker's thread pool and are thread-safe.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ...base_adapter import tool
from ..showcase import ShowcaseAdapter


class AsyncShowcaseAdapter(ShowcaseAdapter):
    """ShowcaseAdapter with max_concurrency 16 and tools that measure overlap."""

    max_concurrency = 16

    def __init__(self) -> None:
        super().__init__()
        self._running = 0
        self._peak = 0

    @tool(description="Answers pong from the event loop (async)")
    async def aping(self) -> str:
        return "pong"

    @tool(description="Holds a call slot for ms milliseconds on the event loop; returns how many calls ran at once then")
    async def hold(self, ms: int) -> dict[str, Any]:
        self._running += 1
        self._peak = max(self._peak, self._running)
        try:
            await asyncio.sleep(ms / 1000)
            return {"pid": os.getpid(), "running": self._running}
        finally:
            self._running -= 1

    @tool(description="The most calls of hold that ran at once in this process; resets it")
    def peak(self) -> int:
        peak, self._peak = self._peak, 0
        return peak
