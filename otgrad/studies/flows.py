r"""The convex-potential-flow benchmarks of ``otgrad flows`` (``applications/flows``).

* :func:`run_toy2d` — the eight FFJORD sets: a :class:`~otgrad.flows.ConvexPotentialFlow`
  beside zuko's neural spline flow (NSF, the optional ``bench`` extra) with a similar
  parameter count, trained by the same loop with the same steps, batch size, learning-rate
  schedule and seed. Test negative log-likelihood (exact for both), :math:`W_2` of samples
  against test data, the probability mass the flow puts on a grid (a normalization check),
  and the inversion residual of the flow's samples.
* :func:`run_mixture` — a :math:`d = 16` Gaussian mixture with a known density: the flow's
  test NLL against the true entropy (the NLL of the true density on the same points).
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.toy2d import FFJORD_SETS, sample_toy2d, toy2d_log_prob
from ..flows import ConvexPotentialFlow
from ..ot.metrics import wasserstein2
from ..train import fit
from ._pool import pool_map

__all__ = [
    "CPFLOW_DEFAULTS",
    "NSF_DEFAULTS",
    "MODELS",
    "NSFModel",
    "run_toy2d",
    "run_mixture",
    "gaussian_mixture",
    "far_samples",
    "report",
]

MODELS = ("cpflow", "nsf")
#: The flow of the toy benchmark (4,868 parameters in two dimensions).
CPFLOW_DEFAULTS: dict[str, Any] = dict(
    blocks=4, net="modular", hidden=16, layers=24, beta=20.0, mu=0.01
)
#: zuko's NSF of the toy benchmark (5,466 parameters in two dimensions).
NSF_DEFAULTS: dict[str, Any] = dict(transforms=3, hidden=(24, 24), bins=8)


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class NSFModel(nn.Module):
    r"""zuko's neural spline flow on per-feature standardized data, with the same
    ``log_prob`` / ``sample`` interface as :class:`~otgrad.flows.ConvexPotentialFlow`
    (tensors in data units). Needs ``pip install otgrad[bench]`` (zuko)."""

    def __init__(
        self, dim: int, transforms: int = 3, hidden: Sequence[int] = (32, 32), bins: int = 8
    ):
        super().__init__()
        try:
            import zuko
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the NSF baseline needs zuko: pip install 'otgrad[bench]' (or pip install zuko)"
            ) from e
        self.flow = zuko.flows.NSF(
            dim, transforms=transforms, hidden_features=tuple(hidden), bins=bins
        )
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def standardize(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow().log_prob((x - self.mean) / self.std) - self.std.log().sum()

    def sample(self, n: int, *, seed: int | None = None) -> torch.Tensor:
        with torch.random.fork_rng(), torch.no_grad():  # zuko samples from the global RNG
            if seed is not None:
                torch.manual_seed(seed)
            return self.flow().sample((n,)) * self.std + self.mean


def _fit_nsf(model: NSFModel, X: np.ndarray, steps: int, batch_size: int, lr: float, seed: int):
    x = torch.as_tensor(X, dtype=torch.float32)
    model.standardize(x)
    n = x.shape[0]

    def sampler(g: torch.Generator) -> list[torch.Tensor]:
        return [x[torch.randint(n, (batch_size,), generator=g)]]

    def nll(m: NSFModel, batch: torch.Tensor) -> torch.Tensor:
        return -m.log_prob(batch).mean()

    per_epoch = min(steps, 250)
    return fit(
        model, nll, sampler, epochs=math.ceil(steps / per_epoch), steps_per_epoch=per_epoch,
        lr=lr, schedule="cosine", seed=seed, progress=False,
    )  # fmt: skip


def _box(X: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = np.quantile(X, 0.0005, axis=0), np.quantile(X, 0.9995, axis=0)
    pad = 0.15 * (hi - lo)
    return (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])


def _grid(box: Sequence[float], n: int) -> tuple[np.ndarray, float]:
    gx = np.linspace(box[0], box[1], n)
    gy = np.linspace(box[2], box[3], n)
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    return np.stack(np.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2), cell


def _log_prob(model: nn.Module, X: np.ndarray, chunk: int = 20000) -> np.ndarray:
    with torch.no_grad():
        parts = [
            model.log_prob(torch.as_tensor(c, dtype=torch.float32))
            for c in np.array_split(X, max(1, len(X) // chunk))
        ]
    return torch.cat(parts).double().numpy()


def far_samples(samples: np.ndarray, data: np.ndarray, factor: float = 1.5) -> int:
    r"""The number of samples farther from the data's mean than ``factor`` times the
    farthest data point: the far-tail outliers that dominate :math:`W_2`."""
    center = data.mean(0)
    radius = np.linalg.norm(data - center, axis=1).max()
    return int((np.linalg.norm(samples - center, axis=1) > factor * radius).sum())


@dataclass
class ToyTask:
    name: str
    model: str
    steps: int
    batch_size: int
    lr: float
    n_train: int
    n_test: int
    seed: int
    config: dict = field(default_factory=dict)
    figures: bool = True


def _build(task: ToyTask, dim: int = 2) -> nn.Module:
    if task.model == "cpflow":
        return ConvexPotentialFlow(dim, **task.config)
    return NSFModel(dim, **task.config)


def _run_toy(task: ToyTask) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(task.seed)
    X = sample_toy2d(task.name, task.n_train, task.seed)
    Xt = sample_toy2d(task.name, task.n_test, task.seed + 1)
    model = _build(task)
    t0 = time.perf_counter()
    if task.model == "cpflow":
        model.fit(
            X,
            steps=task.steps,
            batch_size=task.batch_size,
            lr=task.lr,
            seed=task.seed,
            progress=False,
        )
    else:
        _fit_nsf(model, X, task.steps, task.batch_size, task.lr, task.seed)
    fit_seconds = time.perf_counter() - t0
    model.eval()
    lp = _log_prob(model, Xt)
    m = min(task.n_test, 2000)
    t0 = time.perf_counter()
    S = model.sample(m, seed=task.seed + 3)
    sample_seconds = time.perf_counter() - t0
    row = {
        "set": task.name,
        "model": task.model,
        "params": _parameters(model),
        "config": task.config,
        "fit_seconds": fit_seconds,
        "nll": float(-lp.mean()),
        "nll_sem": float(lp.std() / math.sqrt(len(lp))),
        "sample_seconds_per_1k": 1e3 * sample_seconds / m,
        "w2": wasserstein2(S.double().numpy(), Xt[:m]),
        "nonfinite_samples": int((~torch.isfinite(S)).any(-1).sum()),
        "far_samples": far_samples(S.double().numpy(), Xt),
    }
    if task.model == "cpflow":
        with torch.no_grad():
            z, _ = model(S)
            row["inversion_residual"] = float(
                ((model.inverse(z) - S).norm(dim=-1) / (1 + S.norm(dim=-1))).max()
            )
            z = torch.randn(m, 2, generator=torch.Generator().manual_seed(task.seed + 4))
            back = model(model.inverse(z, tol=1e-6))[0]
            row["forward_residual"] = float(((back - z).norm(dim=-1) / (1 + z.norm(dim=-1))).max())
    if task.name == "8gaussians":
        row["nll_true"] = float(-toy2d_log_prob(task.name, Xt).mean())
    box = _box(X)
    grid, cell = _grid(box, 300)
    glp = _log_prob(model, grid)
    row["grid_mass"] = float(np.exp(glp).sum() * cell)
    fig = {"samples": S.numpy(), "box": np.array(box)}
    if task.figures:
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
    steps, batch size, cosine learning rate and seed."""
    for k in models:
        if k not in MODELS:
            raise ValueError(f"models must be among {MODELS}, got {k!r}")
    n_train, n_test = (4000, 1000) if quick else (50000, 10000)
    steps = steps or (100 if quick else 10000)
    configs = {
        "cpflow": {**CPFLOW_DEFAULTS, **(cpflow or {})},
        "nsf": {**NSF_DEFAULTS, **(nsf or {})},
    }
    if quick:
        configs["cpflow"].update(blocks=2, hidden=8, layers=4)
        configs["nsf"].update(transforms=2, hidden=(16, 16))
    tasks = [
        ToyTask(s, k, steps, batch_size, lr, n_train, n_test, seed, configs[k])
        for s in sets
        for k in models
    ]
    rows = pool_map(_run_toy, tasks, workers, "flows toy2d")
    order = {(t.name, t.model): i for i, t in enumerate(tasks)}
    rows.sort(key=lambda r: order[(r["set"], r["model"])])
    return {
        "rows": rows,
        "protocol": {
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
            "machine": _machine(),
            "seed": seed,
        },
    }


