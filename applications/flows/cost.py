"""Cost of a convex potential flow's training step: closed-form Jacobian against autograd Hessian.

One training step is the forward log-density of a batch ``x ~ N(0, I)`` and the backward
pass to all parameters (``-log_prob(x).mean()``, then ``.backward()``). It is computed
three ways on the same flow object and the same parameters:

* ``closed``: the flow's own exact path (``logdet="exact"``): each block's Jacobian is
  the closed-form :class:`~otgrad.nn.structure.StructuredJacobian`, densified and
  Cholesky-factorized;
* ``stochastic``: the same flow with ``flow.logdet_mode = "stochastic"`` in train mode
  (CG for the gradient, Lanczos quadrature for the value, on the closed-form
  Jacobian-vector product);
* ``autograd``: the same map, but each block's Jacobian (the Hessian of its potential)
  obtained by ``torch.func.vmap(torch.func.jacrev(...))`` of the block's gradient map,
  then a Cholesky factorization; the backward is a double backward. This is what a
  CP-Flow-style implementation does with a gradient map it cannot differentiate in
  closed form (with an ICNN potential, the gradient map itself is one more autograd
  level, so the gap measured here is a lower bound);
* ``autograd_stochastic``: CP-Flow's estimator on the same flow: the same probes, CG
  iterations and Lanczos value as ``stochastic``, but every Hessian-vector product by
  automatic differentiation (forward-mode ``jvp`` inside CG, a ``create_graph``
  vector-Jacobian product for the gradient surrogate).

Before timing, ``closed`` and ``autograd`` (and the two stochastic ways, with the same
probes) are checked to give the same log-density and the same parameter gradients in
float64 (small batch), so the timings compare equal computations. Also measured: log-density evaluation in eval mode without gradients
(closed vs autograd), sampling time of ``flow.sample(n)`` and the largest relative
inversion residual ``|flow(x)[0] - z| / (1 + |z|)`` of the samples, in float64 and float32.

Usage (from the repository's root)::

    python -m applications.flows.cost                  # CPU, writes docs/flows/flows_cost.json
    python -m applications.flows.cost --device cuda    # GPU
    python -m applications.flows.cost --quick          # seconds; what the tests run
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

from otgrad import calculus
from otgrad.flows import NETS, FlowNetwork, block_networks
from otgrad.nn import validation

from ..common import benchmark_parser, median_seconds, run_benchmark

__all__ = [
    "autograd_log_prob",
    "autograd_stochastic_log_prob",
    "check_equal",
    "bench_dim",
    "main",
]

PROG = "applications.flows.cost"
_LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------- the autograd path
def autograd_log_prob(flow: FlowNetwork, x: Tensor) -> Tensor:
    r"""The log-density of ``flow`` at ``x`` (shape ``(n, d)``) with autograd Jacobians.

    Walks ``flow.norms`` and ``flow.blocks`` as ``FlowNetwork._transform`` does,
    but each block's Jacobian :math:`\nabla^2\psi_k` is ``vmap(jacrev)`` of the block's
    gradient map (its output is returned as the auxiliary value, so the map is evaluated
    once), and :math:`\log\det` is a Cholesky factorization of it.
    """
    z, ladj = flow.norms[0](x)
    for block, norm in zip(flow.blocks, flow.norms[1:], strict=True):

        def single(xi: Tensor, block=block) -> tuple[Tensor, Tensor]:
            f = block._forward(xi[None])[0]
            return f, f

        jac, z = torch.func.vmap(torch.func.jacrev(single, has_aux=True))(z)
        chol = torch.linalg.cholesky(jac)
        ladj = ladj + 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        z, ld = norm(z)
        ladj = ladj + ld
    return -0.5 * (z * z).sum(-1) - 0.5 * flow.dim * _LOG_2PI + ladj


def autograd_stochastic_log_prob(flow: FlowNetwork, x: Tensor) -> Tensor:
    r"""CP-Flow's own estimator on the same flow: the stochastic log-determinant
    (:func:`otgrad.calculus.logdet_cg`, the same probes and iterations as the flow's
    ``"stochastic"`` mode) with every Hessian-vector product by automatic differentiation:
    forward-mode ``jvp`` inside conjugate gradients, and a ``create_graph`` vector-Jacobian
    product for the gradient surrogate (so the backward is a double backward).
    """
    z, ladj = flow.norms[0](x)
    for block, norm in zip(flow.blocks, flow.norms[1:], strict=True):
        v = torch.randint(0, 2, z.shape, device=z.device).to(z.dtype) * 2 - 1
        zd = z.detach()

        def hvp(u: Tensor, zd=zd, block=block) -> Tensor:
            return torch.func.jvp(block._forward, (zd,), (u,))[1]

        est, w = calculus.logdet_cg(hvp, v, flow.cg_tol, flow.cg_iter)
        if not z.requires_grad:
            z = z.requires_grad_()
        f = block._forward(z)
        jv = torch.autograd.grad(f, z, v, create_graph=True)[0]  # J^T v = J v (symmetric)
        surrogate = (w * jv).sum(-1)
        ladj = ladj + est + surrogate - surrogate.detach()
        z, ld = norm(f)
        ladj = ladj + ld
    return -0.5 * (z * z).sum(-1) - 0.5 * flow.dim * _LOG_2PI + ladj


@contextlib.contextmanager
def logdet_mode(flow: FlowNetwork, mode: str) -> Iterator[None]:
    """Sets ``flow.logdet_mode`` for the duration of the block."""
    old = flow.logdet_mode
    flow.logdet_mode = mode
    try:
        yield
    finally:
        flow.logdet_mode = old


def step_fn(flow: FlowNetwork, x: Tensor, way: str) -> Callable[[], None]:
    """One training step (loss and backward to all parameters) computed ``way``."""

    def step():
        flow.zero_grad(set_to_none=True)
        if way == "autograd":
            loss = -autograd_log_prob(flow, x).mean()
        elif way == "autograd_stochastic":
            loss = -autograd_stochastic_log_prob(flow, x).mean()
        else:
            with logdet_mode(flow, "stochastic" if way == "stochastic" else "exact"):
                loss = -flow.log_prob(x).mean()
        loss.backward()

    return step


def grads(flow: FlowNetwork) -> list[Tensor]:
    """Copies of the parameters' gradients."""
    return [p.grad.detach().clone() for p in flow.parameters()]


