r"""Optimal transport map benchmarks: Gaussians, the W2 benchmark, 2D toys, peers, losses.

1. *Gaussian*: :math:`\mathcal{N}(m_s, \Sigma_s) \to \mathcal{N}(m_t, \Sigma_t)` in
   :math:`d = 2 \ldots 256`, covariances with eigenvalues spread geometrically over
   :math:`[1/4, 4]` (×16) in a random rotation, 32768 training samples of each, L2-UVP on
   4096 test points against the true (Bures) map, beside the linear baseline fitted on the
   same samples.
2. *W2 benchmark* (Korotin et al. 2021, high-dimensional pairs): the training arrays
   (32768 unpaired samples), L2-UVP on the 4096 test points and their true transport.
3. *2D toys*: :math:`W_2(T_\#\mu, \nu)` on fresh samples beside :math:`W_2(\mu, \nu)` and the
   sampling floor :math:`W_2(\nu, \nu')`, with figures.
4. *Peers* on tasks 1 and 3: POT's ``LinearTransport``, ``MappingTransport`` (linear and
   Gaussian kernel) and the barycentric map of the exact plan (in-sample points).
5. *Losses*: the semi-dual against the minibatch losses at an equal time budget.

References:
    | Do Neural Optimal Transport Solvers Work? A Continuous Wasserstein-2 Benchmark
      (Korotin et al., 2021), Table 1 (high-dimensional benchmark, forward L2-UVP).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..data.toy2d import sample_toy2d
from ..ot import BrenierMap, GaussianMap, bures_map, cosine_similarity, l2_uvp, wasserstein2
from ._pool import pool_map

__all__ = [
    "W2_PUBLISHED",
    "gaussian_pair",
    "load_w2bench",
    "run_gaussian",
    "run_w2bench",
    "run_toy2d",
    "run_losses",
    "report",
]

# Korotin et al. 2021, Table 1, forward L2-UVP (%) of the best solver per dimension
W2_PUBLISHED = {2: 0.1, 4: 0.3, 8: 0.7, 16: 1.4, 32: 2.8, 64: 3.2, 128: 2.0}
# published W2GN on Gaussians (the reference): < 1 % up to d = 64, 1.1 % at d = 256
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


def _fit_brenier(X, Y, options: dict, seed: int) -> BrenierMap:
    return BrenierMap(seed=seed, progress=False, device="cpu", **options).fit(X, Y)


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
    if task.method == "BrenierMap":
        est = _fit_brenier(X, Y, task.options, task.seed)
        row.update(steps=est.history_.steps, options=task.options)
        row.update(_score_map(data, est.transform(Xt), Xt, Tt))
    elif task.method == "linear (Bures)":
        row.update(_score_map(data, GaussianMap().fit(X, Y).transform(Xt), Xt, Tt))
    else:
        row.update(_run_peer(task, data))
    row["seconds"] = time.perf_counter() - start
    return row


def _run_peer(task: Task, data: dict) -> dict:
    X, Y, Xt, Tt = data["X"], data["Y"], data["X_test"], data["T_test"]
    n = task.peer_samples
    mapped, pts = _peer_map(task.method, X, Y, Xt, n)
    if pts is Xt:
        row = _score_map(data, mapped, Xt, Tt)
    elif "A" in data:  # in-sample: the true map on the peer's own training points
        row = _score_map(data, mapped, pts, pts @ data["A"] + data["b"])
    else:
        raise ValueError("in-sample scoring needs the true map on the training points")
    return row if task.method == "POT LinearTransport" else dict(row, n_train=n)


def _peer_map(
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


PEERS = (
    "POT LinearTransport",
    "POT MappingTransport (linear)",
    "POT MappingTransport (kernel)",
    "exact plan (in-sample)",
)


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
) -> dict:
    r"""Task 2: the W2 benchmark's high-dimensional pairs from ``root`` (``brenier``: option
    overrides, as in :func:`run_gaussian`)."""
    extra = dict(brenier or {})
    tasks = [
        Task(
            "w2bench",
            d,
            m,
            {**brenier_options(d, quick), **extra} if m == "BrenierMap" else {},
            seed,
            root=root,
        )
        for d in sorted(dims, reverse=True)
        for m in ("BrenierMap", "linear (Bures)")
    ]
    rows = _label(pool_map(_run_map_task, tasks, workers, "w2bench"), extra)
    return dict(rows=_sorted(rows), protocol=_protocol(published=W2_PUBLISHED))


def _label(rows: list[dict], extra: dict) -> list[dict]:
    if extra:
        label = "BrenierMap (" + ", ".join(f"{k} {v:g}" for k, v in extra.items()) + ")"
        for r in rows:
            if r["method"] == "BrenierMap":
                r["method"] = label
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
        mapped, pts = _peer_map(task.method, X, Y, Xt, n_peer)
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
        from ..plotting import plot_transport

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


# ---------------------------------------------------------------------- report
def _fmt(v: float) -> str:
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def report(results: dict) -> str:
    r"""Markdown tables of the results of the ``run_*`` functions (keys: ``gaussian``,
    ``w2bench``, ``toy2d``, ``losses``, ``color``)."""
    lines: list[str] = []
    g = results.get("gaussian")
    if g:
        dims = sorted({r["d"] for r in g["rows"]})
        methods = list(dict.fromkeys(r["method"] for r in g["rows"]))
        lines += [
            "| method | " + " | ".join(f"d = {d}" for d in dims) + " |",
            "|---|" + "---:|" * len(dims),
        ]
        for m in methods:
            cells = []
            for d in dims:
                r = next((r for r in g["rows"] if r["d"] == d and r["method"] == m), None)
                cells.append("—" if r is None else f"{_fmt(r['l2_uvp'])} ({r['seconds']:.0f} s)")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    w = results.get("w2bench")
    if w:
        dims = sorted({r["d"] for r in w["rows"]})
        lines += [
            "| | " + " | ".join(f"d = {d}" for d in dims) + " |",
            "|---|" + "---:|" * len(dims),
        ]
        variants = sorted({r["method"] for r in w["rows"] if r["method"].startswith("BrenierMap")})
        for m in variants + ["linear (Bures)"]:
            cells = []
            for d in dims:
                r = next((r for r in w["rows"] if r["d"] == d and r["method"] == m), None)
                cells.append("—" if r is None else f"{_fmt(r['l2_uvp'])}")
            lines.append(f"| {m} L2-UVP (%) | " + " | ".join(cells) + " |")
        cells = [f"{W2_PUBLISHED.get(d, float('nan'))}" for d in dims]
        lines.append("| best published (%) | " + " | ".join(cells) + " |")
        cells = []
        for d in dims:
            r = next((r for r in w["rows"] if r["d"] == d and r["method"] == "BrenierMap"), None)
            cells.append("—" if r is None else f"{r['cosine']:.3f}")
        lines.append("| BrenierMap cosine | " + " | ".join(cells) + " |")
        cells = []
        for d in dims:
            r = next((r for r in w["rows"] if r["d"] == d and r["method"] == "BrenierMap"), None)
            cells.append("—" if r is None else f"{r['seconds'] / 60:.1f} min")
        lines.append("| BrenierMap fit time | " + " | ".join(cells) + " |")
        lines.append("")
    t = results.get("toy2d")
    if t:
        lines += [
            "| pair | method | W2(T#μ, ν) | W2(μ, ν) | W2(ν', ν) | fit (s) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in t["rows"]:
            lines.append(
                f"| {r['pair']} | {r['method']} | {r['w2_mapped']:.3f} | {r['w2_source']:.3f} "
                f"| {r['w2_floor']:.3f} | {r['seconds']:.1f} |"
            )
        lines.append("")
    s = results.get("losses")
    if s:
        lines += ["| loss | steps | L2-UVP (%) | cosine | seconds |", "|---|---:|---:|---:|---:|"]
        for r in s["rows"]:
            lines.append(
                f"| {r['method']} | {r['steps']} | {_fmt(r['l2_uvp'])} | {r['cosine']:.3f} "
                f"| {r['seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def save_json(obj: dict, path: str) -> None:
    r"""Writes ``obj`` as indented JSON (creating the folder)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(
            obj,
            fh,
            indent=1,
            default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o),
        )


