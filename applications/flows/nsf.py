r"""The baseline of the flow benchmarks: zuko's neural spline flow on standardized data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from otgrad.train import fit

__all__ = ["NSF_DEFAULTS", "NSFModel", "fit_nsf"]

#: zuko's NSF of the toy benchmark (5,466 parameters in two dimensions).
NSF_DEFAULTS: dict[str, Any] = dict(transforms=3, hidden=(24, 24), bins=8)


class NSFModel(nn.Module):
    r"""zuko's neural spline flow on per-feature standardized data, with the same
    ``log_prob`` / ``sample`` interface as :class:`~otgrad.flows.FlowNetwork`
    (tensors in data units). Needs ``pip install otgrad[bench]`` (zuko)."""

    def __init__(
        self, dim: int, transforms: int = 3, hidden: Sequence[int] = (32, 32), bins: int = 8
    ):
        super().__init__()
        try:
            import zuko
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the NSF baseline needs zuko: pip install 'otgrad[bench]' (or pip install zuko)"
            ) from e
        self.flow = zuko.flows.NSF(
            dim, transforms=transforms, hidden_features=tuple(hidden), bins=bins
        )
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def standardize(self, x: torch.Tensor) -> None:
        r"""Sets the per-feature mean and standard deviation from the data ``x``."""
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r"""The log-density of ``x`` (data units)."""
        return self.flow().log_prob((x - self.mean) / self.std) - self.std.log().sum()

    def sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        r"""``n`` samples (data units); zuko draws from the global generator, seeded here."""
        with torch.random.fork_rng(), torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            return self.flow().sample((n,)) * self.std + self.mean


def fit_nsf(model: NSFModel, X: np.ndarray, steps: int, batch_size: int, lr: float, seed: int):
    r"""Fits ``model`` to ``X`` by maximum likelihood with :func:`otgrad.train.fit` (Adam,
    cosine learning rate), as the flows are fitted."""
    x = torch.as_tensor(X, dtype=torch.float32)
    model.standardize(x)
    n = x.shape[0]

    def sampler(g: torch.Generator) -> list[torch.Tensor]:
        return [x[torch.randint(n, (batch_size,), generator=g)]]

    def nll(m: NSFModel, batch: torch.Tensor) -> torch.Tensor:
        return -m.log_prob(batch).mean()

    per_epoch = min(steps, 250)
    return fit(
        model, nll, sampler, epochs=math.ceil(steps / per_epoch), steps_per_epoch=per_epoch,
        lr=lr, schedule="cosine", seed=seed, progress=False,
    )  # fmt: skip