# ---------------------------------------------------------------------- checks
def _max_rel(a: list[Tensor], b: list[Tensor]) -> float:
    return max(float((u - v).abs().max() / (1 + u.abs().max())) for u, v in zip(a, b, strict=True))


def _log_prob_and_grads(
    flow: FlowNetwork, x: Tensor, way: str, seed: int
) -> tuple[Tensor, list[Tensor]]:
    r"""The log-density computed ``way`` and the gradients of its mean to the parameters."""
    flow.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same probes for both stochastic ways
    ways = {
        "closed": flow.log_prob,
        "autograd": lambda x: autograd_log_prob(flow, x),
        "stochastic": flow.log_prob,
        "autograd_stochastic": lambda x: autograd_stochastic_log_prob(flow, x),
    }
    with logdet_mode(flow, "stochastic" if "stochastic" in way else "exact"):
        lp = ways[way](x)
    (-lp.mean()).backward()
    return lp.detach(), grads(flow)


def _compare(
    flow: FlowNetwork, x: Tensor, ways: tuple[str, str], seed: int
) -> tuple[Tensor, Tensor, float, float]:
    (lp_a, g_a), (lp_b, g_b) = (_log_prob_and_grads(flow, x, w, seed) for w in ways)
    return lp_a, lp_b, float((lp_a - lp_b).abs().max()), _max_rel(g_a, g_b)


