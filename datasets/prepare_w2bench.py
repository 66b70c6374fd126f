r"""Builds and checks the arrays of the W2 benchmark pairs (``w2bench/arrays/D{d}.npz``).

The high-dimensional pairs ("Mix3toMix10") of Korotin et al. (2021): the source P is a
random mixture of three Gaussians, drawn as the benchmark's
``RandomGaussianMixSampler(dim=d, num=3)`` after ``np.random.seed(0)``; the target is
Q = ∇ψ#P with ψ = s (φ_v1 + φ_v2 − ⟨m, ·⟩), where φ_v1, φ_v2 are the two stored DenseICNN
potentials (each with its strong-convexity term 0.5 · 0.01 ‖x‖²) and the scalar s and the
vector m make ∇ψ#P centered with mean per-coordinate variance 1 (estimated on 2^14
samples). The true optimal transport map from P to Q is ∇ψ.

Run from the repository root::

    python datasets/prepare_w2bench.py check [--data-dir ../shared/data] [--dims 2,4,8]
    python datasets/prepare_w2bench.py build --out DIR [--dims 2,4,8] [--seed 0]

``check`` tests the stored arrays against the checkpoints: ``T_test`` must equal
s ∇(φ_v1 + φ_v2)(X_test) − s m for one scalar s and one vector m (a least-squares fit; the
residual is float32 rounding), ``X_train`` must score under P's density like fresh samples
of P, and ``Y_train`` must have the mean and covariance of fresh samples of Q. ``build``
writes new arrays of the same layout: ``X_train``, ``Y_train`` (32768 independent samples
of P and of Q), ``X_test`` (4096 samples of P) and ``T_test`` = ∇ψ(X_test), float32. The
benchmark drew its samples from CUDA random streams, so rebuilt arrays agree with the
stored ones in distribution, not bit for bit.

References:
    | Do Neural Optimal Transport Solvers Work? A Continuous Wasserstein-2 Benchmark
      (Korotin, Li, Genevay, Solomon, Filippov, Burnaev; NeurIPS 2021),
      github.com/iamalexkorotin/Wasserstein2Benchmark (``src/map_benchmark.py``,
      ``src/distributions.py``, ``src/icnn.py``, ``src/potentials.py``).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DIMS = (2, 4, 8, 16, 32, 64, 128)
STRONG_CONVEXITY = 1e-2  # per network, as the benchmark loads them
N_TRAIN, N_TEST, N_STANDARDIZE = 32768, 4096, 2**14


@dataclass
class Mixture:
    """A Gaussian mixture with equal weights: component k is N(centers[k], std² M_k M_kᵀ)."""

    centers: np.ndarray  # (num, d)
    maps: np.ndarray  # (num, d, d), the M_k
    std: float

    @property
    def dim(self) -> int:
        return self.centers.shape[1]


def benchmark_mixture(dim: int, num: int = 3, dist: float = 1.0, std: float = 0.4) -> Mixture:
    """The source P of the pair of dimension ``dim``: the benchmark's random mixture with
    its defaults (centers on a grid of spacing ``dist`` with a random order per axis, random
    row-normalized maps, the whole scaled to mean per-coordinate second moment 1)."""
    rs = np.random.RandomState(0)  # the stream of np.random.seed(0)
    centers = np.zeros((num, dim), dtype=np.float32)
    for j in range(dim):
        centers[:, j] += dist * rs.choice(list(range(num)), num, replace=False)
    centers -= dist * (num - 1) / 2
    maps = rs.normal(size=(num, dim, dim)).astype(np.float32)
    maps /= np.sqrt((maps**2).sum(axis=2, keepdims=True))
    mult = np.sqrt((centers**2).sum(axis=1).mean() + dim * std**2) / np.sqrt(dim)
    return Mixture(centers / mult, maps / mult, std)


def sample_mixture(mix: Mixture, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``mix``, float64, shape ``(n, d)``."""
    k = rng.integers(len(mix.centers), size=n)
    eps = rng.standard_normal((n, mix.dim))
    out = np.empty((n, mix.dim))
    for j, (c, m) in enumerate(zip(mix.centers, mix.maps, strict=True)):
        out[k == j] = c + mix.std * eps[k == j] @ m.T.astype(np.float64)
    return out


