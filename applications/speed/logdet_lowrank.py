"""Log-determinant of a narrow strongly convex network: determinant lemma against Cholesky.

``StronglyConvex(GradNetC(d, hidden=64), 0.1)`` has the Jacobian :math:`0.1 I + W^\\top
\\operatorname{diag}(D) W` of rank :math:`R = 64` above the identity. ``net.logdet(x)`` takes
:math:`\\log\\det` of :math:`R \\times R` matrices (matrix determinant lemma); the dense path,
the previous implementation, forms the ``(B, d, d)`` Jacobian and factors it (Cholesky).
Both run through the public API, float32, ``torch.no_grad``; the largest intermediates are
``B d^2`` floats (dense) against ``B R^2`` (low rank).

Usage (from the repository's root)::

    python -m applications.speed.logdet_lowrank           # d = 256, 1024, batch 256; writes docs/benchmarks/logdet_lowrank_cpu.json
    python -m applications.speed.logdet_lowrank --quick   # seconds; small d
"""

from __future__ import annotations

import argparse
import copy
import functools
from collections.abc import Sequence

import torch

from otgrad.nn import GradNetC, StronglyConvex, validation

from ..common import benchmark_parser, run_benchmark, timeit

__all__ = ["dense_logdet", "compare", "bench", "main"]

PROG = "applications.speed.logdet_lowrank"


def dense_logdet(net: StronglyConvex, x: torch.Tensor) -> torch.Tensor:
    """The previous ``net.logdet``: Cholesky of the dense Jacobian, singularity check."""
    chol, info = torch.linalg.cholesky_ex(net.jacobian(x))
    if bool((info > 0).any()):
        raise ValueError("singular Jacobian")
    return 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)


def compare(net: StronglyConvex, x: torch.Tensor, device: torch.device) -> dict:
    r"""Times (ms) of ``net.logdet(x)`` and :func:`dense_logdet`, their largest difference,
    in the dtype of ``x`` and in float64 on 8 samples, and the mean log-determinant."""
    with torch.no_grad(), validation(False):
        low, dense = net.logdet(x), dense_logdet(net, x)
        net64, x64 = copy.deepcopy(net).double(), x[:8].double()
        diff64 = net64.logdet(x64) - dense_logdet(net64, x64)
        return {
            "lowrank_ms": timeit(functools.partial(net.logdet, x), device),
            "dense_ms": timeit(functools.partial(dense_logdet, net, x), device),
            "max_abs_diff": float((low - dense).abs().max()),
            "max_abs_diff_f64": float(diff64.abs().max()),
            "logdet_mean": float(low.mean()),
        }


def bench(dims: list[int], hidden: int, batch: int, mu: float, device, dtype) -> list[dict]:
    r"""One row per dimension: :func:`compare`, the speed-up and the largest intermediates."""
    rows, size = [], torch.finfo(dtype).bits // 8
    for d in dims:
        torch.manual_seed(0)
        net = StronglyConvex(GradNetC(d, hidden), mu).to(device, dtype)
        x = torch.randn(batch, d, device=device, dtype=dtype)
        rank = hidden  # GradNetC: J - mu I = W^T diag(D) W, W of shape (hidden, d)
        row = dict(dim=d, hidden=hidden, rank=rank, batch=batch, mu=mu, **compare(net, x, device))
        row["speedup"] = row["dense_ms"] / row["lowrank_ms"]
        row["largest_intermediate_bytes_lowrank"] = batch * rank * rank * size
        row["largest_intermediate_bytes_dense"] = batch * d * d * size
        rows.append(row)
        print(
            f"B={batch} d={d:5d} R={rank:3d}  lowrank {row['lowrank_ms']:9.3f} ms  dense "
            f"{row['dense_ms']:9.3f} ms ({row['speedup']:.1f}x)  memory "
            f"{row['largest_intermediate_bytes_lowrank'] / 2**20:.2f} vs "
            f"{row['largest_intermediate_bytes_dense'] / 2**20:.1f} MiB  |diff| "
            f"{row['max_abs_diff']:.2e} (f64 {row['max_abs_diff_f64']:.1e})",
            flush=True,
        )
    return rows


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    dims, hidden, batch = ([32, 128], 8, 64) if args.quick else ([256, 1024], 64, 256)
    dtype = torch.float32
    return {"dtype": str(dtype), "rows": bench(dims, hidden, batch, 0.1, device, dtype)}


def _out(args: argparse.Namespace, device: torch.device) -> str:
    return f"docs/benchmarks/logdet_lowrank_{device.type}{'_quick' if args.quick else ''}.json"


def main(argv: Sequence[str] | None = None) -> None:
    r"""Runs the benchmark with the options ``argv`` (default: the command line)."""
    parser = benchmark_parser(PROG, __doc__.split("\n")[0])
    run_benchmark(PROG, argv, parser.parse_args, _run, _out)


if __name__ == "__main__":
    main()
