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

import copy
import functools
import os
from collections.abc import Sequence

import torch

from otgrad.nn import GradNetC, StronglyConvex, validation

from ..common import (
    benchmark_argv,
    benchmark_parser,
    command_line,
    device_name,
    save_benchmark,
    timeit,
)

__all__ = ["dense_logdet", "bench", "main"]

PROG = "applications.speed.logdet_lowrank"


def dense_logdet(net: StronglyConvex, x: torch.Tensor) -> torch.Tensor:
    """The previous ``net.logdet``: Cholesky of the dense Jacobian, singularity check."""
    chol, info = torch.linalg.cholesky_ex(net.jacobian(x))
    if bool((info > 0).any()):
        raise ValueError("singular Jacobian")
    return 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)


def bench(dims: list[int], hidden: int, batch: int, mu: float, device, dtype) -> list[dict]:
    rows = []
    for d in dims:
        torch.manual_seed(0)
        net = StronglyConvex(GradNetC(d, hidden), mu).to(device, dtype)
        x = torch.randn(batch, d, device=device, dtype=dtype)
        rank = hidden  # GradNetC: J - mu I = W^T diag(D) W, W of shape (hidden, d)
        with torch.no_grad(), validation(False):
            low, dense = net.logdet(x), dense_logdet(net, x)
            diff = float((low - dense).abs().max())
            net64, x64 = copy.deepcopy(net).double(), x[:8].double()
            diff64 = float((net64.logdet(x64) - dense_logdet(net64, x64)).abs().max())
            t_low = timeit(functools.partial(net.logdet, x), device)
            t_dense = timeit(functools.partial(dense_logdet, net, x), device)
        size = torch.finfo(dtype).bits // 8
        row = dict(
            dim=d,
            hidden=hidden,
            rank=rank,
            batch=batch,
            mu=mu,
            lowrank_ms=t_low,
            dense_ms=t_dense,
            speedup=t_dense / t_low,
            largest_intermediate_bytes_lowrank=batch * rank * rank * size,
            largest_intermediate_bytes_dense=batch * d * d * size,
            max_abs_diff=diff,
            max_abs_diff_f64=diff64,
            logdet_mean=float(low.mean()),
        )
        rows.append(row)
        print(
            f"B={batch} d={d:5d} R={rank:3d}  lowrank {t_low:9.3f} ms  dense {t_dense:9.3f} ms "
            f"({row['speedup']:.1f}x)  memory {row['largest_intermediate_bytes_lowrank'] / 2**20:.2f}"
            f" vs {row['largest_intermediate_bytes_dense'] / 2**20:.1f} MiB  |diff| {diff:.2e}"
            f" (f64 {diff64:.1e})",
            flush=True,
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    r"""Runs the benchmark with the options ``argv`` (default: the command line)."""
    argv = benchmark_argv(argv)
    args = benchmark_parser(PROG, __doc__.split("\n")[0]).parse_args(argv)
    device = torch.device(args.device)
    dtype = torch.float32
    dims, hidden, batch = ([32, 128], 8, 64) if args.quick else ([256, 1024], 64, 256)
    command = command_line(PROG, argv)
    results = {
        "device": device_name(device),
        "torch": torch.__version__,
        "dtype": str(dtype),
        "command": command,
        "rows": bench(dims, hidden, batch, 0.1, device, dtype),
    }
    name = f"logdet_lowrank_{device.type}{'_quick' if args.quick else ''}.json"
    save_benchmark(results, args.out or os.path.join("docs", "benchmarks", name), command, device)


if __name__ == "__main__":
    main()
