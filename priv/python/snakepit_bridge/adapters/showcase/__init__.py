"""The showcase adapter used by the demo, the tests and the benchmarks."""

from .adapter import ShowcaseAdapter

__all__ = ["ShowcaseAdapter"]
