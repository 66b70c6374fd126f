r"""Closed-form optimal transport between Gaussians (Bures–Wasserstein maps), via POT.

The optimal map between :math:`\mathcal{N}(m_s, \Sigma_s)` and :math:`\mathcal{N}(m_t,
\Sigma_t)` is affine, :math:`T(x) = A (x - m_s) + m_t` with the symmetric positive definite
:math:`A = \Sigma_s^{-1/2} (\Sigma_s^{1/2} \Sigma_t \Sigma_s^{1/2})^{1/2} \Sigma_s^{-1/2}`.
It is the ground truth of Gaussian benchmarks and, fitted to the sample moments, the
linear baseline of every OT map.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..data.samples import as_samples

__all__ = ["bures_map", "GaussianMap"]


def bures_map(
    mean_source: np.ndarray,
    cov_source: np.ndarray,
    mean_target: np.ndarray,
    cov_target: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Returns the optimal affine map :math:`x \mapsto x A + b` between two Gaussians.

    Arguments:
        mean_source: :math:`m_s`, shape ``(d,)``.
        cov_source: :math:`\Sigma_s`, shape ``(d, d)``, symmetric positive definite.
        mean_target: :math:`m_t`, shape ``(d,)``.
        cov_target: :math:`\Sigma_t`, shape ``(d, d)``.

    Returns:
        ``(A, b)`` with ``A`` of shape ``(d, d)`` (symmetric) and ``b`` of shape ``(d,)``;
        row vectors map as ``x @ A + b`` (POT's convention).

    Example:
        >>> A, b = bures_map(np.zeros(2), np.eye(2), np.ones(2), 4 * np.eye(2))
        >>> np.allclose(A, 2 * np.eye(2)), np.allclose(b, 1)
        (True, True)
    """
    import ot

    ms, mt = np.asarray(mean_source, float), np.asarray(mean_target, float)
    cs, ct = np.asarray(cov_source, float), np.asarray(cov_target, float)
    d = ms.shape[0] if ms.ndim == 1 else -1
    for name, v, shape in (
        ("mean_source", ms, (d,)),
        ("mean_target", mt, (d,)),
        ("cov_source", cs, (d, d)),
        ("cov_target", ct, (d, d)),
    ):
        if v.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    A, b = ot.gaussian.bures_wasserstein_mapping(ms, mt, cs, ct)
    return (A + A.T) / 2, np.asarray(b).reshape(-1)


class GaussianMap:
    r"""The linear (Gaussian) baseline: the Bures map between the fitted sample moments.

    Exact when both sample sets are Gaussian; otherwise the best map that only matches
    means and covariances. The map is the gradient of the convex quadratic
    :math:`\psi(x) = \tfrac12 x^\top A x + b^\top x`.

    Attributes:
        A_: The symmetric matrix :math:`A`, shape ``(d, d)``.
        b_: The offset :math:`b`, shape ``(d,)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X, Y = rng.normal(size=(500, 2)), 3 + 2 * rng.normal(size=(500, 2))
        >>> T = GaussianMap().fit(X, Y)
        >>> np.round(T.transform(np.zeros((1, 2))), 0)
        array([[3., 3.]])
    """

    def fit(self, X: Any, Y: Any) -> GaussianMap:
        r"""Fits the map from the means and covariances of ``X`` (source) and ``Y`` (target)."""
        import ot

        x, _ = as_samples(X, "X", min_samples=2)
        y, _ = as_samples(Y, "Y", dim=x.shape[1], min_samples=2)
        _check_spread(x.numpy(), "X")
        A, b = ot.gaussian.empirical_bures_wasserstein_mapping(x.numpy(), y.numpy())
        self.A_, self.b_ = (A + A.T) / 2, np.asarray(b).reshape(-1)
        self.n_features_in_ = x.shape[1]
        return self

    def _check(self, X: Any, name: str):
        if not hasattr(self, "A_"):
            raise RuntimeError("GaussianMap is not fitted; call fit(X, Y) first")
        return as_samples(X, name, dim=self.n_features_in_)

    def transform(self, X: Any) -> Any:
        r"""Maps source points: :math:`T(x) = x A + b`."""
        x, back = self._check(X, "X")
        return back(x @ _t(self.A_) + _t(self.b_))

    def inverse_transform(self, Y: Any) -> Any:
        r"""Maps target points back: :math:`T^{-1}(y) = (y - b) A^{-1}`."""
        y, back = self._check(Y, "Y")
        return back(_t(np.linalg.solve(self.A_, (y.numpy() - self.b_).T).T))

    def potential(self, X: Any) -> Any:
        r"""The convex potential :math:`\psi(x) = \tfrac12 x^\top A x + b^\top x`, shape ``(n,)``."""
        x, back = self._check(X, "X")
        return back(0.5 * ((x @ _t(self.A_)) * x).sum(-1) + x @ _t(self.b_))


def _check_spread(x: np.ndarray, name: str) -> None:
    r"""A ``ValueError`` unless the covariance of ``x`` is positive definite (the Bures map
    inverts the source covariance; a flat direction would blow the map up)."""
    eig = np.linalg.eigvalsh(np.atleast_2d(np.cov(x, rowvar=False)))
    if not eig[0] > 1e-12 * eig[-1] or eig[-1] == 0:
        raise ValueError(
            f"{name} has a singular covariance (eigenvalues {eig[0]:.3g} to {eig[-1]:.3g}; "
            f"{x.shape[0]} samples in {x.shape[1]} dimensions): the Gaussian map needs a "
            "source with spread in every direction"
        )


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))