# ---------------------------------------------------------------------- color transfer
def run_color_transfer(out: str, *, quick: bool = False, seed: int = 0) -> dict:
    r"""Maps the RGB pixel cloud of scikit-learn's ``china.jpg`` onto that of ``flower.jpg``
    and writes ``color_transfer.png`` (source, target, result) to ``out``."""
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_sample_images

    torch.set_num_threads(2)
    images = load_sample_images().images
    src, tgt = (im.astype(np.float64) / 255 for im in images[:2])
    rng = np.random.default_rng(seed)
    ps, pt = src.reshape(-1, 3), tgt.reshape(-1, 3)
    n = 2000 if quick else 20000
    X, Y = ps[rng.choice(len(ps), n, replace=False)], pt[rng.choice(len(pt), n, replace=False)]
    # pixel clouds sit on a few colors; a little noise makes them absolutely continuous
    X = X + rng.uniform(-0.5, 0.5, X.shape) / 255
    Y = Y + rng.uniform(-0.5, 0.5, Y.shape) / 255
    est = BrenierMap(steps=100 if quick else 2000, seed=seed, progress=False, device="cpu")
    est.fit(X, Y)
    mapped = np.clip(est.transform(ps), 0, 1).reshape(src.shape)
    k = 500 if quick else 3000
    Xe, Ye = ps[rng.choice(len(ps), k, replace=False)], pt[rng.choice(len(pt), k, replace=False)]
    row = dict(
        task="color",
        n_train=n,
        seconds=est.fit_seconds_,
        w2_source=wasserstein2(Xe, Ye),
        w2_mapped=wasserstein2(np.clip(est.transform(Xe), 0, 1), Ye),
        w2_linear=wasserstein2(np.clip(GaussianMap().fit(X, Y).transform(Xe), 0, 1), Ye),
    )
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    titles = ("source (china.jpg)", "target palette (flower.jpg)", "source, target's colors")
    for a, im, title in zip(ax, (src, tgt, mapped), titles, strict=True):
        a.imshow(im)
        a.set_title(title)
        a.axis("off")
    fig.tight_layout()
    os.makedirs(out, exist_ok=True)
    fig.savefig(os.path.join(out, "color_transfer.png"), dpi=80)
    plt.close(fig)
    row["figure"] = "color_transfer.png"
    return row
