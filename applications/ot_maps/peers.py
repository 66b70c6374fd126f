r"""The peers of :class:`~otgrad.ot.BrenierMap`: POT's estimators, the exact plan, and
OTT-JAX's neural dual solver (optional: ``pip install otgrad[bench]``)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
import warnings

import numpy as np

__all__ = ["PEERS", "OTT", "peer_map", "ott_available", "ott_neural_dual"]

#: OTT-JAX's ICNN dual solver with amortized, fine-tuned conjugates (Amos 2023).
OTT = "OTT-JAX W2NeuralDual"

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


def ott_available() -> bool:
    r"""Whether OTT-JAX with its neural extra (``ott-jax[neural]``) is installed."""
    return all(importlib.util.find_spec(m) for m in ("jax", "ott", "flax", "optax", "diffrax"))


class _OutOfTime(Exception):
    pass


def _batches(Z: np.ndarray, batch_size: int, rng: np.random.Generator):
    while True:
        yield Z[rng.integers(len(Z), size=batch_size)]


def ott_neural_dual(
    X: np.ndarray,
    Y: np.ndarray,
    Xt: np.ndarray,
    seconds: float,
    *,
    batch_size: int = 1024,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    r"""Fits OTT-JAX's :class:`W2NeuralDual` (its defaults: ICNN potentials of four hidden
    layers of 64, Adam, conjugates predicted by a second ICNN and fine-tuned by L-BFGS)
    on minibatches of the sets ``X`` and ``Y`` for ``seconds`` (compilation included),
    on one CPU thread.

    Returns:
        The test points ``Xt`` mapped, and the steps taken.
    """
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    import jax
    import jax.numpy as jnp
    from ott.neural.methods.neuraldual import W2NeuralDual

    rng = np.random.default_rng(seed)
    X, Y = (np.asarray(a, dtype=np.float32) for a in (X, Y))
    with warnings.catch_warnings():  # its ICNN's default pos_weights differs from its own
        warnings.filterwarnings("ignore", "Setting of ICNN", UserWarning)
        solver = W2NeuralDual(X.shape[1], num_train_iters=10**9, rng=jax.random.key(seed))
    start, steps = time.perf_counter(), 0

    def stop_in_time(step: int, _potentials) -> None:
        nonlocal steps
        steps = step + 1
        if time.perf_counter() - start > seconds:
            raise _OutOfTime

    loaders = [_batches(Z, batch_size, rng) for Z in (X, Y, X, Y)]
    # its training loop shows a progress bar over num_train_iters on stderr
    with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
        try:
            solver(*loaders, callback=stop_in_time)
        except _OutOfTime:
            pass
    mapped = solver.to_dual_potentials().transport(jnp.asarray(Xt, dtype=jnp.float32))
    return np.asarray(mapped, dtype=np.float64), steps
