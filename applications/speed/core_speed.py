"""Speed of the closed-form calculus and of a training step, measured side by side.

1. ``jacobian_trace`` and ``logdet`` of an mGradNet-C: closed form (otgrad) against
   autograd (``torch.func.jacrev`` of the forward, then trace / Cholesky), d = 2..256.
2. One Adam step (MSE to a target field, batch 4096) of mGradNet-C and mGradNet-M
   against an unconstrained MLP vector field and an ICNN trained through its input
   gradient (double backward), at equal parameter counts (about 1024 d), d = 2, 32, 256
   and 1024, eager and under ``torch.compile``; with the matrix-product FLOPs of each
   step (``torch.utils.flop_counter``) and the arithmetic floor they imply at the
   device's measured matrix-product rate.
3. Accuracy of GradNetC's quadrature potential (relative error of grad psi vs forward).

Usage (from the repository's root)::

    python -m applications.speed.core_speed                 # CPU, writes docs/benchmarks/core_speed_cpu.json
    python -m applications.speed.core_speed --device cuda   # GPU
    python -m applications.speed.core_speed --quick         # seconds; what the tests run
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from otgrad.nn import ICNN, GradNetC, GradNetM, validation

from ..common import benchmark_parser, run_benchmark, timeit
from . import MODELS

__all__ = [
    "MODELS",
    "calculus_bench",
    "training_bench",
    "quadrature_accuracy",
    "gemm_rate",
    "build_parser",
    "main",
]

PROG = "applications.speed.core_speed"


def cascade_width(d: int, budget: int) -> int:
    # GradNetC(L=4, tanh): h d + 4 * 3 h + d parameters
    return max(4, round((budget - d) / (d + 12)))


def mlp_width(d: int, budget: int) -> int:
    # d -> h -> h -> d: h^2 + (2 d + 2) h + d
    b = 2 * d + 2
    return max(4, round((-b + math.sqrt(b * b + 4 * (budget - d))) / 2))


def icnn_width(d: int, budget: int) -> int:
    # ICNN(2 layers): 2 (d h + h) + h^2 + h + d + 1
    b = 2 * d + 3
    return max(4, round((-b + math.sqrt(b * b + 4 * (budget - d - 1))) / 2))


def modular_width(d: int, budget: int, modules: int = 8) -> int:
    # GradNetM(softmax): M (h d + h + 2) + d parameters
    return max(2, round((budget - d - 2 * modules) / (modules * (d + 1))))


def gemm_rate(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    """The measured matrix-product rate (FLOP/s) of an n x n x n product."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    ms = timeit(lambda: a @ b, device, min_time=0.5)
    return 2 * n**3 / (ms * 1e-3)


