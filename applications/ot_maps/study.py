r"""The optimal transport map tasks: Gaussian pairs, the W2 benchmark, 2D toys, losses."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from otgrad.data.toy2d import sample_toy2d
from otgrad.ot import BrenierMap, GaussianMap, cosine_similarity, l2_uvp, wasserstein2

from ..common import pool_map
from .data import gaussian_pair, load_w2bench
from .peers import OTT, PEERS, ott_available, ott_neural_dual, peer_map
from .published import W2_PUBLISHED

__all__ = [
    "TOY_PAIRS",
    "brenier_options",
    "run_gaussian",
    "run_w2bench",
    "run_peers",
    "run_toy2d",
    "run_losses",
]

TOY_PAIRS = (("gaussian", "8gaussians"), ("moons", "circles"), ("gaussian", "checkerboard"))


@dataclass
class Task:
    kind: str
    d: int = 2
    method: str = "BrenierMap"
    options: dict = field(default_factory=dict)
    seed: int = 0
    n_train: int = 32768
    n_test: int = 4096
    peer_samples: int = 1000
    root: str | None = None
    out: str | None = None
    protocol: str = "fixed"
    budget: float | None = None


FRESH = "BrenierMap (fresh samples)"


def _fit_brenier(X, Y, options: dict, seed: int) -> BrenierMap:
    return BrenierMap(seed=seed, progress=False, device="cpu", **options).fit(X, Y)


#: The steps of a fit with a time budget: more than any budget allows, so the clock ends it.
UNBOUNDED_STEPS = 10**7


def _budget_options(options: dict, budget: float) -> dict:
    r"""The options of a fit that trains for ``budget`` seconds: the cosine learning rate
    then follows the clock (``"cosine-time"`` in :func:`otgrad.train.fit`) and decays to 0
    at the time limit."""
    return {**options, "steps": UNBOUNDED_STEPS, "time_limit": budget}


def _fit_map_task(task: Task, data: dict) -> tuple[BrenierMap, dict]:
    r"""BrenierMap on the task's sets, or on fresh draws of the W2 benchmark pair."""
    X, Y = data["X"], data["Y"]
    if task.protocol == "fresh":
        from .w2sampler import W2BenchmarkPair

        pair = W2BenchmarkPair(task.root, task.d)
        X, Y = pair.sample_source, pair.sample_target
    options = task.options
    if task.budget is not None:
        options = _budget_options(options, task.budget)
    est = _fit_brenier(X, Y, options, task.seed)
    return est, options


def _score_map(data: dict, mapped: np.ndarray, x: np.ndarray, reference: np.ndarray) -> dict:
    return dict(
        l2_uvp=l2_uvp(mapped, reference, data["var"]),
        cosine=cosine_similarity(x, mapped, reference),
    )


def _run_map_task(task: Task) -> dict:
    torch.set_num_threads(1)
    if task.kind == "gaussian":
        data = gaussian_pair(task.d, task.n_train, task.n_test, task.seed)
    else:
        data = load_w2bench(task.root, task.d)
    X, Y, Xt, Tt = data["X"], data["Y"], data["X_test"], data["T_test"]
    row = dict(task=task.kind, d=task.d, method=task.method, n_train=len(X))
    start = time.perf_counter()
    if task.method.startswith("BrenierMap"):
        est, options = _fit_map_task(task, data)
        row.update(
            steps=est.history_.steps,
            options=options,
            fit_seconds=est.fit_seconds_,
            train_seconds=est.history_.seconds,
        )
        if task.protocol == "fresh":
            row.update(n_train=None, protocol="fresh")
        row.update(_score_map(data, est.transform(Xt), Xt, Tt))
    elif task.method == "linear (Bures)":
        row.update(_score_map(data, GaussianMap().fit(X, Y).transform(Xt), Xt, Tt))
    elif task.method == OTT:
        mapped, steps = ott_neural_dual(X, Y, Xt, task.budget, seed=task.seed)
        row.update(_score_map(data, mapped, Xt, Tt), steps=steps)
    else:
        row.update(_run_peer(task, data))
    row.update(seconds=time.perf_counter() - start, budget=task.budget)
    return row


def _run_peer(task: Task, data: dict) -> dict:
    X, Y, Xt, Tt = data["X"], data["Y"], data["X_test"], data["T_test"]
    n = task.peer_samples
    mapped, pts = peer_map(task.method, X, Y, Xt, n)
    if pts is Xt:
        row = _score_map(data, mapped, Xt, Tt)
    elif "A" in data:  # in-sample: the true map on the peer's own training points
        row = _score_map(data, mapped, pts, pts @ data["A"] + data["b"])
    else:
        raise ValueError("in-sample scoring needs the true map on the training points")
    return row if task.method == "POT LinearTransport" else dict(row, n_train=n)


