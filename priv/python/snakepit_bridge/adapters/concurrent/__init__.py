"""AsyncShowcaseAdapter: an asyncio adapter that runs many calls per process."""

from .adapter import AsyncShowcaseAdapter

__all__ = ["AsyncShowcaseAdapter"]
