"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import os
import sys

__all__ = ["keep_freed_memory"]

_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "17179869184", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def keep_freed_memory() -> None:
    """Restarts the script, once, with glibc told to keep freed memory.

    glibc returns large freed blocks to the OS, so every step page-faults its tensors back
    in; on VMs that dominates the timings and varies. The setting must be in place before
    start-up, hence the re-execution. Call it first in ``main()``.
    """
    if any(os.environ.get(k) != v for k, v in _MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_MALLOC})