def brenier_options(d: int, quick: bool = False, task: str = "w2bench") -> dict:
    r"""The BrenierMap settings of the benchmarks: the estimator's defaults and a step
    budget per task and dimension (the Gaussian fits start at the linear map)."""
    if quick:
        return dict(steps=100)
    if task == "gaussian":
        return dict(steps=500 if d <= 64 else 250)
    return dict(steps=3000 if d <= 16 else 2000 if d <= 64 else 600)


def run_gaussian(
    dims: Sequence[int],
    *,
    quick: bool = False,
    peers: bool = True,
    workers: int = 2,
    seed: int = 0,
    brenier: dict | None = None,
) -> dict:
    r"""Task 1 (and its peers): the Gaussian pairs; returns ``{"rows": [...], "protocol": {...}}``.

    ``brenier`` overrides BrenierMap's options (e.g. ``{"lr": 1e-3}``); its rows are then
    labelled with the overrides."""
    n_train, n_test = (2048, 512) if quick else (32768, 4096)
    methods = ["BrenierMap", "linear (Bures)"] + (list(PEERS) if peers else [])
    extra = dict(brenier or {})
    tasks = [
        Task(
            "gaussian",
            d,
            m,
            {**brenier_options(d, quick, "gaussian"), **extra} if m == "BrenierMap" else {},
            seed,
            n_train,
            n_test,
            peer_samples=200 if quick else 1000,
        )
        for d in sorted(dims, reverse=True)  # the longest fits first
        for m in methods
    ]
    rows = _label(pool_map(_run_map_task, tasks, workers, "gaussian"), extra)
    return dict(rows=_sorted(rows), protocol=_protocol(n_train=n_train, n_test=n_test))


def run_w2bench(
    root: str,
    dims: Sequence[int],
    *,
    quick: bool = False,
    workers: int = 2,
    seed: int = 0,
    brenier: dict | None = None,
    protocols: Sequence[str] = ("fixed",),
    budget: float | None = None,
) -> dict:
    r"""Task 2: the W2 benchmark's high-dimensional pairs from ``root`` (``brenier``: option
    overrides, as in :func:`run_gaussian`).

    ``protocols``: ``"fixed"`` trains on the stored 32768-sample sets (what a user with a
    data set has), ``"fresh"`` on new draws of the pair at every step (as the published
    solvers do; rows labelled :data:`FRESH`). ``budget``: seconds per fit, which the clock
    ends (:func:`_budget_options`), instead of :func:`brenier_options`'s steps."""
    extra = dict(brenier or {})
    methods = [("BrenierMap", p) for p in protocols] + [("linear (Bures)", "fixed")]
    tasks = [
        Task(
            "w2bench",
            d,
            m if p == "fixed" else FRESH,
            {**brenier_options(d, quick), **extra} if m == "BrenierMap" else {},
            seed,
            root=root,
            protocol=p,
            budget=budget if m == "BrenierMap" else None,
        )
        for d in sorted(dims, reverse=True)
        for m, p in methods
    ]
    rows = _label(pool_map(_run_map_task, tasks, workers, "w2bench"), extra)
    return dict(
        rows=_sorted(rows),
        protocol=_protocol(
            published=W2_PUBLISHED, budget_seconds=budget, protocols=list(protocols)
        ),
    )


def run_peers(
    root: str,
    dims: Sequence[int],
    budgets: Sequence[float],
    *,
    quick: bool = False,
    workers: int = 2,
    seed: int = 0,
) -> dict:
    r"""The peer table: BrenierMap and OTT-JAX's :class:`W2NeuralDual` (when installed)
    with ``budgets`` seconds per fit, POT's linear and kernel mapping estimators, on the
    W2 benchmark's stored sample sets of dimension ``dims`` (one thread per fit).

    Returns:
        ``{"rows": [...], "protocol": {...}}``; ``protocol["skipped"]`` names a peer that
        could not run.
    """
    timed = ["BrenierMap"] + ([OTT] if ott_available() else [])
    tasks = [
        Task(
            "w2bench",
            d,
            m,
            brenier_options(d, quick) if m == "BrenierMap" else {},
            seed,
            root=root,
            budget=b,
        )  # fmt: skip
        for b in sorted(budgets, reverse=True)
        for d in sorted(dims, reverse=True)
        for m in timed
    ]
    untimed = ("POT LinearTransport", "POT MappingTransport (kernel)")
    tasks += [Task("w2bench", d, m, {}, seed, root=root) for d in dims for m in untimed]
    rows = pool_map(_run_map_task, tasks, workers, "peers")
    skipped = [] if ott_available() else [f"{OTT}: not installed (pip install otgrad[bench])"]
    return dict(
        rows=sorted(rows, key=lambda r: (r["d"], r["budget"] or 0, r["method"])),
        protocol=_protocol(budgets=list(budgets), skipped=skipped, published=W2_PUBLISHED),
    )


def _label(rows: list[dict], extra: dict) -> list[dict]:
    if extra:
        label = ", ".join(f"{k} {v:g}" for k, v in extra.items())
        for r in rows:
            if r["method"] == "BrenierMap":
                r["method"] = f"BrenierMap ({label})"
            elif r["method"] == FRESH:
                r["method"] = f"BrenierMap (fresh samples, {label})"
    return rows


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r.get("pair", ""), r["d"], r["method"]))