def mixture_log_density(mix: Mixture, x: np.ndarray) -> np.ndarray:
    """The log-density of ``mix`` at the rows of ``x``, shape ``(n,)``."""
    logs = []
    for c, m in zip(mix.centers, mix.maps, strict=True):
        chol = np.linalg.cholesky(mix.std**2 * m.astype(np.float64) @ m.T.astype(np.float64))
        z = np.linalg.solve(chol, (x - c).T).T
        logdet = 2 * np.log(np.diag(chol)).sum()
        logs.append(-0.5 * (z**2).sum(1) - 0.5 * logdet - 0.5 * mix.dim * math.log(2 * math.pi))
    stacked = np.stack(logs, 1) - math.log(len(logs))
    top = stacked.max(1, keepdims=True)
    return (top + np.log(np.exp(stacked - top).sum(1, keepdims=True)))[:, 0]


def load_potentials(root: Path, dim: int) -> list[dict[str, Tensor]]:
    """The state dicts of ``{dim}_v1.pt`` and ``{dim}_v2.pt`` in float64."""
    states = []
    for version in ("v1", "v2"):
        state = torch.load(root / f"{dim}_{version}.pt", map_location="cpu", weights_only=True)
        states.append({k: v.to(torch.float64) for k, v in state.items()})
    return states


def icnn_potential(state: dict[str, Tensor], x: Tensor) -> Tensor:
    """The benchmark's ``DenseICNN`` (CELU activations, input-quadratic skip connections)
    evaluated from its state dict at the rows of ``x``, shape ``(n,)``."""

    def quadratic(i: int) -> Tensor:
        q = state[f"quadratic_layers.{i}.quadratic_decomposed"]  # (d, rank, hidden)
        quad = (x @ q.flatten(1)).unflatten(1, q.shape[1:]).square().sum(1)
        w, b = state[f"quadratic_layers.{i}.weight"], state[f"quadratic_layers.{i}.bias"]
        return quad + x @ w.T + b

    layers = sum(k.endswith(".quadratic_decomposed") for k in state)
    out = quadratic(0)
    for i in range(1, layers):
        out = torch.celu(out @ state[f"convex_layers.{i - 1}.weight"].T + quadratic(i))
    final = (out @ state["final_layer.weight"].T)[:, 0]
    return final + 0.5 * STRONG_CONVEXITY * x.square().sum(1)


def raw_map(states: list[dict[str, Tensor]], x: np.ndarray, batch: int = 32768) -> np.ndarray:
    """∇(φ_v1 + φ_v2) at the rows of ``x`` (float64, before standardization)."""
    out = []
    for chunk in torch.as_tensor(np.asarray(x, dtype=np.float64)).split(batch):
        chunk = chunk.clone().requires_grad_(True)
        total = sum(icnn_potential(s, chunk).sum() for s in states)
        out.append(torch.autograd.grad(total, chunk)[0])
    return torch.cat(out).numpy()


