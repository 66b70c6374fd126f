"""Log-determinant of a narrow strongly convex network: determinant lemma against Cholesky.

``StronglyConvex(GradNetC(d, hidden=64), 0.1)`` has the Jacobian :math:`0.1 I + W^\\top
\\operatorname{diag}(D) W` of rank :math:`R = 64` above the identity. ``net.logdet(x)`` takes
:math:`\\log\\det` of :math:`R \\times R` matrices (matrix determinant lemma); the dense path,
the previous implementation, forms the ``(B, d, d)`` Jacobian and factors it (Cholesky).
Both run through the public API, float32, ``torch.no_grad``; the largest intermediates are
``B d^2`` floats (dense) against ``B R^2`` (low rank).

Usage::

    python benchmarks/logdet_lowrank.py            # d = 256, 1024, batch 256; writes docs/benchmarks/logdet_lowrank_cpu.json
    python benchmarks/logdet_lowrank.py --quick    # seconds; small d
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os

import torch
from _common import device_name, keep_freed_memory, timeit

from otgrad.nn import GradNetC, StronglyConvex, validation


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


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None, help="JSON path")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = torch.float32
    if args.quick:
        dims, hidden, batch = [32, 128], 8, 64
    else:
        dims, hidden, batch = [256, 1024], 64, 256
    name = device_name(device)
    results = {
        "device": name,
        "torch": torch.__version__,
        "dtype": str(dtype),
        "command": "python benchmarks/logdet_lowrank.py"
        + (" --quick" if args.quick else "")
        + (f" --device {args.device}" if args.device != "cpu" else ""),
        "rows": bench(dims, hidden, batch, 0.1, device, dtype),
    }
    out = args.out or os.path.join(
        "docs", "benchmarks", f"logdet_lowrank_{device.type}{'_quick' if args.quick else ''}.json"
    )
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
