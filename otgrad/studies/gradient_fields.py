r"""The paper's gradient-field study (Tables 1–2) and the PolyMax study.

* Tables 1–2: learn the convex field (eqs. 46–47) with ICNN, ICGN, CRR, mGradNet-C and
  mGradNet-M, and the nonconvex field (eqs. 48–49) with an MLP potential, RR, GradNet-C and
  GradNet-M, at about 100 parameters each. The *paper* protocol: 100,000 uniform training
  points on the unit square, 10,000 validation points, MSE, Adam with learning rate 0.005,
  batch 1000, 200 epochs, best-validation weights, test on the 100 × 100 grid, 5 seeds.
  The *improved* protocol keeps the data, the models and the paper's Adam phase, then
  polishes in float64 with full-batch L-BFGS (:func:`otgrad.train.refine`, 500
  iterations), best-validation weights throughout. Both protocols share the Adam phase
  (one run per seed); its weights are saved to ``weights_paper.pt`` so that the L-BFGS
  phase can run elsewhere (``init_from``, e.g. on a GPU).
* PolyMax (:class:`otgrad.data.PolyMax`): mGradNet-C (WTanh) and mGradNet-M (WSoftmax) at
  the authors' widths against ICNN and MLP-potential baselines at the same budget of
  :math:`1024 d` parameters; 10,000 Adam steps on fresh batches of 100 uniform points, the
  learning rate picked from {1e-2, 1e-3, 1e-4} by a validation set, test MSE on 10,000
  fresh points.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Sec. 7, Tables 1–2.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from ..data.fields import ConvexField, GradientField, NonconvexField, PolyMax, unit_grid
from ..nn import CRR, ICGN, ICNN, RR, GradientNetwork, GradNetC, GradNetM, MLPPotential
from ..train import fit, refine
from ._pool import pool_map

__all__ = ["PAPER", "TABLES", "make_model", "run_tables", "run_polymax", "polymax_model"]

# the paper's "RMSE dB" (half of the MSE dB of the authors' code): mean, std over 5 seeds
PAPER = {
    "convex": {
        "ICNN": (109, -17.13, 2.53),
        "ICGN": (96, -10.61, 0.80),
        "CRR": (102, -15.70, 2.04),
        "mGradNet-C": (100, -24.08, 0.44),
        "mGradNet-M": (94, -23.57, 2.61),
    },
    "nonconvex": {
        "MLP": (102, -12.83, 1.04),
        "RR": (102, -16.23, 1.83),
        "GradNet-C": (100, -18.99, 2.03),
        "GradNet-M": (94, -17.00, 1.90),
    },
}

_MODELS: dict[str, Callable[[], GradientNetwork]] = {
    "ICNN": lambda: ICNN(2, 7, layers=2),
    "ICGN": lambda: ICGN(2, 32, nodes=None),  # the exact path integral
    "CRR": lambda: CRR(2, ridges=10, knots=7),
    "mGradNet-C": lambda: GradNetC(2, 7, layers=4, activation="tanh"),
    "mGradNet-M": lambda: GradNetM(2, 7, modules=4, activation="softmax", beta=5.0),
    "MLP": lambda: MLPPotential(2, 8, layers=2),
    "RR": lambda: RR(2, ridges=10, knots=7),
    "GradNet-C": lambda: GradNetC(2, 7, layers=4, monotone=False, activation="tanh"),
    "GradNet-M": lambda: GradNetM(2, 7, modules=4, monotone=False, activation="softmax", beta=5.0),
}

TABLES: dict[str, Callable[[], GradientField]] = {
    "convex": ConvexField,
    "nonconvex": NonconvexField,
}


def make_model(name: str) -> GradientNetwork:
    r"""The study's model called ``name`` (a key of :data:`PAPER`'s tables)."""
    if name not in _MODELS:
        raise ValueError(f"model must be one of {sorted(_MODELS)}, got {name!r}")
    return _MODELS[name]()


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


def _run_table_task(task: _Task) -> list[dict]:
    """Both protocols share the Adam phase: paper = Adam (float32); improved = the same
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

    def record(protocol: str, seconds: float) -> None:
        dtype = next(net.parameters()).dtype
        with torch.no_grad():
            mse = float(_mse(net, grid.to(dtype), field.gradient(grid).to(dtype)))
        out.append(
            {
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
        )

    start = time.perf_counter()
    if task.initial is None:
        f32 = [t.float() for t in (x, y, xv, yv)]
        fit(
            net,
            _mse,
            f32[:2],
            epochs=task.epochs,
            batch_size=1000,
            lr=0.005,
            val_data=f32[2:],
            seed=task.seed,
            progress=False,
        )
    else:
        net.load_state_dict(task.initial)
    adam_seconds = time.perf_counter() - start
    if "paper" in task.protocols:
        record("paper", adam_seconds)
    if "improved" in task.protocols:
        net = net.double()
        start = time.perf_counter()
        refine(
            net,
            _mse,
            (x, y),
            iterations=task.refine_iterations,
            rounds=max(1, task.refine_iterations // 100),
            val_data=(xv, yv),
        )
        record("improved", adam_seconds + time.perf_counter() - start)
    return out


def _summary(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return mean, std


def run_tables(
    out: str,
    *,
    trials: int = 5,
    epochs: int = 200,
    protocols: Sequence[str] = ("paper", "improved"),
    tables: Sequence[str] = ("convex", "nonconvex"),
    refine_iterations: int = 500,
    workers: int = 2,
    device: str = "cpu",
    init_from: str | None = None,
) -> dict:
    r"""Runs Tables 1–2 under the given protocols; writes ``out/tables.json`` and figures.

    Returns:
        ``{table: {model: {protocol: summary}}}`` with per-seed MSE dB, their mean and
        (population) standard deviation, the paper's "RMSE dB" convention (half), and the
        paper's own numbers.
    """
    for p in protocols:
        if p not in ("paper", "improved"):
            raise ValueError(f"protocol must be 'paper' or 'improved', got {p!r}")
    os.makedirs(out, exist_ok=True)
    initial = {}
    if init_from is not None:
        if "paper" in protocols:
            raise ValueError(
                "init_from reuses the paper protocol's weights: ask for 'improved' only"
            )
        initial = torch.load(init_from, map_location="cpu", weights_only=True)
    tasks = [
        _Task(
            t,
            m,
            s,
            tuple(protocols),
            epochs,
            device,
            refine_iterations,
            initial.get(f"{t}/{m}/{s}") if init_from else None,
        )
        for t in tables
        for m in PAPER[t]
        for s in range(trials)
    ]
    if init_from is not None:
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
    states: dict = {}
    for t in tables:
        results[t] = {}
        for m, (params, paper_mean, paper_std) in PAPER[t].items():
            entry = {
                "published": {
                    "params": params,
                    "rmse_db": [paper_mean, paper_std],
                    "mse_db": [2 * paper_mean, 2 * paper_std],
                }
            }
            for p in protocols:
                runs = sorted(
                    (r for r in raw if (r["table"], r["model"], r["protocol"]) == (t, m, p)),
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
                for r in runs:
                    if r["seed"] == 0:
                        states[(t, m, p)] = r["state_dict"]
            results[t][m] = entry
    with open(os.path.join(out, "tables.json"), "w") as f:
        json.dump(results, f, indent=2)
    _figures(out, tables, protocols, states)
    return results


def _figures(out: str, tables: Sequence[str], protocols: Sequence[str], states: dict) -> None:
    from ..plotting import plot_error_maps, plot_fields

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

POLYMAX_WIDTHS = {
    "mGradNet-C": {2: 93, 32: 629, 256: 948, 1024: 1003},
    "mGradNet-M": {2: 169, 32: 247, 256: 254, 1024: 255},
}


def _width(a: float, b: float, budget: float) -> int:
    # the positive root of h^2 a + h b = budget
    if a == 0:
        return max(1, round(budget / b))
    return max(1, round((-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a)))


def polymax_model(name: str, d: int) -> GradientNetwork:
    r"""A PolyMax model at the budget of :math:`1024 d` parameters (the authors' widths)."""
    budget = 1024 * d
    if name == "mGradNet-C":
        h = POLYMAX_WIDTHS[name].get(d) or _width(0, d + 20, budget - d)
        return GradNetC(d, h, layers=4, activation="wtanh")
    if name == "mGradNet-M":
        h = POLYMAX_WIDTHS[name].get(d) or _width(0, 4 * (d + 1), budget - d - 12)
        return GradNetM(d, h, modules=4, activation="wsoftmax")
    if name == "ICNN":  # 2 (d h + h) + h^2 + h + d + 1
        return ICNN(d, _width(1, 2 * d + 3, budget - d - 1), layers=2)
    if name == "MLP":  # d h + h + h^2 + h + h + 1
        return MLPPotential(d, _width(1, d + 3, budget - 1), layers=2)
    raise ValueError(f"model must be mGradNet-C, mGradNet-M, ICNN or MLP, got {name!r}")


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
    hist = fit(
        net,
        _mse,
        sample,
        epochs=epochs,
        steps_per_epoch=max(1, task.iterations // epochs),
        lr=task.lr,
        val_data=(xv, yv),
        seed=2,
        progress=False,
    )
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
    out: str,
    *,
    dims: Sequence[int] = (2, 32, 256),
    iterations: int = 10_000,
    lrs: Sequence[float] = (1e-2, 1e-3, 1e-4),
    models: Sequence[str] = ("mGradNet-C", "mGradNet-M", "ICNN", "MLP"),
    workers: int = 2,
    device: str = "cpu",
) -> dict:
    r"""Runs the PolyMax study; writes ``out/polymax.json``.

    Returns:
        ``{dim: {model: {...}}}`` with the test MSE dB at the learning rate of best
        validation MSE, and every learning rate's numbers.
    """
    tasks = [_PolyTask(m, d, lr, iterations, device) for d in dims for m in models for lr in lrs]
    raw = pool_map(_run_polymax_task, tasks, workers, "polymax")
    results: dict = {
        "protocol": {"iterations": iterations, "batch": 100, "lrs": list(lrs), "device": device}
    }
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
                "runs": [
                    {k: r[k] for k in ("lr", "val_mse_db", "test_mse_db", "seconds")} for r in runs
                ],
            }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "polymax.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def report(tables: dict | None, polymax: dict | None) -> str:
    r"""Markdown tables of the study's results beside the paper's numbers."""
    lines: list[str] = []
    if tables:
        protocols = [
            p
            for p in ("paper", "improved")
            if any(p in e for t in TABLES if t in tables for e in tables[t].values())
        ]
        p = tables["protocol"]
        lines += [
            f"Gradient fields: {p['trials']} seed(s), {p['epochs']} epochs, test MSE dB on "
            "the 100 × 100 grid, mean ± std over seeds (the paper's 'RMSE dB' is half).",
            "",
        ]
        for t, caption in (
            ("convex", "Table 1 (convex field)"),
            ("nonconvex", "Table 2 (nonconvex field)"),
        ):
            if t not in tables:
                continue
            head = "| model | params | published MSE dB |" + "".join(
                f" {q} protocol MSE dB |" for q in protocols
            )
            head += "".join(f" {q} − published |" for q in protocols)
            lines += [f"### {caption}", "", head, "|---" * (head.count("|") - 1) + "|"]
            for m, e in tables[t].items():
                pm, ps = e["published"]["mse_db"]
                row = f"| {m} | {e[protocols[0]]['params']} | {pm:.2f} ± {ps:.2f} |"
                row += "".join(
                    f" {e[q]['mse_db'][0]:.2f} ± {e[q]['mse_db'][1]:.2f} |" for q in protocols
                )
                row += "".join(f" {e[q]['mse_db'][0] - pm:+.2f} |" for q in protocols)
                lines.append(row)
            lines.append("")
    if polymax:
        dims = sorted((k for k in polymax if k.isdigit()), key=int)
        models = list(polymax[dims[0]])
        p = polymax["protocol"]
        lines += [
            f"### PolyMax: test MSE dB ({p['iterations']} Adam steps, batch {p['batch']}, "
            f"best learning rate of {p['lrs']} by validation)",
            "",
            "| d | " + " | ".join(models) + " |",
            "|---" * (len(models) + 1) + "|",
        ]
        for d in dims:
            cells = [
                f"{polymax[d][m]['test_mse_db']:.2f} ({polymax[d][m]['params']} p, "
                f"lr {polymax[d][m]['best_lr']:g})"
                for m in models
            ]
            lines.append(f"| {d} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