def standardization(
    states: list[dict[str, Tensor]], mix: Mixture, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """``(s, m)``: the mean ``m`` of ∇(φ_v1 + φ_v2)#P and ``s`` = 1 / sqrt of its mean
    per-coordinate variance, on :data:`N_STANDARDIZE` samples (the benchmark's
    ``standardize_potential``)."""
    y = raw_map(states, sample_mixture(mix, N_STANDARDIZE, rng))
    mean = y.mean(0)
    return float(1.0 / np.sqrt((y - mean).var(0).mean())), mean


def build(root: Path, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """New arrays of the pair of dimension ``dim`` (the layout of ``arrays/D{dim}.npz``)."""
    rng = np.random.default_rng(seed)
    states, mix = load_potentials(root, dim), benchmark_mixture(dim)
    scale, mean = standardization(states, mix, rng)

    def transport(x: np.ndarray) -> np.ndarray:
        return scale * (raw_map(states, x) - mean)

    x_train = sample_mixture(mix, N_TRAIN, rng)
    y_train = transport(sample_mixture(mix, N_TRAIN, rng))
    x_test = sample_mixture(mix, N_TEST, rng)
    arrays = dict(X_train=x_train, Y_train=y_train, X_test=x_test, T_test=transport(x_test))
    return {k: v.astype(np.float32) for k, v in arrays.items()}


def _moments_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """‖mean(a) − mean(b)‖ and ‖cov(a) − cov(b)‖_F / ‖cov(b)‖_F."""
    ca, cb = np.cov(a.T).reshape(a.shape[1], -1), np.cov(b.T).reshape(b.shape[1], -1)
    return float(np.linalg.norm(a.mean(0) - b.mean(0))), float(
        np.linalg.norm(ca - cb) / np.linalg.norm(cb)
    )


def check(root: Path, dim: int, seed: int = 1) -> dict[str, float | bool]:
    """Checks ``arrays/D{dim}.npz`` against the checkpoints (see the module docstring)."""
    with np.load(root / "arrays" / f"D{dim}.npz") as z:
        arrays = {k: z[k].astype(np.float64) for k in z.files}
    states, mix = load_potentials(root, dim), benchmark_mixture(dim)
    rng = np.random.default_rng(seed)
    # T_test = s * g + b with g = ∇(φ_v1 + φ_v2)(X_test): a scalar s and a vector b
    g, t = raw_map(states, arrays["X_test"]), arrays["T_test"]
    gc, tc = g - g.mean(0), t - t.mean(0)
    scale = float((gc * tc).sum() / (gc * gc).sum())
    shift = t.mean(0) - scale * g.mean(0)
    residual = float(np.abs(t - (scale * g + shift)).max() / np.abs(t).max())
    fresh_scale, _ = standardization(states, mix, rng)
    # X_train: mean log-density under P against fresh samples of P
    fresh = sample_mixture(mix, N_TRAIN, rng)
    lf = mixture_log_density(mix, fresh)
    lx = mixture_log_density(mix, arrays["X_train"])
    z_score = float((lx.mean() - lf.mean()) / np.hypot(lf.std(), lx.std()) * math.sqrt(N_TRAIN))
    # Y_train: moments against two fresh sample sets of Q (the second gives the noise level)
    q1 = scale * raw_map(states, fresh) + shift
    q2 = scale * raw_map(states, sample_mixture(mix, N_TRAIN, rng)) + shift
    mean_gap, cov_gap = _moments_gap(arrays["Y_train"], q1)
    mean_ref, cov_ref = _moments_gap(q2, q1)
    ok = (
        residual < 1e-4
        and abs(scale / fresh_scale - 1) < 0.05
        and abs(z_score) < 5
        and mean_gap < 3 * mean_ref + 1e-3
        and cov_gap < 3 * cov_ref + 1e-3
    )
    return dict(
        dim=dim,
        residual=residual,
        scale=scale,
        shift_norm=float(np.linalg.norm(shift / scale)),
        scale_ratio=scale / fresh_scale,
        z_score=z_score,
        mean_gap=mean_gap,
        mean_ref=mean_ref,
        cov_gap=cov_gap,
        cov_ref=cov_ref,
        ok=ok,
    )


def _print_check(rows: list[dict[str, float | bool]]) -> None:
    print(
        "| d | max residual of T_test (relative) | s | ‖m‖ | s / s(fresh 2^14) "
        "| X_train log-density z | ‖Δ mean Y‖ (fresh vs fresh) | Δ cov Y (fresh vs fresh) | |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---|---|")
    for r in rows:
        print(
            f"| {r['dim']} | {r['residual']:.1e} | {r['scale']:.4f} | {r['shift_norm']:.4f} "
            f"| {r['scale_ratio']:.4f} | {r['z_score']:+.2f} "
            f"| {r['mean_gap']:.4f} ({r['mean_ref']:.4f}) | {r['cov_gap']:.4f} ({r['cov_ref']:.4f}) "
            f"| {'OK' if r['ok'] else 'FAIL'} |"
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "build"])
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the folder with w2bench/"
    )
    parser.add_argument("--dims", default=",".join(map(str, DIMS)))
    parser.add_argument("--out", type=Path, default=None, help="build: the output folder")
    parser.add_argument("--seed", type=int, default=0, help="build: the sampling seed")
    args = parser.parse_args(argv)
    root = args.data_dir / "w2bench"
    dims = [int(d) for d in args.dims.split(",") if d]
    if not root.is_dir():
        parser.error(f"no W2 benchmark folder at {root}")
    if args.command == "check":
        rows = [check(root, d) for d in dims]
        _print_check(rows)
        return 0 if all(r["ok"] for r in rows) else 1
    if args.out is None:
        parser.error("build needs --out (a folder outside the shared data)")
    args.out.mkdir(parents=True, exist_ok=True)
    for d in dims:
        path = args.out / f"D{d}.npz"
        np.savez(path, **build(root, d, args.seed))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
