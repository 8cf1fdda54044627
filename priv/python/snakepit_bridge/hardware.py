"""The device a worker should compute on, and what the machine has.

The host pins a worker to a GPU with ``CUDA_VISIBLE_DEVICES`` and tells it
with ``SNAKEPIT_DEVICE`` (``PoolConfig.CUDADevices``); otherwise the worker
picks: CUDA when PyTorch sees a GPU, Apple's MPS when PyTorch has it, else
the CPU. PyTorch is optional: nothing here imports it unless it is
installed.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

DEVICE_ENV = "SNAKEPIT_DEVICE"


#: The request metadata key the host names the worker's device with, on every call.
DEVICE_KEY = "snakepit_device"


def _call_device() -> str:
    from .base_adapter import current_request_metadata  # late: base_adapter is heavier

    return current_request_metadata(DEVICE_KEY)


def device() -> str:
    """The device to use: the host's choice (the call's ``snakepit_device`` metadata, else
    ``SNAKEPIT_DEVICE``), else ``cuda``, ``mps`` or ``cpu``."""
    chosen = _call_device() or os.environ.get(DEVICE_ENV, "").strip()
    if chosen:
        return chosen
    if importlib.util.find_spec("torch") is not None:
        import torch  # type: ignore[import-not-found]

        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
    return "cpu"


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def info() -> dict[str, Any]:
    """What this worker can use: CPUs, memory, the GPUs it may see and the device it should use."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return {
        "cpu_count": os.cpu_count() or 0,
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0),
        "memory_bytes": _memory_bytes(),
        "cuda_visible_devices": visible.split(",") if visible else None,
        "device": device(),
        "call_device": _call_device(),
    }