def step_flops(step: Callable[[], None]) -> int:
    """Matrix-product FLOPs (forward and backward) of one training step."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def nparams(m: nn.Module) -> int:
    """The number of parameters of ``m``."""
    return sum(p.numel() for p in m.parameters())


def calculus_functions(net: GradNetC, x: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """Closed-form and autograd (jacrev) trace and log-det of ``net`` at ``x``."""

    def single(xi):
        return net._forward(xi[None])[0]

    jac_auto = torch.func.vmap(torch.func.jacrev(single))

    def logdet_auto():
        chol = torch.linalg.cholesky(jac_auto(x))
        return 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    return {
        "trace_closed": lambda: net.jacobian_trace(x),
        "trace_autograd": lambda: jac_auto(x).diagonal(dim1=-2, dim2=-1).sum(-1),
        "logdet_closed": lambda: net.logdet(x),
        "logdet_autograd": logdet_auto,
    }


def adam_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, compile: bool = False
) -> Callable[[], None]:
    """One Adam step on the MSE between ``model(x)`` and ``y`` (loss and its backward
    compiled by ``torch.compile`` when asked)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss_fn(x, y):
        return ((model(x) - y) ** 2).sum(-1).mean()

    if compile:
        torch._dynamo.reset()  # a fresh cache per model: no recompilation limit, no reuse
        loss_fn = torch.compile(loss_fn)

    def step():
        loss = loss_fn(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def calculus_bench(
    dims: Sequence[int], batch: int, device: torch.device, dtype: torch.dtype
) -> list[dict]:
    """Closed-form trace and log-det of mGradNet-C against autograd, per dimension."""
    rows = []
    for d in dims:
        torch.manual_seed(0)
        net = GradNetC(d, cascade_width(d, 1024 * d)).to(device, dtype)
        x = torch.randn(batch, d, device=device, dtype=dtype)

        fns = calculus_functions(net, x)
        with torch.no_grad(), validation(False):
            err_t = float((fns["trace_closed"]() - fns["trace_autograd"]()).abs().max())
            err_l = float((fns["logdet_closed"]() - fns["logdet_autograd"]()).abs().max())
            t = {k: timeit(f, device) for k, f in fns.items()}
        row = dict(
            dim=d,
            hidden=net.hidden,
            params=nparams(net),
            batch=batch,
            **t,
            trace_speedup=t["trace_autograd"] / t["trace_closed"],
            logdet_speedup=t["logdet_autograd"] / t["logdet_closed"],
            max_abs_diff_trace=err_t,
            max_abs_diff_logdet=err_l,
        )
        rows.append(row)
        print(
            f"B={batch:5d} d={d:4d} h={net.hidden:4d}  trace {t['trace_closed']:.3f} vs "
            f"{t['trace_autograd']:.3f} ms ({row['trace_speedup']:.1f}x)   logdet "
            f"{t['logdet_closed']:.3f} vs {t['logdet_autograd']:.3f} ms "
            f"({row['logdet_speedup']:.1f}x)",
            flush=True,
        )
    return rows


class MLPField(nn.Sequential):
    """An unconstrained vector field d -> h -> h -> d (not a gradient)."""

    def __init__(self, d, h):
        super().__init__(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, d))


def training_bench(
    dims: Sequence[int],
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
    compile: bool = False,
    rate: float | None = None,
) -> list[dict]:
    """One Adam step of each model per dimension (and its FLOPs and floor, given ``rate``)."""
    rows = []
    for d in dims:
        budget = 1024 * d
        torch.manual_seed(0)
        models = {
            "mGradNet-C": GradNetC(d, cascade_width(d, budget)),
            "mGradNet-M": GradNetM(d, modular_width(d, budget), 8),
            "MLP field": MLPField(d, mlp_width(d, budget)),
            "ICNN gradient": ICNN(d, icnn_width(d, budget), layers=2),
        }
        x = torch.rand(batch, d, device=device, dtype=dtype)
        y = torch.tanh(x @ torch.randn(d, d, device=device, dtype=dtype))
        row = dict(dim=d, batch=batch)
        for name, model in models.items():
            model = model.to(device, dtype)
            step = adam_step(model, x, y, compile=compile)

            with validation(False):
                row[name] = timeit(step, device)
                if rate is not None and not compile:
                    flops = step_flops(step)
                    row[f"{name} GFLOP"] = flops / 1e9
                    row[f"{name} floor ms"] = flops / rate * 1e3
            row[f"{name} params"] = nparams(model)
            del step, model
        row["C / MLP"] = row["mGradNet-C"] / row["MLP field"]
        row["C / ICNN"] = row["mGradNet-C"] / row["ICNN gradient"]
        row["M / MLP"] = row["mGradNet-M"] / row["MLP field"]
        row["M / ICNN"] = row["mGradNet-M"] / row["ICNN gradient"]
        rows.append(row)
        print(
            f"d={d:4d}  step ms: "
            + ", ".join(f"{k} {row[k]:.2f} ({row[f'{k} params']} p)" for k in MODELS)
            + f";  C/MLP {row['C / MLP']:.2f}, C/ICNN {row['C / ICNN']:.2f}",
            flush=True,
        )
    return rows


