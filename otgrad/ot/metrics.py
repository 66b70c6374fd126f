r"""Accuracy metrics of transport maps.

The L2 unexplained variance percentage and the cosine similarity follow Korotin et al.
(2021); the Wasserstein distance between point clouds is an exact discrete OT problem
solved by POT.

References:
    | Do Neural Optimal Transport Solvers Work? A Continuous Wasserstein-2 Benchmark
      (Korotin et al., 2021) https://arxiv.org/abs/2106.01954
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.samples import as_samples

__all__ = ["l2_uvp", "cosine_similarity", "wasserstein2", "transport_cost"]


def _pair(a: Any, b: Any, names: tuple[str, str]) -> tuple[torch.Tensor, torch.Tensor]:
    x, _ = as_samples(a, names[0])
    y, _ = as_samples(b, names[1], dim=x.shape[1])
    if x.shape != y.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )
    return x, y


def l2_uvp(mapped: Any, reference: Any, variance: float | None = None) -> float:
    r"""The L2 unexplained variance percentage of a map against a reference map.

    .. math:: \mathcal{L}^2\text{-UVP} = 100 \cdot
        \frac{\mathbb{E}_x \|\hat T(x) - T(x)\|^2}{\operatorname{Var}(Q)}

    Arguments:
        mapped: :math:`\hat T(x_i)`, shape ``(n, d)``.
        reference: :math:`T(x_i)` for the same points, shape ``(n, d)``.
        variance: :math:`\operatorname{Var}(Q)`, the total variance (trace of the
            covariance) of the target distribution; by default that of ``reference``
            (which are samples of :math:`Q`).

    Returns:
        The percentage (0 for a perfect map; 100 for the constant map at the target mean).

    Example:
        >>> y = np.random.default_rng(0).normal(size=(1000, 2))
        >>> l2_uvp(y, y)
        0.0
    """
    x, y = _pair(mapped, reference, ("mapped", "reference"))
    if variance is None:
        variance = float(y.var(0, unbiased=False).sum())
    if not (np.isfinite(variance) and variance > 0):
        raise ValueError(f"variance must be positive and finite, got {variance!r}")
    return float(100 * ((x - y) ** 2).sum(-1).mean() / variance)


def cosine_similarity(source: Any, mapped: Any, reference: Any) -> float:
    r"""The cosine between the displacements :math:`\hat T - \mathrm{id}` and :math:`T - \mathrm{id}`
    in :math:`L^2(P)`.

    Arguments:
        source: The points :math:`x_i \sim P`, shape ``(n, d)``.
        mapped: :math:`\hat T(x_i)`, shape ``(n, d)``.
        reference: :math:`T(x_i)`, shape ``(n, d)``.

    Returns:
        A number in :math:`[-1, 1]` (1 for a perfect map).
    """
    x, u = _pair(source, mapped, ("source", "mapped"))
    _, v = _pair(source, reference, ("source", "reference"))
    du, dv = u - x, v - x
    den = float(du.pow(2).sum(-1).mean().sqrt() * dv.pow(2).sum(-1).mean().sqrt())
    if den == 0:
        raise ValueError("a displacement is identically zero; the cosine is undefined")
    return float((du * dv).sum(-1).mean()) / den


def wasserstein2(X: Any, Y: Any, max_iter: int = 1_000_000) -> float:
    r"""The exact 2-Wasserstein distance between two point clouds with uniform weights (POT).

    Solves the discrete OT problem with squared Euclidean cost by the network simplex
    (:func:`ot.emd2`); memory and time grow with :math:`n m`, so keep a few thousand points.

    Arguments:
        X: Points, shape ``(n, d)``.
        Y: Points, shape ``(m, d)``.
        max_iter: The network simplex iteration limit.

    Returns:
        :math:`W_2(X, Y)` (not squared).

    Example:
        >>> X = np.zeros((3, 2)); Y = np.ones((4, 2))
        >>> round(wasserstein2(X, Y) ** 2, 6)
        2.0
    """
    import ot

    x, _ = as_samples(X, "X")
    y, _ = as_samples(Y, "Y", dim=x.shape[1])
    a = np.full(x.shape[0], 1 / x.shape[0])
    b = np.full(y.shape[0], 1 / y.shape[0])
    cost = ot.emd2(a, b, ot.dist(x.numpy(), y.numpy()), numItermax=max_iter)
    return float(np.sqrt(max(float(cost), 0.0)))


def transport_cost(source: Any, mapped: Any) -> float:
    r"""The mean squared displacement :math:`\mathbb{E}_x \|x - \hat T(x)\|^2` of a map.

    For the optimal map this is :math:`W_2^2(P, Q)`.
    """
    x, y = _pair(source, mapped, ("source", "mapped"))
    return float(((x - y) ** 2).sum(-1).mean())
