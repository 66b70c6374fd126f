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
    source: str = "gaussian",
    target: str = "8gaussians",
    steps: int = 1000,
    samples: int = 10_000,
    out: str = "otgrad-demo",
    seed: int = 0,
    device: str | None = None,
) -> dict:
    r"""Fits the optimal transport map between two built-in 2D distributions, end to end.

    Draws ``samples`` points of each, fits :class:`~otgrad.ot.BrenierMap` (an mGradNet,
    convex by construction, so the fitted map is the Brenier map once it pushes the source
    onto the target), measures :math:`W_2(T_\#\mu, \nu)` on 1000 fresh points against
    :math:`W_2(\mu, \nu)` and the sampling level :math:`W_2(\nu, \nu')`, and saves a
    figure (samples, displacement interpolation over the potential, pushed samples).

    Returns:
        The results (also written to ``out/results.json``).
    """
    from .data.toy2d import sample_toy2d
    from .ot import BrenierMap, GaussianMap, transport_cost, wasserstein2
    from .plotting import plot_transport

    X, Y = sample_toy2d(source, samples, seed), sample_toy2d(target, samples, seed + 1)
    est = BrenierMap(steps=steps, seed=seed, device=device).fit(X, Y)
    Xt, Yt = sample_toy2d(source, 1000, seed + 2), sample_toy2d(target, 1000, seed + 3)
    TX = est.transform(Xt)
    results = {
        "pair": f"{source} -> {target}",
        "samples": samples,
        "steps": est.history_.steps,
        "seconds": round(est.fit_seconds_, 2),
        "w2_mapped": wasserstein2(TX, Yt),
        "w2_linear": wasserstein2(GaussianMap().fit(X, Y).transform(Xt), Yt),
        "w2_source": wasserstein2(Xt, Yt),
        "w2_floor": wasserstein2(sample_toy2d(target, 1000, seed + 4), Yt),
        "transport_cost": transport_cost(Xt, TX),
        "dual_w2_squared": est.score(Xt, Yt),
    }
    os.makedirs(out, exist_ok=True)
    fig = os.path.join(out, "demo.png")
    plot_transport(
        est, Xt, Yt, fig, title=f"{source} → {target}: W2(T#μ, ν) = {results['w2_mapped']:.3f}"
    )
    results["figure"] = fig
    est.save(os.path.join(out, "map.pt"))
    results["map"] = os.path.join(out, "map.pt")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results


