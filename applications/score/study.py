r"""The score-model tasks: the eight toy sets, MALA against ULA, the likelihood's cost."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from otgrad.data.toy2d import FFJORD_SETS, sample_toy2d, toy2d_log_prob
from otgrad.ot.metrics import wasserstein2
from otgrad.score import ScoreModel, build_score_model, langevin, ode_log_prob, parameter_count
from otgrad.score.schedules import VESchedule

from ..common import median_seconds, pool_map
from .metrics import mmd

__all__ = ["MODELS", "run_toy2d", "run_mala", "run_trace_speed", "matched_mlp_width"]

MODELS = ("gradnet", "gradnet-2", "gradnet-lse", "mlp", "gradmlp")


def matched_mlp_width(target: int, dim: int = 2, layers: int = 3) -> int:
    r"""The hidden width of a :class:`~otgrad.score.NoiseConditionalMLP` whose parameter
    count is closest to ``target``."""
    best, best_gap = 8, math.inf
    for w in range(8, 513):
        gap = abs(parameter_count(build_score_model("mlp", dim, hidden=w, layers=layers)) - target)
        if gap < best_gap:
            best, best_gap = w, gap
    return best


@dataclass
class ToyTask:
    name: str
    model: str
    steps: int
    n_train: int
    n_test: int
    sampler_steps: int
    seed: int
    grid: bool
    repeats: int = 1


def _net(kind: str):
    ref = parameter_count(build_score_model("gradnet", 2))
    if kind.startswith("gradnet"):
        return build_score_model(kind, 2)
    return build_score_model(kind, 2, hidden=matched_mlp_width(ref))


def _run_toy(task: ToyTask) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(task.seed)
    X = sample_toy2d(task.name, task.n_train, task.seed)
    Xt = sample_toy2d(task.name, task.n_test, task.seed + 1)
    Xf = sample_toy2d(task.name, task.n_test, task.seed + 2)
    net = _net(task.model)
    m = ScoreModel(net, steps=task.steps, seed=task.seed, progress=False).fit(X)
    # one score evaluation as the samplers make it: one noise level for the whole batch
    z = m._to_model(torch.as_tensor(Xt))
    noise = torch.tensor(0.1, dtype=z.dtype).expand(len(z))
    with torch.no_grad():
        seconds = median_seconds(lambda: m.model_._score(z, noise), z.device, warmup=1, reps=5)
    score_us = 1e6 * seconds / len(z)
    t0 = time.perf_counter()
    lp = m.log_prob(Xt)
    nll_seconds = time.perf_counter() - t0
    # W2 of one 10k sample spreads by up to +-0.03 between sampler seeds (8gaussians: the
    # share of each mode), so it is averaged over `repeats` sampler seeds
    t0 = time.perf_counter()
    runs = [
        m.sample(task.n_test, "sde", steps=task.sampler_steps, seed=task.seed + 3 + k)
        for k in range(task.repeats)
    ]
    sample_seconds = (time.perf_counter() - t0) / task.repeats
    S = runs[0]
    w2s = [wasserstein2(r, Xt) for r in runs]
    row = {
        "set": task.name,
        "model": task.model,
        "params": parameter_count(net),
        "fit_seconds": m.fit_seconds_,
        "score_us_per_point": score_us,
        "nll_ode": float(-lp.mean()),
        "nfe": m.nfe_,
        "nll_seconds": nll_seconds,
        "sample_seconds": sample_seconds,
        "w2": float(np.mean(w2s)),
        "w2_runs": w2s,
        "mmd": mmd(S, Xt),
        "nan_samples": int((~np.isfinite(S)).any(-1).sum()),
    }
    if task.grid and net.conservative:
        lo, hi = np.minimum(X.min(0), Xt.min(0)), np.maximum(X.max(0), Xt.max(0))
        pad = 0.1 * (hi - lo)
        box = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
        row["nll_grid"] = float(-m.log_prob(Xt, "grid", bounds=box, resolution=400).mean())
        # the same cross-check at a moderate noise level, where denoising score matching
        # constrains the energy well (at sigma_min its target is almost pure noise)
        mid = 0.1 * m.scale_
        row["sigma_mid"] = mid
        row["nll_ode_mid"] = float(-m.log_prob(Xt, sigma=mid).mean())
        row["nll_grid_mid"] = float(
            -m.log_prob(Xt, "grid", sigma=mid, bounds=box, resolution=400).mean()
        )
    fig = {"samples": S[:2000]}
    if task.model == "gradnet":  # data-against-data levels and the truth, once per set
        floors = [wasserstein2(Xf, Xt)] + [
            wasserstein2(sample_toy2d(task.name, task.n_test, task.seed + 10 + k), Xt)
            for k in range(task.repeats - 1)
        ]
        row["w2_floor"], row["w2_floor_runs"] = float(np.mean(floors)), floors
        row["mmd_floor"] = mmd(Xf, Xt)
        if task.name in ("8gaussians",):
            row["nll_true"] = float(-toy2d_log_prob(task.name, Xt).mean())
        fig.update(_field_data(m, X, task.grid))
        fig["data"] = Xf[:2000]
    row["_fig"] = fig
    return row


def _field_data(m: ScoreModel, X: np.ndarray, full: bool) -> dict:
    r"""Figure arrays: the grid-normalized density and, at two noise levels, the energy
    on a grid and the score on a coarser one (data units)."""
    lo, hi = np.quantile(X, 0.001, axis=0), np.quantile(X, 0.999, axis=0)
    pad = 0.15 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    n = 96 if full else 24
    gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    grid = np.stack(np.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)
    box = (lo[0], hi[0], lo[1], hi[1])
    out = {"box": np.array(box), "n": n}
    out["log_density"] = m.log_prob(grid, "grid", bounds=box, resolution=2 * n).reshape(n, n)
    q = 18
    qx, qy = np.linspace(lo[0], hi[0], q), np.linspace(lo[1], hi[1], q)
    qgrid = np.stack(np.meshgrid(qx, qy, indexing="xy"), -1).reshape(-1, 2)
    for tag, rel in (("small", 0.05), ("large", 0.5)):
        sigma = rel * m.scale_
        out[f"energy_{tag}"] = m.energy(grid, sigma).reshape(n, n)
        out[f"score_{tag}"] = m.score(qgrid, sigma).reshape(q, q, 2)
        out[f"sigma_{tag}"] = sigma
    out["quiver"] = qgrid.reshape(q, q, 2)
    return out


def run_toy2d(
    *,
    sets: Sequence[str] = FFJORD_SETS,
    models: Sequence[str] = MODELS,
    quick: bool = False,
    steps: int | None = None,
    workers: int = 2,
    seed: int = 0,
) -> dict:
    r"""The eight toy sets, every model trained with the same budget and seed."""
    for k in models:
        if k not in MODELS:
            raise ValueError(f"models must be among {MODELS}, got {k!r}")
    n_train, n_test, sampler_steps = (4000, 1000, 100) if quick else (50000, 10000, 500)
    default = ScoreModel()
    steps = steps or (300 if quick else default.steps)
    repeats = 1 if quick else 3
    tasks = [
        ToyTask(s, k, steps, n_train, n_test, sampler_steps, seed, not quick, repeats)
        for s in sets
        for k in models
    ]
    rows = pool_map(_run_toy, tasks, workers, "score toy2d")
    order = {(s, k): i for i, (s, k) in enumerate((t.name, t.model) for t in tasks)}
    rows.sort(key=lambda r: order[(r["set"], r["model"])])
    return {
        "rows": rows,
        "protocol": {
            "n_train": n_train,
            "n_test": n_test,
            "steps": steps,
            "batch_size": default.batch_size,
            "lr": default.lr,
            "ema": default.ema,
            "schedule": f"VE, sigma in [{default.sigma_min}, {default.sigma_max}] "
            "(standardized units), DSM",
            "sampler": f"reverse SDE, Euler-Maruyama, {sampler_steps} steps",
            "w2": f"mean over {repeats} sampler seeds (and {repeats} fresh data draws for the "
            "data-against-data level)",
            "nll": "probability-flow ODE, dopri5, rtol=atol=1e-5, exact divergence",
            "score_time": "median of 5 evaluations after a warm-up, one noise level per batch",
            "seed": seed,
        },
    }


def run_mala(
    *,
    name: str = "8gaussians",
    steps: int | None = None,
    n: int = 10000,
    chain_steps: int = 100,
    sigma: float = 0.1,
    step_sizes: Sequence[float] = (0.005, 0.01, 0.02, 0.05, 0.1),
    quick: bool = False,
    seed: int = 0,
) -> dict:
    r"""MALA against ULA targeting the learned density :math:`p_\sigma` at
    :math:`\sigma` = ``sigma`` × the data scale.

    The true :math:`p_\sigma` is the data blurred by :math:`\mathcal{N}(0, \sigma^2 I)`, so it
    can be sampled exactly: both chains start at such samples (in equilibrium for the true
    density) and run ``chain_steps`` steps of size :math:`h` (data units²); :math:`W_2` is
    measured against fresh samples of the true :math:`p_\sigma`. ULA's stationary law is
    biased by :math:`O(h)`; MALA's Metropolis step with the learned energy removes the
    discretization bias, leaving the model's own error. ``sigma`` is a moderate level
    because at the smallest one the learned energy is poorly constrained (see
    ``docs/score.md``).
    """
    torch.set_num_threads(1)
    if quick:
        steps, n, chain_steps, step_sizes = 300, 1000, 20, tuple(step_sizes)[:2]
    rng = np.random.default_rng(seed + 5)
    X = sample_toy2d(name, 50000, seed)
    m = ScoreModel(**({"steps": steps} if steps else {}), seed=seed, progress=False).fit(X)
    level = sigma * m.scale_

    def noised(k: int) -> np.ndarray:
        return sample_toy2d(name, n, seed + k) + level * rng.standard_normal((n, 2))

    Xt, start = noised(1), noised(2)
    model = m.model_
    x0 = m._to_model(torch.as_tensor(start))
    rows = []
    for h in step_sizes:
        hs = h / m.scale_**2
        row = {"step": h}
        for label, metro in (("ula", False), ("mala", True)):
            gen = torch.Generator().manual_seed(seed + 4)
            t0 = time.perf_counter()
            z, rate = langevin(model, x0, sigma, hs, chain_steps, metro, gen)  # standardized
            row[f"{label}_seconds"] = time.perf_counter() - t0
            S = m._from_model(z).numpy()
            ok = np.isfinite(S).all(-1)
            row[f"{label}_w2"] = wasserstein2(S[ok], Xt[ok]) if ok.all() else float("inf")
            if metro:
                row["mala_acceptance"] = rate
        rows.append(row)
    return {
        "rows": rows,
        "start_w2": wasserstein2(start, Xt),
        "protocol": {
            "set": name,
            "n": n,
            "chain_steps": chain_steps,
            "sigma": f"{sigma} x data scale = {level:.4g}",
            "target": "the learned p_sigma; W2 against fresh data + sigma noise",
            "start": "fresh data + sigma noise (equilibrium of the true p_sigma)",
            "score_model_steps": m.history_.steps,
            "seed": seed,
        },
    }


def run_trace_speed(
    *,
    dims: Sequence[int] = (2, 16, 64),
    models: Sequence[str] = ("gradnet", "gradnet-2", "gradnet-lse"),
    n: int = 1000,
    ode_steps: int = 50,
    repeats: int = 3,
    quick: bool = False,
    seed: int = 0,
) -> dict:
    r"""Seconds per sample of the ODE log-likelihood with each divergence.

    Each noise-conditional GradNet (untrained: the cost does not depend on the weights)
    is integrated with a fixed-step RK4 of ``ode_steps`` steps, so every method makes the
    same number of evaluations; only the divergence differs: the closed-form trace,
    :math:`d` reverse passes of automatic differentiation, or one Hutchinson probe.
    """
    torch.set_num_threads(1)
    if quick:
        dims, models, n, ode_steps, repeats = tuple(dims)[:1], tuple(models)[:1], 200, 5, 1
    sched = VESchedule(0.01, 5.0)
    rows, names = [], {}
    for kind in models:
        for d in dims:
            torch.manual_seed(seed)
            model = build_score_model(kind, d)
            depth = f", layers={model.layers}" if hasattr(model, "layers") else ""
            names[kind] = f"{type(model).__name__}(d, hidden={model.hidden}{depth}, " \
                f"modules={model.num_modules})"  # fmt: skip
            rows.append(
                {"model": kind, "d": d, **_trace_costs(model, sched, n, ode_steps, repeats)}
            )
    return {
        "rows": rows,
        "protocol": {
            "n": n,
            "solver": f"rk4, {ode_steps} fixed steps",
            "model": ", ".join(f"{k}: {v}" for k, v in names.items()),
            "threads": 1,
            "repeats": f"best of {repeats}",
        },
    }


def _trace_costs(model, sched, n: int, ode_steps: int, repeats: int) -> dict:
    x = torch.randn(n, model.dim)
    row: dict = {}
    ref = None
    for method in ("exact", "autograd", "hutchinson"):
        best = math.inf
        for _ in range(repeats):
            gen = torch.Generator().manual_seed(0)
            t0 = time.perf_counter()
            lp, _ = ode_log_prob(
                model, sched, x, method, method="rk4", generator=gen,
                options={"step_size": (1.0 - sched.t_min) / ode_steps},
            )  # fmt: skip
            best = min(best, time.perf_counter() - t0)
        row[f"{method}_us_per_sample"] = 1e6 * best / n
        if ref is None:
            ref = lp
        else:
            row[f"{method}_max_abs_diff"] = float((lp - ref).abs().max())
    row["autograd_over_exact"] = row["autograd_us_per_sample"] / row["exact_us_per_sample"]
    row["hutchinson_over_exact"] = row["hutchinson_us_per_sample"] / row["exact_us_per_sample"]
    return row
