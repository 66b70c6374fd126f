r"""Validation and conversion of user sample sets (NumPy arrays or torch tensors)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_samples", "scalar_standardization", "standardization_from_metadata"]

_FLOAT_NUMPY = (np.float16, np.float32, np.float64)


def as_samples(
    x: Any,
    name: str,
    dim: int | None = None,
    min_samples: int = 1,
) -> tuple[Tensor, Callable[[Tensor], Any]]:
    r"""Checks a sample set of shape ``(n, d)`` and converts it to a float64 CPU tensor.

    Arguments:
        x: A NumPy array or a torch tensor of floating dtype, shape ``(n, d)``.
        name: The argument's name, used in error messages.
        dim: The required number of columns :math:`d` (any if ``None``).
        min_samples: The minimal number of rows.

    Returns:
        The samples as a float64 CPU tensor, and a function that converts a result tensor
        back to the input's kind (NumPy or torch), dtype and device.

    Raises:
        TypeError: If ``x`` is not an array or tensor of floating dtype.
        ValueError: If ``x`` is not 2-D, has too few rows, the wrong number of columns,
            or non-finite values.
    """
    if isinstance(x, np.ndarray):
        if x.dtype.type not in _FLOAT_NUMPY:
            raise TypeError(
                f"{name} must have a floating dtype, got {x.dtype}; convert it explicitly "
                "(e.g. x.astype(np.float64))"
            )
        dtype = x.dtype

        def back(t: Tensor) -> Any:
            return t.detach().cpu().numpy().astype(dtype, copy=False)

        t = torch.from_numpy(np.ascontiguousarray(x))
    elif isinstance(x, Tensor):
        if not x.dtype.is_floating_point:
            raise TypeError(
                f"{name} must have a floating dtype, got {x.dtype}; convert it explicitly "
                "(e.g. x.double())"
            )
        dtype, device = x.dtype, x.device

        def back(t: Tensor) -> Any:
            return t.detach().to(dtype=dtype, device=device)

        t = x.detach()
    else:
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape (n_samples, n_features), got {tuple(t.shape)}")
    if t.shape[0] < min_samples:
        raise ValueError(f"{name} has {t.shape[0]} samples; at least {min_samples} are needed")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} features, got {t.shape[1]}")
    t = t.to(device="cpu", dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).any(-1).sum())
        raise ValueError(f"{name} contains NaN or infinite values (in {bad} rows)")
    return t, back


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