def quadrature_accuracy(
    scales: Sequence[float], nodes_list: Sequence[int], device: torch.device
) -> list[dict]:
    """Largest relative error of the quadrature potential's gradient per scale and nodes."""
    rows = []
    for scale in scales:
        for nodes in nodes_list:
            worst = 0.0
            for seed in range(5):
                torch.manual_seed(seed)
                net = GradNetC(3, 16).to(device, torch.float64)
                net.quadrature_nodes = nodes
                x = scale * torch.randn(200, 3, device=device, dtype=torch.float64)
                x = x.requires_grad_()
                (g,) = torch.autograd.grad(net.potential(x).sum(), x)
                f = net(x.detach())
                rel = (g - f).norm(dim=-1) / (1 + f.norm(dim=-1))
                worst = max(worst, float(rel.detach().max()))
            rows.append(dict(input_scale=scale, nodes=nodes, max_relative_error=worst))
    return rows


def _sections(text: str) -> set[str]:
    r"""An ``argparse`` type: a comma-separated subset of the sections."""
    sections = set(text.split(","))
    unknown = sections - {"calculus", "training", "compiled", "quadrature"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown sections {sorted(unknown)}")
    return sections


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    parser = benchmark_parser(PROG, __doc__.split("\n")[0])
    parser.add_argument(
        "--calc-batches",
        default=None,
        help="comma-separated batch sizes of the calculus section (default 256; 64 with --quick)",
    )
    parser.add_argument(
        "--train-dims",
        default=None,
        help="comma-separated dimensions of the training-step sections (default 2,32,256,1024)",
    )
    parser.add_argument(
        "--sections",
        type=_sections,
        default="calculus,training,quadrature",
        help="comma-separated subset of calculus, training, compiled (torch.compile'd "
        "training steps), quadrature",
    )
    return parser


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    r"""Runs the sections of ``--sections``; returns their results."""
    dtype, q, sections = torch.float32, args.quick, args.sections
    dims, tdims = ([2, 16], [8]) if q else ([2, 16, 64, 256], [2, 32, 256, 1024])
    cbatch, tbatch = (64, 256) if q else (256, 4096)
    if args.train_dims:
        tdims = [int(d) for d in args.train_dims.split(",")]
    results: dict = {"dtype": str(dtype)}
    if "calculus" in sections:
        batches = [int(b) for b in args.calc_batches.split(",")] if args.calc_batches else [cbatch]
        results["calculus"] = [r for b in batches for r in calculus_bench(dims, b, device, dtype)]
    if "training" in sections:
        rate = gemm_rate(device, dtype, 512 if q else 2048)
        results["gemm_gflops"] = rate / 1e9
        print(f"matrix-product rate: {rate / 1e9:.1f} GFLOP/s", flush=True)
        results["training_step"] = training_bench(tdims, tbatch, device, dtype, rate=rate)
    if "compiled" in sections:
        results["training_step_compiled"] = training_bench(
            tdims, tbatch, device, dtype, compile=True
        )
    if "quadrature" in sections:
        scales, nodes = ([1, 3, 10], [32, 64]) if q else ([1, 3, 10, 100], [32, 64, 128])
        results["quadrature"] = quadrature_accuracy(scales, nodes, device)
        for r in results["quadrature"]:
            print(
                f"potential quadrature |x|~{r['input_scale']:>4} nodes={r['nodes']:>3}: "
                f"max rel. error of grad psi {r['max_relative_error']:.1e}"
            )
    return results


def _out(args: argparse.Namespace, device: torch.device) -> str:
    return f"docs/benchmarks/core_speed_{device.type}{'_quick' if args.quick else ''}.json"


def main(argv: Sequence[str] | None = None) -> None:
    r"""Runs the benchmark with the options ``argv`` (default: the command line)."""
    run_benchmark(PROG, argv, build_parser().parse_args, _run, _out)


if __name__ == "__main__":
    main()
