r"""The training loop shared by every estimator and study.

:func:`fit` runs minibatch first-order optimization over tensors held in memory, with
an optional validation set (keeping the best weights, as in the paper's protocol),
a wall-clock budget, and a tqdm progress bar when stderr is a terminal.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["fit", "History"]


@dataclass
class History:
    r"""What :func:`fit` did: per-epoch mean training loss, validation loss, and the best epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_val: float = math.inf
    steps: int = 0
    seconds: float = 0.0


def fit(
    model: nn.Module,
    loss_fn: Callable[..., Tensor],
    data: Sequence[Tensor],
    *,
    epochs: int = 10,
    batch_size: int = 1000,
    lr: float = 1e-3,
    val_data: Sequence[Tensor] | None = None,
    seed: int | None = None,
    time_limit: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: bool | None = None,
) -> History:
    r"""Trains ``model`` by minibatch Adam on ``loss_fn(model, *batch)``.

    Arguments:
        model: The module to train (its parameters are updated in place).
        loss_fn: ``(model, *tensors) -> scalar loss``.
        data: Tensors sharing their first dimension (samples).
        epochs: The number of passes over ``data``.
        batch_size: The minibatch size.
        lr: The learning rate of the default Adam optimizer.
        val_data: Validation tensors; when given, the weights with the lowest validation
            loss (evaluated after each epoch) are restored at the end.
        seed: Seeds the minibatch shuffling (a private ``torch.Generator``).
        time_limit: Stops after this many seconds (checked after each step).
        optimizer: An optimizer to use instead of Adam.
        progress: Show a progress bar (default: when stderr is a terminal).

    Returns:
        The :class:`History` of the run.
    """
    data = list(data)
    if not data:
        raise ValueError("data must hold at least one tensor")
    n = data[0].shape[0]
    if n == 0 or any(t.shape[0] != n for t in data):
        raise ValueError("data tensors must be non-empty and share their first dimension")
    if batch_size < 1 or epochs < 1:
        raise ValueError("batch_size and epochs must be positive")
    device = data[0].device
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed if seed is not None else torch.seed())
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    show = sys.stderr.isatty() if progress is None else progress
    hist = History()
    best_state = None
    start = time.perf_counter()
    bar = tqdm(total=epochs, disable=not show, desc="fit")
    stop = False
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        total, count = 0.0, 0
        model.train()
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]
            loss = loss_fn(model, *(t[idx] for t in data))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.numel()
            count += idx.numel()
            hist.steps += 1
            if time_limit is not None and time.perf_counter() - start > time_limit:
                stop = True
                break
        hist.train_loss.append(total / max(count, 1))
        if val_data is not None:
            model.eval()
            with torch.no_grad():
                val = float(loss_fn(model, *val_data))
            hist.val_loss.append(val)
            if val < hist.best_val:
                hist.best_val, hist.best_epoch = val, epoch
                best_state = copy.deepcopy(model.state_dict())
        bar.update(1)
        bar.set_postfix(loss=f"{hist.train_loss[-1]:.3e}")
        if stop:
            break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist.seconds = time.perf_counter() - start
    return hist
