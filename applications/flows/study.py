r"""The flow tasks: the eight toy sets against a neural spline flow, and a Gaussian mixture
with a known density."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from otgrad.data.toy2d import FFJORD_SETS, sample_toy2d, toy2d_log_prob
from otgrad.flows import ConvexPotentialFlow, FlowNetwork
from otgrad.ot.metrics import wasserstein2

from ..common import pool_map
from . import MODELS
from .nsf import NSF_DEFAULTS, NSFModel, fit_nsf

__all__ = [
    "CPFLOW_DEFAULTS",
    "MODELS",
    "run_toy2d",
    "run_mixture",
    "gaussian_mixture",
    "far_samples",
]

#: The flow of the toy benchmark (4,868 parameters in two dimensions).
CPFLOW_DEFAULTS: dict[str, Any] = dict(
    blocks=4, net="modular", hidden=16, layers=24, beta=20.0, mu=0.01
)
_MIXTURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpflow": dict(blocks=4, net="modular", hidden=32, layers=16, beta=20.0, mu=0.01),
    "nsf": dict(transforms=4, hidden=(32, 32), bins=8),
}
_QUICK = {"cpflow": dict(blocks=2, hidden=8, layers=4), "nsf": dict(transforms=2, hidden=(16, 16))}


@dataclass
class Task:
    model: str
    steps: int
    n_train: int
    n_test: int
    seed: int
    config: dict = field(default_factory=dict)
    name: str = ""  # the toy set
    dim: int = 2
    batch_size: int = 512
    lr: float = 2e-3


def _configs(defaults: dict, quick: bool, cpflow: dict | None, nsf: dict | None) -> dict:
    configs = {
        "cpflow": {**defaults["cpflow"], **(cpflow or {})},
        "nsf": {**defaults["nsf"], **(nsf or {})},
    }
    if quick:
        for k, v in _QUICK.items():
            configs[k].update(v)
    return configs


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _fit(task: Task, X: np.ndarray) -> tuple[nn.Module, float]:
    r"""Builds the task's model and fits it to ``X``; returns it (in eval mode) and the
    seconds the fit took."""
    torch.manual_seed(task.seed)
    t0 = time.perf_counter()
    if task.model == "cpflow":
        est = ConvexPotentialFlow(
            task.dim, **task.config, steps=task.steps, batch_size=task.batch_size, lr=task.lr,
            device="cpu", seed=task.seed, progress=False,
        )  # fmt: skip
        model = est.fit(X).flow_
    else:
        model = NSFModel(task.dim, **task.config)
        fit_nsf(model, X, task.steps, task.batch_size, task.lr, task.seed)
    seconds = time.perf_counter() - t0
    return model.eval(), seconds


def _log_prob(model: nn.Module, X: np.ndarray, chunk: int = 20000) -> np.ndarray:
    with torch.no_grad():
        parts = [
            model.log_prob(torch.as_tensor(c, dtype=torch.float32))
            for c in np.array_split(X, max(1, len(X) // chunk))
        ]
    return torch.cat(parts).double().numpy()


def _nll(task: Task, model: nn.Module, Xt: np.ndarray, seconds: float) -> dict:
    lp = _log_prob(model, Xt)
    return {
        "model": task.model,
        "params": _parameters(model),
        "config": task.config,
        "fit_seconds": seconds,
        "nll": float(-lp.mean()),
        "nll_sem": float(lp.std() / math.sqrt(len(lp))),
    }


def far_samples(samples: np.ndarray, data: np.ndarray, factor: float = 1.5) -> int:
    r"""The number of samples farther from the data's mean than ``factor`` times the
    farthest data point: the far-tail outliers that dominate :math:`W_2`."""
    center = data.mean(0)
    radius = np.linalg.norm(data - center, axis=1).max()
    return int((np.linalg.norm(samples - center, axis=1) > factor * radius).sum())


def _box(X: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = np.quantile(X, 0.0005, axis=0), np.quantile(X, 0.9995, axis=0)
    pad = 0.15 * (hi - lo)
    return (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])


def _grid(box: Sequence[float], n: int) -> tuple[np.ndarray, float]:
    gx = np.linspace(box[0], box[1], n)
    gy = np.linspace(box[2], box[3], n)
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    return np.stack(np.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2), cell


def _residuals(model: FlowNetwork, S: torch.Tensor, seed: int) -> dict:
    r"""The largest relative inversion residuals: of the samples, and of the forward map
    at fresh base points."""
    with torch.no_grad():
        z, _ = model(S)
        inv = float(((model.inverse(z) - S).norm(dim=-1) / (1 + S.norm(dim=-1))).max())
        z = torch.randn(S.shape[0], 2, generator=torch.Generator().manual_seed(seed))
        back = model(model.inverse(z, tol=1e-6))[0]
        fwd = float(((back - z).norm(dim=-1) / (1 + z.norm(dim=-1))).max())
    return {"inversion_residual": inv, "forward_residual": fwd}


def _run_toy(task: Task) -> dict:
    torch.set_num_threads(1)
    X = sample_toy2d(task.name, task.n_train, task.seed)
    Xt = sample_toy2d(task.name, task.n_test, task.seed + 1)
    model, seconds = _fit(task, X)
    row = {"set": task.name, **_nll(task, model, Xt, seconds)}
    m = min(task.n_test, 2000)
    t0 = time.perf_counter()
    S = model.sample(m, seed=task.seed + 3)
    row["sample_seconds_per_1k"] = 1e3 * (time.perf_counter() - t0) / m
    row["w2"] = wasserstein2(S.double().numpy(), Xt[:m])
    row["nonfinite_samples"] = int((~torch.isfinite(S)).any(-1).sum())
    row["far_samples"] = far_samples(S.double().numpy(), Xt)
    if task.model == "cpflow":
        row.update(_residuals(model, S, task.seed + 4))
    if task.name == "8gaussians":
        row["nll_true"] = float(-toy2d_log_prob(task.name, Xt).mean())
    box = _box(X)
    grid, cell = _grid(box, 300)
    glp = _log_prob(model, grid)
    row["grid_mass"] = float(np.exp(glp).sum() * cell)
    fig = {"samples": S.numpy(), "box": np.array(box)}
    fig["log_density"] = glp.reshape(300, 300)[::2, ::2]
    if task.model == "cpflow":
        fig["data"] = Xt[:m]
    row["_fig"] = fig
    return row


def run_toy2d(
    *,
    sets: Sequence[str] = FFJORD_SETS,
    models: Sequence[str] = MODELS,
    quick: bool = False,
    steps: int | None = None,
    batch_size: int = 512,
    lr: float = 2e-3,
    cpflow: dict | None = None,
    nsf: dict | None = None,
    workers: int = 2,
    seed: int = 0,
) -> dict:
    r"""The eight toy sets; both flows trained by :func:`otgrad.train.fit` with the same
    steps, batch size, cosine learning rate and seed. Each row carries its figure arrays
    under ``"_fig"``."""
    for k in models:
        if k not in MODELS:
            raise ValueError(f"models must be among {MODELS}, got {k!r}")
    n_train, n_test = (4000, 1000) if quick else (50000, 10000)
    steps = steps or (100 if quick else 10000)
    configs = _configs({"cpflow": CPFLOW_DEFAULTS, "nsf": NSF_DEFAULTS}, quick, cpflow, nsf)
    tasks = [
        Task(k, steps, n_train, n_test, seed, configs[k], name=s, batch_size=batch_size, lr=lr)
        for s in sets
        for k in models
    ]
    rows = pool_map(_run_toy, tasks, workers, "flows toy2d")
    order = {(t.name, t.model): i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: order[(r["set"], r["model"])])
    protocol = {
        "n_train": n_train,
        "n_test": n_test,
        "steps": steps,
        "batch_size": batch_size,
        "lr": f"{lr} (Adam, cosine decay)",
        "cpflow": configs["cpflow"],
        "nsf": configs["nsf"],
        "nll": "exact log-density on the test set (nats)",
        "w2": "exact W2 (POT) between 2000 samples and 2000 test points",
        "grid_mass": "sum of exp(log p) over a 300 x 300 grid of the data box",
        "far_samples": "of the 2000 samples, those farther from the test mean than 1.5 "
        "times the farthest test point",
        "threads": 1,
        "workers": workers,
        "seed": seed,
    }
    return {"rows": rows, "protocol": protocol}


def gaussian_mixture(dim: int = 16, components: int = 8, seed: int = 0) -> tuple[Any, Any]:
    r"""A random Gaussian mixture in ``dim`` dimensions with a known density.

    Means :math:`\sim \mathcal{N}(0, 4 I)`, covariances :math:`A A^\top / d + 0.1 I` with
    Gaussian :math:`A`, equal weights.

    Returns:
        ``sample(n, seed) -> (n, d)`` and ``log_prob(x) -> (n,)`` (NumPy, float64).
    """
    rng = np.random.default_rng(seed)
    means = 2.0 * rng.standard_normal((components, dim))
    a = rng.standard_normal((components, dim, dim))
    covs = a @ a.transpose(0, 2, 1) / dim + 0.1 * np.eye(dim)
    chols = np.linalg.cholesky(covs)
    logdets = 2 * np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(-1)

    def sample(n: int, s: int) -> np.ndarray:
        r = np.random.default_rng(s)
        k = r.integers(components, size=n)
        eps = r.standard_normal((n, dim))
        return means[k] + np.einsum("nij,nj->ni", chols[k], eps)

    def log_prob(x: np.ndarray) -> np.ndarray:
        diff = x[:, None, :] - means[None]
        sol = np.stack([np.linalg.solve(chols[k], diff[:, k].T).T for k in range(components)], 1)
        logs = -0.5 * (sol**2).sum(-1) - 0.5 * logdets - 0.5 * dim * math.log(2 * math.pi)
        logs = logs - math.log(components)
        mx = logs.max(-1, keepdims=True)
        return (mx + np.log(np.exp(logs - mx).sum(-1, keepdims=True)))[:, 0]

    return sample, log_prob


def _run_mixture(task: Task) -> dict:
    torch.set_num_threads(1)
    sample, log_prob = gaussian_mixture(task.dim, seed=task.seed)
    X, Xt = sample(task.n_train, task.seed + 1), sample(task.n_test, task.seed + 2)
    model, seconds = _fit(task, X)
    row = _nll(task, model, Xt, seconds)
    return {**row, "dim": task.dim, "nll_true": float(-log_prob(Xt).mean())}


def run_mixture(
    *,
    dim: int = 16,
    models: Sequence[str] = MODELS,
    steps: int | None = None,
    quick: bool = False,
    cpflow: dict | None = None,
    nsf: dict | None = None,
    workers: int = 2,
    seed: int = 0,
) -> dict:
    r"""A ``dim``-dimensional Gaussian mixture (:func:`gaussian_mixture`): test NLL of the
    flows against the true entropy."""
    n_train, n_test = (4000, 1000) if quick else (50000, 10000)
    steps = steps or (100 if quick else 10000)
    configs = _configs(_MIXTURE_DEFAULTS, quick, cpflow, nsf)
    dim = min(dim, 4) if quick else dim
    tasks = [Task(k, steps, n_train, n_test, seed, configs[k], dim=dim) for k in models]
    rows = pool_map(_run_mixture, tasks, workers, "flows mixture")
    rows.sort(key=lambda r: list(models).index(r["model"]))
    protocol = {
        "dim": dim,
        "components": 8,
        "n_train": n_train,
        "n_test": n_test,
        "steps": steps,
        "batch_size": 512,
        "lr": "0.002 (Adam, cosine decay)",
        "workers": workers,
        "seed": seed,
    }
    return {"rows": rows, "protocol": protocol}