def _machine() -> str:
    return f"{os.cpu_count()} CPUs ({platform.machine()}), torch {torch.__version__}"


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


@dataclass
class MixtureTask:
    model: str
    dim: int
    steps: int
    n_train: int
    n_test: int
    seed: int
    config: dict = field(default_factory=dict)


def _run_mixture(task: MixtureTask) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(task.seed)
    sample, log_prob = gaussian_mixture(task.dim, seed=task.seed)
    X, Xt = sample(task.n_train, task.seed + 1), sample(task.n_test, task.seed + 2)
    model = (
        ConvexPotentialFlow(task.dim, **task.config)
        if task.model == "cpflow"
        else NSFModel(task.dim, **task.config)
    )
    t0 = time.perf_counter()
    if task.model == "cpflow":
        model.fit(X, steps=task.steps, batch_size=512, lr=2e-3, seed=task.seed, progress=False)
    else:
        _fit_nsf(model, X, task.steps, 512, 2e-3, task.seed)
    fit_seconds = time.perf_counter() - t0
    model.eval()
    lp = _log_prob(model, Xt)
    return {
        "model": task.model,
        "dim": task.dim,
        "params": _parameters(model),
        "config": task.config,
        "fit_seconds": fit_seconds,
        "nll": float(-lp.mean()),
        "nll_true": float(-log_prob(Xt).mean()),
        "nll_sem": float(lp.std() / math.sqrt(len(lp))),
    }


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
    configs = {
        "cpflow": {
            **dict(blocks=4, net="modular", hidden=32, layers=16, beta=20.0, mu=0.01),
            **(cpflow or {}),
        },
        "nsf": {**dict(transforms=4, hidden=(32, 32), bins=8), **(nsf or {})},
    }
    if quick:
        dim = min(dim, 4)
        configs["cpflow"].update(blocks=2, hidden=8, layers=4)
        configs["nsf"].update(transforms=2, hidden=(16, 16))
    tasks = [MixtureTask(k, dim, steps, n_train, n_test, seed, configs[k]) for k in models]
    rows = pool_map(_run_mixture, tasks, workers, "flows mixture")
    rows.sort(key=lambda r: list(models).index(r["model"]))
    return {
        "rows": rows,
        "protocol": {
            "dim": dim,
            "components": 8,
            "n_train": n_train,
            "n_test": n_test,
            "steps": steps,
            "batch_size": 512,
            "lr": "0.002 (Adam, cosine decay)",
            "workers": workers,
            "machine": _machine(),
            "seed": seed,
        },
    }


