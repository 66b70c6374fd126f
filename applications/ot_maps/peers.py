r"""The peers of :class:`~otgrad.ot.BrenierMap`: POT's estimators and the exact plan."""

from __future__ import annotations

import numpy as np

__all__ = ["PEERS", "peer_map"]

PEERS = (
    "POT LinearTransport",
    "POT MappingTransport (linear)",
    "POT MappingTransport (kernel)",
    "exact plan (in-sample)",
)


def peer_map(
    method: str, X: np.ndarray, Y: np.ndarray, Xt: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Fits one of POT's estimators (:data:`PEERS`) and returns ``(mapped, points)``: the
    test points mapped, or for the exact plan its own first ``n`` training points mapped
    (its barycentric projection has no out-of-sample map)."""
    import ot

    if method == "POT LinearTransport":
        return ot.da.LinearTransport().fit(Xs=X, Xt=Y).transform(Xs=Xt), Xt
    if method.startswith("POT MappingTransport"):
        m = _mapping_transport(method, X[:n])
        return m.fit(Xs=X[:n], Xt=Y[:n]).transform(Xs=Xt), Xt
    if method == "exact plan (in-sample)":
        return ot.da.EMDTransport().fit(Xs=X[:n], Xt=Y[:n]).transform(Xs=X[:n]), X[:n]
    raise ValueError(f"unknown method {method!r}")


def _mapping_transport(method: str, X: np.ndarray):
    import ot

    if "linear" in method:
        return ot.da.MappingTransport(kernel="linear", mu=1.0, eta=1e-3, bias=True, max_iter=10)
    # the Gaussian kernel's bandwidth by the median heuristic (POT's default, 1, ignores scale)
    sq = ot.dist(X[:500], X[:500])
    sigma = float(np.sqrt(np.median(sq[sq > 0]) / 2))
    return ot.da.MappingTransport(
        kernel="gaussian", sigma=sigma, mu=1.0, eta=1e-3, bias=True, max_iter=10
    )
