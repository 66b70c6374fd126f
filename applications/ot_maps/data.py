r"""The data of the optimal transport benchmarks: random Gaussian pairs with their true
(Bures) map, and the W2 benchmark's arrays."""

from __future__ import annotations

import os

import numpy as np

from otgrad.ot import bures_map

__all__ = ["gaussian_pair", "load_w2bench"]


def _random_cov(d: int, rng: np.random.Generator, spread: float = 16.0) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))
    ev = rng.permutation(np.geomspace(1 / np.sqrt(spread), np.sqrt(spread), d))
    return (q * ev) @ q.T


def gaussian_pair(d: int, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    r"""Samples of a random anisotropic Gaussian pair and the true map on test points.

    Returns:
        A dict with ``X``, ``Y`` (independent training samples of source and target),
        ``X_test``, ``T_test`` (the Bures map of ``X_test``), ``var`` (the target's
        total variance) and the true map ``x @ A + b`` as ``A``, ``b``.
    """
    rng = np.random.default_rng(seed)
    cs, ct = _random_cov(d, rng), _random_cov(d, rng)
    ms, mt = rng.standard_normal(d), rng.standard_normal(d)
    A, b = bures_map(ms, cs, mt, ct)
    ls, lt = np.linalg.cholesky(cs), np.linalg.cholesky(ct)
    X = ms + rng.standard_normal((n_train, d)) @ ls.T
    Y = mt + rng.standard_normal((n_train, d)) @ lt.T
    Xt = ms + rng.standard_normal((n_test, d)) @ ls.T
    return dict(X=X, Y=Y, X_test=Xt, T_test=Xt @ A + b, var=float(np.trace(ct)), A=A, b=b)


def load_w2bench(root: str, d: int) -> dict[str, np.ndarray]:
    r"""Loads ``arrays/D{d}.npz`` of the W2 benchmark folder ``root`` (see its README)."""
    z = np.load(os.path.join(root, "arrays", f"D{d}.npz"))
    Y = z["Y_train"]
    return dict(
        X=z["X_train"],
        Y=Y,
        X_test=z["X_test"],
        T_test=z["T_test"],
        var=float(Y.var(0).sum()),
    )