def report(results: dict) -> str:
    r"""Markdown tables of :func:`run_toy2d` and :func:`run_mixture`."""
    lines: list[str] = []
    toy = results.get("toy2d")
    if toy:
        rows = toy["rows"]
        models = list(dict.fromkeys(r["model"] for r in rows))
        head = ["set"] + [f"NLL {k}" for k in models]
        if set(models) == set(MODELS):
            head.append("CP-Flow − NSF")
        head += [f"W2 {k}" for k in models] + [f"mass {k}" for k in models]
        head += [f"far samples {k}" for k in models] + ["inversion residual", "NLL true"]
        lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for s in dict.fromkeys(r["set"] for r in rows):
            by = {r["model"]: r for r in rows if r["set"] == s}
            cells = [s] + [f"{by[k]['nll']:.3f}" if k in by else "" for k in models]
            if set(models) == set(MODELS):
                cells.append(
                    f"{by['cpflow']['nll'] - by['nsf']['nll']:+.3f}" if len(by) == 2 else ""
                )
            cells += [f"{by[k]['w2']:.3f}" if k in by else "" for k in models]
            cells += [f"{by[k]['grid_mass']:.3f}" if k in by else "" for k in models]
            cells += [str(by[k].get("far_samples", "")) if k in by else "" for k in models]
            c = by.get("cpflow", {})
            cells.append(f"{c['inversion_residual']:.1e}" if "inversion_residual" in c else "")
            t = next((r["nll_true"] for r in by.values() if "nll_true" in r), None)
            cells.append(f"{t:.3f}" if t is not None else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("| model | parameters | fit seconds (mean over sets) | sampling s / 1k |")
        lines.append("|---|---:|---:|---:|")
        for k in models:
            rk = [r for r in rows if r["model"] == k]
            lines.append(
                f"| {k} | {rk[0]['params']} | {np.mean([r['fit_seconds'] for r in rk]):.0f} | "
                f"{np.mean([r['sample_seconds_per_1k'] for r in rk]):.2f} |"
            )
        lines.append("")
    mix = results.get("mixture")
    if mix:
        lines += [
            "| model | d | parameters | NLL | true entropy | gap |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in mix["rows"]:
            lines.append(
                f"| {r['model']} | {r['dim']} | {r['params']} | {r['nll']:.3f} | "
                f"{r['nll_true']:.3f} | {r['nll'] - r['nll_true']:+.3f} |"
            )
        lines.append("")
    return "\n".join(lines)