def check_equal(flow: FlowNetwork, batch: int, seed: int) -> dict:
    r"""Closed and autograd log-densities and parameter gradients agree (float64 copy),
    and so do the two stochastic estimators with the same probes."""
    flow = copy.deepcopy(flow).to(torch.float64).train()
    device = next(flow.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, flow.dim, generator=gen, dtype=torch.float64).to(device)
    lp_c, lp_a, lp_err, g_err = _compare(flow, x, ("closed", "autograd"), seed)
    if not torch.allclose(lp_c, lp_a, rtol=1e-9, atol=1e-9):
        raise AssertionError(f"closed and autograd log_prob differ by {lp_err:.3e} (float64)")
    if g_err > 1e-8:
        raise AssertionError(f"closed and autograd gradients differ by {g_err:.3e} (float64)")
    _, _, s_err, gs_err = _compare(flow, x, ("stochastic", "autograd_stochastic"), seed)
    if s_err > 1e-7 or gs_err > 1e-7:
        raise AssertionError(
            f"the stochastic estimators differ: log_prob {s_err:.3e}, gradients {gs_err:.3e}"
        )
    return dict(
        check_batch=batch,
        logprob_max_abs_diff_f64=lp_err,
        grad_max_rel_diff_f64=g_err,
        stochastic_logprob_max_abs_diff_f64=s_err,
        stochastic_grad_max_rel_diff_f64=gs_err,
    )


# ---------------------------------------------------------------------- timing
def sampling(flow: FlowNetwork, n: int, dtype, device, reps: int, seed: int) -> dict:
    r"""Time of ``flow.sample(n)`` and the largest relative inversion residual."""
    flow = copy.deepcopy(flow).to(dtype).eval()
    name = str(dtype).replace("torch.", "")
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, flow.dim, generator=gen, dtype=dtype).to(device)
    try:
        t = median_seconds(lambda: flow.sample(n, seed=seed), device, 1, reps)
        x = flow.inverse(z)
        with torch.no_grad():
            zz, _ = flow(x)
        res = (zz - z).norm(dim=-1) / (1 + z.norm(dim=-1))
        return {f"sample_s_{name}": t, f"inverse_residual_{name}": float(res.max())}
    except Exception as e:  # a failed inversion is a result, not a crash of the benchmark
        print(f"  sampling in {name} failed: {type(e).__name__}: {e}", flush=True)
        return {
            f"sample_s_{name}": None,
            f"inverse_residual_{name}": None,
            f"error_{name}": repr(e),
        }


def _timings(flow: FlowNetwork, x: Tensor, args, device: torch.device) -> dict:
    row = {}
    with validation(False):
        for way in ("closed", "stochastic", "autograd", "autograd_stochastic"):
            step = step_fn(flow, x, way)
            row[f"step_s_{way}"] = median_seconds(step, device, args.warmup, args.reps)
        flow.eval()
        with torch.no_grad():
            row["eval_s_closed"] = median_seconds(lambda: flow.log_prob(x), device, 1, args.reps)
            row["eval_s_autograd"] = median_seconds(
                lambda: autograd_log_prob(flow, x), device, 1, args.reps
            )
        flow.zero_grad(set_to_none=True)
    closed, stoch = row["step_s_closed"], row["step_s_stochastic"]
    row["step_ratio_autograd_closed"] = row["step_s_autograd"] / closed
    row["step_ratio_stochastic_closed"] = stoch / closed
    row["step_ratio_autograd_stochastic"] = row["step_s_autograd_stochastic"] / stoch
    row["step_ratio_autograd_best"] = min(
        row["step_s_autograd"], row["step_s_autograd_stochastic"]
    ) / min(closed, stoch)
    row["eval_ratio_autograd_closed"] = row["eval_s_autograd"] / row["eval_s_closed"]
    return row


