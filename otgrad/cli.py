r"""The ``otgrad`` command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence

import torch

__all__ = ["main", "demo"]


_PAPER_RMSE_DB = {"mgradnet-c": -24.08, "mgradnet-m": -23.57}  # Table 1, mean of 5 seeds


def _positive_float(text: str) -> float:
    v = float(text)
    if not (v > 0) or not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return v


def demo(
    seconds: float | None = 5.0,
    model: str = "mgradnet-c",
    epochs: int = 10_000,
    out: str = "otgrad-demo",
    seed: int = 0,
    device: str = "cpu",
) -> dict:
    r"""Fits an mGradNet to the paper's convex gradient field (eq. 47) for ``seconds`` seconds.

    Uses the paper's protocol (100k uniform training points on the unit square, MSE loss,
    Adam with learning rate 0.005, batch 1000, best-validation weights) until the time
    budget (``seconds``) or ``epochs`` runs out, then reports the test error on the
    100 × 100 grid in dB and saves a figure.

    Returns:
        The results (also written to ``out/results.json``).
    """
    from .data.fields import ConvexField, unit_grid
    from .nn import GradNetC, GradNetM
    from .plotting import plot_field_fit
    from .train import fit

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    field = ConvexField()
    x, y = field.sample(100_000, generator=gen)
    xv, yv = field.sample(10_000, generator=gen)
    x, y, xv, yv = (t.to(device) for t in (x, y, xv, yv))
    if model == "mgradnet-c":
        net = GradNetC(2, 7, layers=4, activation="tanh")
    elif model == "mgradnet-m":
        net = GradNetM(2, 7, modules=4, activation="softmax")
    else:
        raise ValueError(f"model must be 'mgradnet-c' or 'mgradnet-m', got {model!r}")
    net = net.to(device)

    def mse(m, xb, yb):
        return ((m(xb) - yb) ** 2).sum(-1).mean()

    hist = fit(
        net,
        mse,
        (x, y),
        epochs=epochs,
        batch_size=1000,
        lr=0.005,
        val_data=(xv, yv),
        seed=seed,
        time_limit=seconds,
    )
    grid = unit_grid(100).to(device)
    with torch.no_grad():
        test = float(((net(grid) - field.gradient(grid)) ** 2).sum(-1).mean())
    os.makedirs(out, exist_ok=True)
    fig = os.path.join(out, "demo.png")
    plot_field_fit(net, field, fig, title=f"{model}: test MSE {10 * math.log10(test):.2f} dB")
    results = {
        "model": model,
        "parameters": sum(p.numel() for p in net.parameters()),
        "epochs": len(hist.train_loss),
        "steps": hist.steps,
        "seconds": round(hist.seconds, 2),
        "test_mse": test,
        "test_mse_db": 10 * math.log10(test),
        "paper_rmse_db": 5 * math.log10(test),
        "monotone": net.monotone,
        "figure": fig,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="otgrad",
        description="Gradient networks for optimal transport and generative modeling.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "demo",
        help="fit an mGradNet to the paper's convex gradient field for a few seconds",
        description=demo.__doc__.split("\n")[0] if demo.__doc__ else None,
    )
    p.add_argument("--seconds", type=_positive_float, default=5.0, help="training budget")
    p.add_argument("--epochs", type=int, default=10_000, help="epoch limit (the paper trains 200)")
    p.add_argument("--model", choices=["mgradnet-c", "mgradnet-m"], default="mgradnet-c")
    p.add_argument("--out", default="otgrad-demo", help="output folder (figure, results.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="10 epochs, no time budget (for tests)")
    f = sub.add_parser(
        "fields",
        help="the paper's gradient-field study (Tables 1-2) and the PolyMax study",
        description="Learn the paper's convex and nonconvex gradient fields with GradNets and "
        "baselines (paper protocol and an improved one), and the PolyMax field in higher "
        "dimension. Writes tables.json, polymax.json, results.md and figures to --out.",
    )
    f.add_argument("--out", default="otgrad-fields", help="output folder")
    f.add_argument("--trials", type=int, default=5, help="seeds per model (paper: 5)")
    f.add_argument("--epochs", type=int, default=200, help="epochs (paper: 200)")
    f.add_argument(
        "--protocols", default="paper,improved", help="comma-separated: paper, improved"
    )
    f.add_argument(
        "--refine-iterations", type=int, default=500, help="L-BFGS iterations (improved)"
    )
    f.add_argument(
        "--init-from",
        default=None,
        help="weights_paper.pt of an earlier paper-protocol run: the improved protocol "
        "then only runs its L-BFGS phase",
    )
    f.add_argument("--polymax-dims", default="2,32,256", help="PolyMax dimensions ('' to skip)")
    f.add_argument("--polymax-iterations", type=int, default=10_000)
    f.add_argument("--skip-tables", action="store_true", help="only the PolyMax study")
    f.add_argument("--workers", type=int, default=2, help="parallel processes")
    f.add_argument("--device", default="cpu")
    f.add_argument(
        "--quick",
        action="store_true",
        help="one seed, 5 epochs, 20 L-BFGS iterations, PolyMax at d = 2, 8 for 300 steps",
    )
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        r = demo(
            seconds=None if args.quick else args.seconds,
            epochs=10 if args.quick else args.epochs,
            model=args.model,
            out=args.out,
            seed=args.seed,
            device=args.device,
        )
        print(
            f"{r['model']} ({r['parameters']} parameters, monotone={r['monotone']}): "
            f"{r['epochs']} epochs in {r['seconds']:.1f} s\n"
            f"test MSE on the 100x100 grid: {r['test_mse_db']:.2f} dB "
            f"(the paper's 'RMSE dB' = {r['paper_rmse_db']:.2f}; the paper's Table 1 after 200 "
            f"epochs: {_PAPER_RMSE_DB[r['model']]:.2f})\n"
            f"figure: {r['figure']}"
        )
    if args.command == "fields":
        return _fields(args)
    return 0


def _fields(args: argparse.Namespace) -> int:
    from .studies import gradient_fields as gf

    if args.quick:
        args.trials, args.epochs, args.refine_iterations = 1, 5, 20
        args.polymax_dims, args.polymax_iterations = "2,8", 300
    for name in ("trials", "epochs", "workers", "refine_iterations", "polymax_iterations"):
        if getattr(args, name) < 1:
            raise SystemExit(f"otgrad fields: --{name.replace('_', '-')} must be positive")
    protocols = [p for p in args.protocols.split(",") if p]
    tables = None
    if not args.skip_tables:
        tables = gf.run_tables(
            args.out,
            trials=args.trials,
            epochs=args.epochs,
            protocols=protocols,
            refine_iterations=args.refine_iterations,
            workers=args.workers,
            device=args.device,
            init_from=args.init_from,
        )
    dims = [int(d) for d in args.polymax_dims.split(",") if d]
    polymax = None
    if dims:
        lrs = (1e-2, 1e-3) if args.quick else (1e-2, 1e-3, 1e-4)
        polymax = gf.run_polymax(
            args.out,
            dims=dims,
            iterations=args.polymax_iterations,
            lrs=lrs,
            workers=args.workers,
            device=args.device,
        )
    text = gf.report(tables, polymax)
    with open(os.path.join(args.out, "results.md"), "w") as fh:
        fh.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
