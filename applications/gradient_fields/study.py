r"""Runs Tables 1–2 under the paper's and the improved protocol, and the PolyMax study."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from otgrad.data.fields import PolyMax, unit_grid
from otgrad.nn import GradientNetwork
from otgrad.train import fit, refine

from ..common import pool_map
from . import PROTOCOLS
from .figures import plot_error_maps, plot_fields
from .models import TABLES, make_model, polymax_model
from .published import PAPER

__all__ = ["PROTOCOLS", "run_tables", "run_polymax"]


def _mse(model: GradientNetwork, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((model._forward(x) - y) ** 2).sum(-1).mean()


def _db(mse: float) -> float:
    return 10 * math.log10(mse) if mse > 0 else -math.inf


@dataclass
class _Task:
    table: str
    model: str
    seed: int
    protocols: tuple[str, ...]
    epochs: int
    device: str
    refine_iterations: int
    initial: dict | None = None  # the paper protocol's weights, to skip its Adam phase


def _record(task: _Task, net: GradientNetwork, protocol: str, seconds: float, grid) -> dict:
    field = TABLES[task.table]()
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        mse = float(_mse(net, grid.to(dtype), field.gradient(grid).to(dtype)))
    return {
        "table": task.table,
        "model": task.model,
        "seed": task.seed,
        "protocol": protocol,
        "params": sum(p.numel() for p in net.parameters()),
        "test_mse": mse,
        "mse_db": _db(mse),
        "seconds": seconds,
        "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
    }


def _run_table_task(task: _Task) -> list[dict]:
    r"""Both protocols share the Adam phase: paper = Adam (float32); improved = the same
    Adam phase, then float64 full-batch L-BFGS."""
    torch.set_num_threads(1)
    field = TABLES[task.table]()
    gen = torch.Generator().manual_seed(task.seed)
    x, y = field.sample(100_000, generator=gen, dtype=torch.float64)
    xv, yv = field.sample(10_000, generator=gen, dtype=torch.float64)
    x, y, xv, yv = (t.to(task.device) for t in (x, y, xv, yv))
    grid = unit_grid(100, dtype=torch.float64).to(task.device)
    torch.manual_seed(task.seed)
    net = make_model(task.model).to(task.device)
    out = []
    start = time.perf_counter()
    if task.initial is None:
        f32 = [t.float() for t in (x, y, xv, yv)]
        fit(net, _mse, f32[:2], epochs=task.epochs, batch_size=1000, lr=0.005,
            val_data=f32[2:], seed=task.seed, progress=False)  # fmt: skip
    else:
        net.load_state_dict(task.initial)
    adam_seconds = time.perf_counter() - start
    if "paper" in task.protocols:
        out.append(_record(task, net, "paper", adam_seconds, grid))
    if "improved" in task.protocols:
        net = net.double()
        start = time.perf_counter()
        rounds = max(1, task.refine_iterations // 100)
        refine(net, _mse, (x, y), iterations=task.refine_iterations, rounds=rounds,
               val_data=(xv, yv))  # fmt: skip
        seconds = adam_seconds + time.perf_counter() - start
        out.append(_record(task, net, "improved", seconds, grid))
    return out


def _summary(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return mean, std


def _initial_weights(init_from: str | None, protocols: Sequence[str]) -> dict | None:
    if init_from is None:
        return None
    if "paper" in protocols:
        raise ValueError("init_from reuses the paper protocol's weights: ask for 'improved' only")
    return torch.load(init_from, map_location="cpu", weights_only=True)


def _entry(raw: list[dict], table: str, model: str, protocols: Sequence[str]) -> dict:
    r"""One model's row of a table: the published numbers and each protocol's summary."""
    params, paper_mean, paper_std = PAPER[table][model]
    entry: dict = {
        "published": {
            "params": params,
            "rmse_db": [paper_mean, paper_std],
            "mse_db": [2 * paper_mean, 2 * paper_std],
        }
    }
    for p in protocols:
        runs = sorted(
            (r for r in raw if (r["table"], r["model"], r["protocol"]) == (table, model, p)),
            key=lambda r: r["seed"],
        )
        dbs = [r["mse_db"] for r in runs]
        mean, std = _summary(dbs)
        entry[p] = {
            "params": runs[0]["params"],
            "mse_db": [mean, std],
            "rmse_db": [mean / 2, std / 2],
            "mse_db_per_seed": dbs,
            "seconds_per_run": statistics.fmean(r["seconds"] for r in runs),
        }
    return entry


def run_tables(
    out: str,
    *,
    trials: int = 5,
    epochs: int = 200,
    protocols: Sequence[str] = PROTOCOLS,
    tables: Sequence[str] = ("convex", "nonconvex"),
    refine_iterations: int = 500,
    workers: int = 2,
    device: str = "cpu",
    init_from: str | None = None,
) -> dict:
    r"""Runs Tables 1–2 under the given protocols; writes the Adam-phase weights
    (``out/weights_paper.pt``) and the figures to ``out``.

    Returns:
        ``{table: {model: {protocol: summary}}}`` with per-seed MSE dB, their mean and
        (population) standard deviation, the paper's "RMSE dB" convention (half), and the
        paper's own numbers.
    """
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"protocol must be 'paper' or 'improved', got {p!r}")
    os.makedirs(out, exist_ok=True)
    initial = _initial_weights(init_from, protocols)
    tasks = [
        _Task(
            t,
            m,
            s,
            tuple(protocols),
            epochs,
            device,
            refine_iterations,
            initial.get(f"{t}/{m}/{s}") if initial is not None else None,
        )  # fmt: skip
        for t in tables
        for m in PAPER[t]
        for s in range(trials)
    ]
    if initial is not None:
        missing = [f"{k.table}/{k.model}/{k.seed}" for k in tasks if k.initial is None]
        if missing:
            raise ValueError(f"init_from lacks the weights of {missing[:3]}...")
    raw = [r for rs in pool_map(_run_table_task, tasks, workers, "gradient fields") for r in rs]
    weights = {
        f"{r['table']}/{r['model']}/{r['seed']}": r["state_dict"]
        for r in raw
        if r["protocol"] == "paper"
    }
    if weights:
        torch.save(weights, os.path.join(out, "weights_paper.pt"))
    results: dict = {
        "protocol": {
            "epochs": epochs,
            "trials": trials,
            "device": device,
            "refine_iterations": refine_iterations,
            "adam_phase_from": init_from,
        }
    }
    for t in tables:
        results[t] = {m: _entry(raw, t, m, protocols) for m in PAPER[t]}
    seed0 = {
        (r["table"], r["model"], r["protocol"]): r["state_dict"] for r in raw if r["seed"] == 0
    }
    _figures(out, tables, protocols, seed0)
    return results


def _figures(out: str, tables: Sequence[str], protocols: Sequence[str], states: dict) -> None:
    plot_fields({t: TABLES[t]() for t in tables}, os.path.join(out, "fields.png"))
    for t in tables:
        for p in protocols:
            nets = {}
            for m in PAPER[t]:
                if (t, m, p) in states:
                    net = make_model(m).to(next(iter(states[(t, m, p)].values())).dtype)
                    net.load_state_dict(states[(t, m, p)])
                    nets[m] = net
            if nets:
                plot_error_maps(
                    nets,
                    TABLES[t](),
                    os.path.join(out, f"errors_{t}_{p}.png"),
                    title=f"{t} field, {p} protocol, seed 0: error norm",
                )


# ---------------------------------------------------------------------------- PolyMax
@dataclass
class _PolyTask:
    model: str
    dim: int
    lr: float
    iterations: int
    device: str


def _run_polymax_task(task: _PolyTask) -> dict:
    torch.set_num_threads(1)
    field = PolyMax(task.dim)
    dev = task.device
    gen = torch.Generator().manual_seed(1)
    xv = torch.rand(10_000, task.dim, generator=gen)
    xt = torch.rand(10_000, task.dim, generator=gen)
    xv, xt = xv.to(dev), xt.to(dev)
    yv, yt = field.gradient(xv), field.gradient(xt)
    torch.manual_seed(0)
    net = polymax_model(task.model, task.dim).to(dev)

    def sample(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.rand(100, task.dim, generator=g).to(dev)
        return x, field.gradient(x)

    epochs = 10
    start = time.perf_counter()
    hist = fit(net, _mse, sample, epochs=epochs, steps_per_epoch=max(1, task.iterations // epochs),
               lr=task.lr, val_data=(xv, yv), seed=2, progress=False)  # fmt: skip
    with torch.no_grad():
        test = float(_mse(net, xt, yt))
    return {
        **asdict(task),
        "params": sum(p.numel() for p in net.parameters()),
        "val_mse_db": _db(hist.best_val),
        "test_mse_db": _db(test),
        "seconds": time.perf_counter() - start,
    }


def run_polymax(
    *,
    dims: Sequence[int] = (2, 32, 256),
    iterations: int = 10_000,
    lrs: Sequence[float] = (1e-2, 1e-3, 1e-4),
    models: Sequence[str] = ("mGradNet-C", "mGradNet-M", "ICNN", "MLP"),
    workers: int = 2,
    device: str = "cpu",
) -> dict:
    r"""Runs the PolyMax study.

    Returns:
        ``{dim: {model: {...}}}`` with the test MSE dB at the learning rate of best
        validation MSE, and every learning rate's numbers.
    """
    tasks = [_PolyTask(m, d, lr, iterations, device) for d in dims for m in models for lr in lrs]
    raw = pool_map(_run_polymax_task, tasks, workers, "polymax")
    results: dict = {
        "protocol": {"iterations": iterations, "batch": 100, "lrs": list(lrs), "device": device}
    }
    keys = ("lr", "val_mse_db", "test_mse_db", "seconds")
    for d in dims:
        results[str(d)] = {}
        for m in models:
            runs = sorted(
                (r for r in raw if (r["dim"], r["model"]) == (d, m)), key=lambda r: -r["lr"]
            )
            best = min(runs, key=lambda r: r["val_mse_db"])
            results[str(d)][m] = {
                "params": best["params"],
                "best_lr": best["lr"],
                "test_mse_db": best["test_mse_db"],
                "runs": [{k: r[k] for k in keys} for r in runs],
            }
    return results