def _protocol(**extra) -> dict:
    return dict(torch=torch.__version__, threads_per_fit=1, device="cpu", **extra)


# ---------------------------------------------------------------------- 2D toys
def _toy_map(task: Task):
    src, tgt = task.options["pair"]
    n = task.n_train
    X, Y = sample_toy2d(src, n, task.seed), sample_toy2d(tgt, n, task.seed + 1)
    Xt, Yt = (
        sample_toy2d(src, task.n_test, task.seed + 2),
        sample_toy2d(tgt, task.n_test, task.seed + 3),
    )
    start = time.perf_counter()
    est = None
    if task.method == "BrenierMap":
        est = _fit_brenier(X, Y, task.options["brenier"], task.seed)
        mapped, pts = est.transform(Xt), Xt
    elif task.method == "linear (Bures)":
        mapped, pts = GaussianMap().fit(X, Y).transform(Xt), Xt
    else:
        n_peer = task.n_test if task.method == "exact plan (in-sample)" else task.peer_samples
        mapped, pts = peer_map(task.method, X, Y, Xt, n_peer)
    seconds = time.perf_counter() - start
    row = dict(
        task="toy2d",
        pair=f"{src} → {tgt}",
        d=2,
        method=task.method,
        n_train=n,
        seconds=seconds,
        w2_mapped=wasserstein2(mapped, Yt),
        w2_source=wasserstein2(pts, Yt),
        w2_floor=wasserstein2(sample_toy2d(tgt, task.n_test, task.seed + 4), Yt),
    )
    return row, est, (X, Y, Xt, Yt)


def _run_toy_task(task: Task) -> dict:
    torch.set_num_threads(1)
    row, est, data = _toy_map(task)
    if est is not None and task.out:
        from otgrad.plotting import plot_transport

        src, tgt = task.options["pair"]
        path = os.path.join(task.out, f"toy_{src}_{tgt}.png")
        plot_transport(est, data[2][:1000], data[3][:1000], path, title=row["pair"])
        row["figure"] = os.path.basename(path)
    return row


def run_toy2d(
    out: str | None,
    *,
    pairs: Sequence[tuple[str, str]] = TOY_PAIRS,
    quick: bool = False,
    peers: bool = True,
    workers: int = 2,
    seed: int = 0,
) -> dict:
    r"""Task 3 (and its peers): 2D toy pairs, :math:`W_2` on 2000 fresh points, figures."""
    n_train, n_test = (2000, 300) if quick else (20000, 2000)
    methods = ["BrenierMap", "linear (Bures)"] + (list(PEERS) if peers else [])
    tasks = [
        Task(
            "toy2d",
            2,
            m,
            dict(pair=p, brenier=dict(steps=100 if quick else 3000)),
            seed,
            n_train,
            n_test,
            peer_samples=200 if quick else 1000,
            out=out,
        )
        for p in pairs
        for m in methods
    ]
    rows = pool_map(_run_toy_task, tasks, workers, "toy2d")
    return dict(rows=_sorted(rows), protocol=_protocol(n_train=n_train, n_test=n_test))


# ---------------------------------------------------------------------- losses
def _run_loss_task(task: Task) -> dict:
    torch.set_num_threads(1)
    data = (
        load_w2bench(task.root, task.d)
        if task.root
        else gaussian_pair(task.d, task.n_train, task.n_test, task.seed)
    )
    est = _fit_brenier(data["X"], data["Y"], task.options, task.seed)
    row = dict(
        task="losses",
        d=task.d,
        method=task.options["loss"],
        steps=est.history_.steps,
        seconds=est.fit_seconds_,
        options=task.options,
    )
    row.update(_score_map(data, est.transform(data["X_test"]), data["X_test"], data["T_test"]))
    return row


def run_losses(
    root: str | None,
    d: int = 8,
    *,
    seconds: float = 120.0,
    quick: bool = False,
    workers: int = 2,
    seed: int = 0,
) -> dict:
    r"""Task 5: every loss of :class:`~otgrad.ot.BrenierMap` on the same pair and time budget
    (the W2 benchmark pair of dimension ``d`` when ``root`` is given, else a Gaussian pair)."""
    steps = 30 if quick else 100_000
    tasks = []
    for loss in ("semidual", "emd", "barycentric", "sinkhorn"):
        opts = dict(loss=loss, steps=steps, time_limit=seconds, init="identity")
        if loss == "sinkhorn":
            opts["batch_size"] = 256 if quick else 512
        tasks.append(
            Task(
                "losses",
                d,
                loss,
                opts,
                seed,
                2048 if quick else 32768,
                512 if quick else 4096,
                root=root,
            )
        )
    rows = pool_map(_run_loss_task, tasks, workers, "losses")
    return dict(rows=_sorted(rows), protocol=_protocol(seconds=seconds, source=root or "gaussian"))
