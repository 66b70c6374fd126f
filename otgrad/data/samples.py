r"""Validation and conversion of user sample sets (NumPy arrays or torch tensors)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .._validation import as_samples

__all__ = ["as_samples", "scalar_standardization", "standardization_from_metadata"]


def scalar_standardization(t: Tensor) -> tuple[Tensor, float]:
    r"""The mean of the samples ``t`` (shape ``(n, d)``) and one scale, the root mean
    per-coordinate variance (1 for constant data). One number for every coordinate keeps
    the geometry: a gradient field stays a gradient field, a convex potential convex."""
    mean = t.mean(0)
    scale = float(t.var(0, unbiased=False).mean().sqrt())
    return mean, scale if scale > 0 else 1.0


def standardization_from_metadata(mean: Any, scale: Any, dim: int) -> tuple[Tensor, float]:
    r"""Checks a saved ``(mean, scale)`` pair against the dimension ``dim``.

    Raises:
        ValueError: If the mean is not ``dim`` finite numbers or the scale not a positive
            finite number (``TypeError`` for non-numbers).
    """
    m = torch.tensor(mean, dtype=torch.float64)
    s = float(scale)
    if m.shape != (dim,) or not (s > 0 and math.isfinite(s)):
        raise ValueError("scaling does not match the network")
    if not bool(torch.isfinite(m).all()):
        raise ValueError("non-finite scaling")
    return m, s
