r"""Two-dimensional toy distributions with fixed-seed samplers.

Each sampler returns a float64 NumPy array of shape ``(n, 2)``; the same ``seed`` gives the
same samples. scikit-learn's generators are used where it has them (moons, circles).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.datasets import make_circles, make_moons

__all__ = ["TOY2D", "sample_toy2d"]


def _gaussian(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal((n, 2))


def _eight_gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    angles = 2 * np.pi * np.arange(8) / 8
    centers = 2 * np.stack([np.cos(angles), np.sin(angles)], -1)
    return centers[rng.integers(8, size=n)] + 0.2 * rng.standard_normal((n, 2))


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.uniform(-2, 2, n)
    x2 = rng.uniform(0, 1, n) + rng.integers(0, 2, n) * 2 - 2 + np.floor(x1) % 2
    return np.stack([x1, x2], -1)


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_moons(n, noise=0.05, random_state=int(rng.integers(2**31)))
    return (x - [0.5, 0.25]) * 2


def _circles(n: int, rng: np.random.Generator) -> np.ndarray:
    x, _ = make_circles(n, noise=0.05, factor=0.5, random_state=int(rng.integers(2**31)))
    return x * 2


TOY2D: dict[str, Callable[[int, np.random.Generator], np.ndarray]] = {
    "gaussian": _gaussian,
    "8gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "moons": _moons,
    "circles": _circles,
}


def sample_toy2d(name: str, n: int, seed: int = 0) -> np.ndarray:
    r"""Draws ``n`` samples of the toy distribution ``name`` (a key of :data:`TOY2D`).

    Example:
        >>> sample_toy2d("8gaussians", 4, seed=0).shape
        (4, 2)
    """
    if name not in TOY2D:
        raise ValueError(f"name must be one of {sorted(TOY2D)}, got {name!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return TOY2D[name](n, np.random.default_rng(seed)).astype(np.float64)
