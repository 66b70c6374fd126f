"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time

import torch

__all__ = ["device_name", "keep_freed_memory", "timeit"]

_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "17179869184", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def keep_freed_memory() -> None:
    """Restarts the script, once, with glibc told to keep freed memory.

    glibc returns large freed blocks to the OS, so every step page-faults its tensors back
    in; on VMs that dominates the timings and varies. The setting must be in place before
    start-up, hence the re-execution. Call it first in ``main()``.
    """
    if any(os.environ.get(k) != v for k, v in _MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_MALLOC})


def timeit(fn, device, repeats=7, min_time=0.2):
    """Median wall time of fn() in ms, after a warm-up, synchronizing CUDA."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    times = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            sync()
            el = time.perf_counter() - t0
            if el >= min_time / repeats or n >= 50:
                break
        times.append(el / n * 1e3)
    return statistics.median(times)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's with the number of threads torch uses; printed too."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}", flush=True)
    return name
