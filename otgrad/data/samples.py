r"""Validation and conversion of user sample sets (NumPy arrays or torch tensors)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .._validation import as_samples

__all__ = ["as_samples", "scalar_standardization", "standardization_from_metadata"]


def scalar_standardization(t: Tensor, name: str = "X") -> tuple[Tensor, float]:
    r"""The mean of the samples ``t`` (shape ``(n, d)``, float64) and one scale, the root
    mean per-coordinate variance. One number for every coordinate keeps the geometry: a
    gradient field stays a gradient field, a convex potential convex.

    Raises:
        ValueError: If every sample is the same point (nothing to scale), or the samples are
            too large for their variance to be a float64 number.
    """
    mean, scale = _moments(t)
    if not math.isfinite(scale):  # the squares overflow (|t| > 1e154): moments of t / max|t|
        big = float(t.abs().max())
        mean, scale = _moments(t / big)
        mean, scale = mean * big, scale * big
    if not (math.isfinite(scale) and bool(torch.isfinite(mean).all())):
        big = float(t.abs().max())
        raise ValueError(f"{name} is too large to standardize (|values| up to {big:.3g})")
    if scale == 0:
        raise ValueError(f"{name} is constant (every sample is the same point): nothing to fit")
    return mean, scale


def _moments(t: Tensor) -> tuple[Tensor, float]:
    return t.mean(0), float(t.var(0, unbiased=False).mean().sqrt())


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