def field_demo(
    seconds: float | None = 5.0,
    model: str = "mgradnet-c",
    epochs: int = 10_000,
    out: str = "otgrad-field-demo",
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
    from .data.toy2d import TOY2D

    d = sub.add_parser(
        "demo",
        help="fit an optimal transport map between two 2D distributions (end to end)",
        description=demo.__doc__.split("\n")[0] if demo.__doc__ else None,
    )
    d.add_argument("--source", choices=sorted(TOY2D), default="gaussian")
    d.add_argument("--target", choices=sorted(TOY2D), default="8gaussians")
    d.add_argument("--steps", type=int, default=1000)
    d.add_argument("--samples", type=int, default=10_000)
    d.add_argument("--out", default="otgrad-demo", help="output folder (figure, results, map)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default=None)
    d.add_argument("--quick", action="store_true", help="100 steps on 2000 samples (tests)")
    p = sub.add_parser(
        "field-demo",
        help="fit an mGradNet to the paper's convex gradient field for a few seconds",
        description=field_demo.__doc__.split("\n")[0] if field_demo.__doc__ else None,
    )
    p.add_argument("--seconds", type=_positive_float, default=5.0, help="training budget")
    p.add_argument("--epochs", type=int, default=10_000, help="epoch limit (the paper trains 200)")
    p.add_argument("--model", choices=["mgradnet-c", "mgradnet-m"], default="mgradnet-c")
    p.add_argument("--out", default="otgrad-field-demo", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="10 epochs, no time budget (for tests)")
    mp = sub.add_parser(
        "map",
        help="fit a transport map between two sample files, or apply a saved one",
        description="Fit the optimal transport map from SOURCE to TARGET (.npy or .csv, "
        "n x d) and save it, or apply a saved map to new points. Data-parallel on several "
        "processes or GPUs with: torchrun --nproc_per_node=N -m otgrad.cli map ...",
    )
    mp.add_argument("source", nargs="?", help="source samples (.npy or .csv)")
    mp.add_argument("target", nargs="?", help="target samples (.npy or .csv)")
    mp.add_argument("--out", default=None, help="where to save the fitted map (.pt)")
    mp.add_argument("--load", default=None, help="a map saved by --out")
    mp.add_argument("--apply", default=None, help="points to transport with --load")
    mp.add_argument("--output", default=None, help="where to write the transported points")
    mp.add_argument("--steps", type=int, default=2000)
    mp.add_argument(
        "--batch-size", type=int, default=1024, help="the global batch (split over processes)"
    )
    mp.add_argument("--compile", action="store_true", help="torch.compile the training step")
    mp.add_argument("--seed", type=int, default=0)
    mp.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        if args.steps < 1 or args.samples < 2:
            raise SystemExit("otgrad demo: --steps must be positive and --samples at least 2")
        r = demo(
            args.source,
            args.target,
            steps=100 if args.quick else args.steps,
            samples=2000 if args.quick else args.samples,
            out=args.out,
            seed=args.seed,
            device=args.device,
        )
        print(
            f"{r['pair']}: BrenierMap fitted in {r['seconds']:.1f} s ({r['steps']} steps)\n"
            f"W2(T#source, target) = {r['w2_mapped']:.3f}  (linear map {r['w2_linear']:.3f}, "
            f"identity {r['w2_source']:.3f}, two target samples {r['w2_floor']:.3f})\n"
            f"transport cost E|x - T(x)|^2 = {r['transport_cost']:.3f}; dual W2^2 bound "
            f"{r['dual_w2_squared']:.3f}\n"
            f"figure: {r['figure']}; map: {r['map']} (otgrad map --load {r['map']} --apply X.npy)"
        )
    if args.command == "field-demo":
        r = field_demo(
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
    if args.command == "map":
        return _map(args)
    return 0


def _read_points(path: str, name: str):
    import numpy as np

    if not os.path.exists(path):
        raise SystemExit(f"otgrad map: {name} file {path!r} does not exist")
    try:
        if path.endswith(".npy"):
            arr = np.load(path, allow_pickle=False)
        elif path.endswith(".csv"):
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            raise SystemExit(f"otgrad map: {name} must be a .npy or .csv file, got {path!r}")
    except ValueError as e:
        raise SystemExit(f"otgrad map: cannot read {name} {path!r}: {e}") from e
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.float64)
    return arr


def _map(args: argparse.Namespace) -> int:
    import numpy as np

    from .ot import BrenierMap, GaussianMap, transport_cost, wasserstein2

    if args.load:
        if args.apply is None:
            raise SystemExit("otgrad map: --load needs --apply POINTS")
        try:
            est = BrenierMap.load(args.load)
            out = est.transform(_read_points(args.apply, "--apply"))
        except ValueError as e:
            raise SystemExit(f"otgrad map: {e}") from e
        dest = args.output or os.path.splitext(args.apply)[0] + "_mapped.npy"
        np.save(dest, out)
        print(f"transported {len(out)} points with {args.load}: {dest}")
        return 0
    if args.source is None or args.target is None:
        raise SystemExit("otgrad map: give SOURCE and TARGET files (or --load and --apply)")
    from .train import init_distributed, is_main_process

    X, Y = _read_points(args.source, "SOURCE"), _read_points(args.target, "TARGET")
    init_distributed()  # under torchrun: data-parallel fit, rank 0 reports and saves
    try:
        est = BrenierMap(
            steps=args.steps,
            batch_size=args.batch_size,
            seed=args.seed,
            device=args.device,
            compile=args.compile,
        ).fit(X, Y)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"otgrad map: {e}") from e
    if not is_main_process():
        return 0
    TX = est.transform(X)
    k = min(2000, len(X), len(Y))
    rng = np.random.default_rng(0)
    xs, ys = X[rng.choice(len(X), k, replace=False)], Y[rng.choice(len(Y), k, replace=False)]
    print(
        f"fitted in {est.fit_seconds_:.1f} s ({est.history_.steps} steps, d = {X.shape[1]})\n"
        f"transport cost E|x - T(x)|^2: {transport_cost(X, TX):.4g}\n"
        f"fit quality on {k} points: W2(T#source, target) = {wasserstein2(est.transform(xs), ys):.4g}"
        f" (identity: {wasserstein2(xs, ys):.4g}; linear map: "
        f"{wasserstein2(GaussianMap().fit(X, Y).transform(xs), ys):.4g})\n"
        f"dual W2^2 lower bound: {est.score(xs, ys):.4g}"
    )
    if args.out:
        est.save(args.out)
        print(f"saved: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
