r"""Builds and checks the arrays of the W2 benchmark pairs (``w2bench/arrays/D{d}.npz``).

The high-dimensional pairs ("Mix3toMix10") of Korotin et al. (2021): the source P is a
random mixture of three Gaussians, drawn as the benchmark's
``RandomGaussianMixSampler(dim=d, num=3)`` after ``np.random.seed(0)``; the target is
Q = ∇ψ#P with ψ = s (φ_v1 + φ_v2 − ⟨m, ·⟩), where φ_v1, φ_v2 are the two stored DenseICNN
potentials (each with its strong-convexity term 0.5 · 0.01 ‖x‖²) and the scalar s and the
vector m make ∇ψ#P centered with mean per-coordinate variance 1 (estimated on 2^14
samples). The true optimal transport map from P to Q is ∇ψ. The mixture, the potentials,
the map and the standardization are those of :mod:`applications.ot_maps.w2sampler`
(``W2BenchmarkPair``, ``source_mixture``, ``mixture_log_density``), evaluated in float64;
this script only draws and compares.

Run from the repository root (the script puts the root on ``sys.path``)::

    python datasets/prepare_w2bench.py check [--data-dir ../shared/data] [--dims 2,4,8]
    python datasets/prepare_w2bench.py build --out DIR [--dims 2,4,8] [--seed 0]

``check`` tests the stored arrays against the checkpoints: ``T_test`` must equal
s ∇(φ_v1 + φ_v2)(X_test) − s m for one scalar s and one vector m (a least-squares fit; the
residual is float32 rounding) with s within 5 % of a fresh 2^14-sample standardization,
``X_train`` must score under P's density like fresh samples of P, and ``Y_train`` must have
the mean and covariance of fresh samples of Q. ``build`` writes new arrays of the same layout:
``X_train``, ``Y_train`` (32768 independent samples of P and of Q), ``X_test`` (4096 samples
of P) and ``T_test`` = ∇ψ(X_test), float32; s and m are estimated on 2^14 samples of a fixed
seed (``W2BenchmarkPair(standardize="sample")``), ``--seed`` seeds the samples. The
benchmark drew its samples from CUDA random streams, so rebuilt arrays agree with the stored
ones in distribution, not bit for bit.

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
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # applications/ is not installed with otgrad
    sys.path.insert(0, str(REPO))

from applications.ot_maps.w2sampler import (  # noqa: E402
    W2BenchmarkPair,
    mixture_log_density,
    source_mixture,
)

__all__ = ["build", "check", "main"]

DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DIMS = (2, 4, 8, 16, 32, 64, 128)
N_TRAIN, N_TEST = 32768, 4096


def build(root: Path, dim: int, seed: int = 0) -> dict[str, np.ndarray]:
    """New arrays of the pair of dimension ``dim`` (the layout of ``arrays/D{dim}.npz``),
    drawn in float64 from one generator of seed ``seed`` and stored as float32."""
    pair = W2BenchmarkPair(str(root), dim, dtype=torch.float64, standardize="sample")
    generator = torch.Generator().manual_seed(seed)
    x_train = pair.sample_source(N_TRAIN, generator)
    y_train = pair.sample_target(N_TRAIN, generator)
    x_test = pair.sample_source(N_TEST, generator)
    arrays = dict(X_train=x_train, Y_train=y_train, X_test=x_test, T_test=pair.transport(x_test))
    return {k: v.numpy().astype(np.float32) for k, v in arrays.items()}


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
    # s and m fitted to T_test = s (g(X_test) - m); any residual is accepted, it is tested here
    stored = W2BenchmarkPair(str(root), dim, dtype=torch.float64, max_residual=math.inf)
    fresh = W2BenchmarkPair(str(root), dim, dtype=torch.float64, standardize="sample")
    generator = torch.Generator().manual_seed(seed)
    # X_train: mean log-density under P against fresh samples of P
    centers, factors = source_mixture(dim)
    x = stored.sample_source(N_TRAIN, generator)
    lf = mixture_log_density(centers, factors, x.numpy())
    lx = mixture_log_density(centers, factors, arrays["X_train"])
    z_score = float((lx.mean() - lf.mean()) / np.hypot(lf.std(), lx.std()) * math.sqrt(N_TRAIN))
    # Y_train: moments against two fresh sample sets of Q (the second gives the noise level)
    q1 = stored.transport(x).numpy()
    q2 = stored.sample_target(N_TRAIN, generator).numpy()
    mean_gap, cov_gap = _moments_gap(arrays["Y_train"], q1)
    mean_ref, cov_ref = _moments_gap(q2, q1)
    scale, residual = stored.scale, float(stored.residual)
    ok = (
        residual < 1e-4
        and abs(scale / fresh.scale - 1) < 0.05
        and abs(z_score) < 5
        and mean_gap < 3 * mean_ref + 1e-3
        and cov_gap < 3 * cov_ref + 1e-3
    )
    return dict(
        dim=dim,
        residual=residual,
        scale=scale,
        shift_norm=float(stored.shift.norm()),
        scale_ratio=scale / fresh.scale,
        z_score=z_score,
        mean_gap=mean_gap,
        mean_ref=mean_ref,
        cov_gap=cov_gap,
        cov_ref=cov_ref,
        ok=ok,
    )


def _print_check(rows: list[dict[str, float | bool]]) -> None:
    """Prints the rows of :func:`check` as a Markdown table."""
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
