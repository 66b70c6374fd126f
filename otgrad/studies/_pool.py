r"""Runs independent study tasks in worker processes with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any

from tqdm.auto import tqdm

__all__ = ["pool_map"]


def pool_map(fn: Callable[[Any], Any], tasks: Sequence, workers: int, desc: str) -> list:
    r"""Applies ``fn`` to every task, in ``workers`` spawned processes (in order of completion)."""
    results = []
    bar = tqdm(total=len(tasks), desc=desc, disable=None)
    if workers <= 1:
        for t in tasks:
            results.append(fn(t))
            bar.update(1)
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as ex:
            futures = [ex.submit(fn, t) for t in tasks]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update(1)
    bar.close()
    return results