def bench_dim(d: int, args: argparse.Namespace, device: torch.device) -> dict:
    r"""The checks, step timings and sampling of one dimension."""
    dtype = torch.float32
    torch.manual_seed(args.seed)
    nets = block_networks(args.net, d, args.blocks, args.hidden, args.layers)
    flow = FlowNetwork(d, nets, logdet="exact").to(device, dtype)
    gen = torch.Generator().manual_seed(args.seed)
    flow.initialize(torch.randn(max(4096, args.batch), d, generator=gen).to(device, dtype))
    x = torch.randn(args.batch, d, generator=gen).to(device, dtype)
    row = dict(dim=d, batch=args.batch, params=sum(p.numel() for p in flow.parameters()))
    row.update(check_equal(flow, args.check_batch, args.seed))
    flow.train()
    with torch.no_grad(), logdet_mode(flow, "exact"):
        lp_exact = flow.log_prob(x)
    with logdet_mode(flow, "stochastic"):
        lp_stoch = flow.log_prob(x).detach()
    # the stochastic estimate of the log-density (one probe per sample) against the exact one
    row["stochastic_logprob_mean_abs_err"] = float((lp_stoch - lp_exact).abs().mean())
    row["stochastic_mean_logprob_err"] = float((lp_stoch.mean() - lp_exact.mean()).abs())
    row.update(_timings(flow, x, args, device))
    row["samples"] = args.samples
    with validation(False):
        for dt in (torch.float64, torch.float32):
            row.update(sampling(flow, args.samples, dt, device, args.sample_reps, args.seed))
    return row


# ---------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    parser = benchmark_parser(PROG, __doc__.split("\n")[0])
    parser.add_argument("--dims", default=None, help="comma-separated dimensions (2,16,64)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (256)")
    parser.add_argument("--blocks", type=int, default=None, help="flow blocks (4)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width per block (64)")
    parser.add_argument("--net", default="modular", choices=NETS, help="block network")
    parser.add_argument("--layers", type=int, default=None, help="layers/modules per block (8)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (15)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed warm-up steps (2)")
    parser.add_argument("--samples", type=int, default=None, help="samples drawn (1024)")
    parser.add_argument("--sample-reps", type=int, default=None, help="timed samplings (5)")
    parser.add_argument("--check-batch", type=int, default=8, help="batch of the float64 check")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _defaults(args: argparse.Namespace) -> None:
    if args.quick:
        defaults = dict(dims="2,8", batch=32, blocks=2, hidden=16, layers=4, reps=5, warmup=1,
                        samples=64, sample_reps=1)  # fmt: skip
    else:
        defaults = dict(dims="2,16,64", batch=256, blocks=4, hidden=64, layers=8, reps=15,
                        warmup=2, samples=1024, sample_reps=5)  # fmt: skip
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)


def _options(argv: list[str]) -> argparse.Namespace:
    r"""The options ``argv`` with the defaults filled in; sets torch's CPU threads."""
    args = build_parser().parse_args(argv)
    _defaults(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return args


def _run(args: argparse.Namespace, device: torch.device) -> dict:
    r"""The checks, step timings and sampling of every dimension of ``--dims``."""
    results = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "dtype": "float32 (timings); float64 and float32 (sampling); float64 (check)",
        "settings": {k: getattr(args, k) for k in sorted(vars(args))},
        "rows": [],
    }
    t_start = time.perf_counter()
    for d in (int(v) for v in str(args.dims).split(",")):
        t0 = time.perf_counter()
        row = bench_dim(d, args, device)
        row["bench_seconds"] = time.perf_counter() - t0
        results["rows"].append(row)
        print(
            f"d={d:3d}: step closed {row['step_s_closed']:.4f}s, stochastic "
            f"{row['step_s_stochastic']:.4f}s, autograd {row['step_s_autograd']:.4f}s "
            f"(autograd/closed {row['step_ratio_autograd_closed']:.2f}x); float64 check "
            f"|dlogp| {row['logprob_max_abs_diff_f64']:.1e} ({row['bench_seconds']:.0f}s)",
            flush=True,
        )
    results["total_seconds"] = time.perf_counter() - t_start
    return results


def _out(args: argparse.Namespace, device: torch.device) -> str:
    suffix = ("" if device.type == "cpu" else f"_{device.type}") + ("_quick" if args.quick else "")
    return f"docs/flows/flows_cost{suffix}.json"


def main(argv: Sequence[str] | None = None) -> None:
    r"""Runs the benchmark with the options ``argv`` (default: the command line)."""
    run_benchmark(PROG, argv, _options, _run, _out)


if __name__ == "__main__":
    main()
