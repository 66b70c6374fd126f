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
    from .data.toy2d import FFJORD_SETS, TOY2D

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
    b = sub.add_parser(
        "ot-bench",
        help="optimal transport map benchmarks (Gaussians, W2 benchmark, 2D toys, peers)",
        description="Fit BrenierMap on the OT benchmarks and write one JSON file per task, "
        "results.md and figures to --out.",
    )
    b.add_argument("--out", default="otgrad-ot-bench", help="output folder")
    b.add_argument(
        "--tasks",
        default="gaussian,w2bench,toy2d,losses,color",
        help="comma-separated: gaussian, w2bench, toy2d, losses, color",
    )
    b.add_argument("--gaussian-dims", default="2,4,8,16,32,64,128,256")
    b.add_argument("--w2-dims", default="2,4,8,16,32,64,128")
    b.add_argument(
        "--w2-root",
        default=os.environ.get("OTGRAD_W2BENCH", os.path.join("..", "shared", "data", "w2bench")),
        help="the W2 benchmark folder (with arrays/D{d}.npz); default $OTGRAD_W2BENCH or "
        "../shared/data/w2bench",
    )
    b.add_argument("--loss-seconds", type=_positive_float, default=120.0)
    b.add_argument("--no-peers", action="store_true", help="skip POT's estimators")
    b.add_argument(
        "--lr", type=_positive_float, default=None, help="override BrenierMap's learning rate"
    )
    b.add_argument("--steps", type=int, default=None, help="override BrenierMap's steps")
    b.add_argument("--workers", type=int, default=2, help="parallel processes")
    b.add_argument("--quick", action="store_true", help="small data and step budgets (tests)")
    sc = sub.add_parser(
        "score",
        help="score-model benchmarks: eight 2D toy sets, MALA vs ULA, likelihood speed",
        description="Train conservative GradNet score models and baselines on the FFJORD toy "
        "sets, compare MALA with unadjusted Langevin, and time the ODE likelihood with the "
        "closed-form divergence. Writes one JSON file per task, results.md and figures to --out.",
    )
    sc.add_argument("--out", default="otgrad-score", help="output folder")
    sc.add_argument(
        "--tasks", default="toy2d,mala,trace", help="comma-separated: toy2d, mala, trace"
    )
    sc.add_argument("--sets", default=",".join(FFJORD_SETS), help="comma-separated toy sets")
    sc.add_argument("--models", default="gradnet,mlp,gradmlp", help="gradnet, mlp, gradmlp")
    sc.add_argument("--steps", type=int, default=None, help="training steps (default 5000)")
    sc.add_argument("--trace-dims", default="2,16,64", help="dimensions of the speed benchmark")
    sc.add_argument("--workers", type=int, default=2, help="parallel processes")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--quick", action="store_true", help="tiny budgets (tests)")
    fl = sub.add_parser(
        "flows",
        help="convex potential flows: eight 2D toy sets against a neural spline flow, d = 16",
        description="Fit convex potential flows (strongly convex mGradNet blocks, exact "
        "log-determinants) and zuko's neural spline flow (pip install 'otgrad[bench]') on "
        "the FFJORD toy sets and a 16-dimensional Gaussian mixture. Writes one JSON file per "
        "task, results.md and figures to --out.",
    )
    fl.add_argument("--out", default="otgrad-flows", help="output folder")
    fl.add_argument("--tasks", default="toy2d,mixture", help="comma-separated: toy2d, mixture")
    fl.add_argument("--sets", default=",".join(FFJORD_SETS), help="comma-separated toy sets")
    fl.add_argument("--models", default="cpflow,nsf", help="cpflow, nsf")
    fl.add_argument("--steps", type=int, default=None, help="training steps (default 10000)")
    fl.add_argument("--blocks", type=int, default=None, help="flow blocks (default 4)")
    fl.add_argument("--net", default=None, help="block network: modular, cascade, single")
    fl.add_argument("--hidden", type=int, default=None, help="block width")
    fl.add_argument("--layers", type=int, default=None, help="modules or cascade layers")
    fl.add_argument(
        "--beta", type=_positive_float, default=None, help="softmax inverse temperature (20)"
    )
    fl.add_argument("--mixture-dim", type=int, default=16)
    fl.add_argument("--workers", type=int, default=2, help="parallel processes")
    fl.add_argument("--seed", type=int, default=0)
    fl.add_argument("--quick", action="store_true", help="tiny budgets (tests)")
    iv = sub.add_parser(
        "inverse",
        help="learned convex regularizers: train, BSD68 denoising, CT, deblurring, convergence",
        description="Train a convex regularizer (a monotone convolutional GradNet) as a t-step "
        "denoiser on BSD400 patches, tune it per task on held-out images, and compare it with "
        "TV (and FBP for CT). Without --tasks train the shipped regularizer is used. Writes "
        "one JSON file per task (and figures) to --out.",
    )
    iv.add_argument("--out", default="otgrad-inverse", help="output folder")
    iv.add_argument(
        "--tasks",
        default="denoise,ct,deblur,convergence",
        help="comma-separated: train, denoise, ct, deblur, convergence, figures (examples "
        "rebuilt from the task JSONs in --out)",
    )
    iv.add_argument("--data-dir", default=None, help="folder with bsd/ and ct/ (../shared/data)")
    iv.add_argument("--weights", default=None, help="a saved ConvexRegularizer to evaluate")
    iv.add_argument("--channels", default="1,8,32", help="channels of the multi-convolution")
    iv.add_argument("--iterations", type=int, default=6000, help="training steps")
    iv.add_argument("--t-steps", type=int, default=10, help="steps of the t-step denoiser")
    iv.add_argument("--sigma-train", type=float, default=5.0, help="training noise (0-255)")
    iv.add_argument("--sigmas", default="5,15,25", help="test noise levels (0-255)")
    iv.add_argument(
        "--methods", default="convex,tv", help="denoise task: convex (the regularizer), tv"
    )
    iv.add_argument("--time-limit", type=float, default=None, help="training time limit (s)")
    iv.add_argument("--init", default=None, help="warm-start training from a saved regularizer")
    iv.add_argument("--no-figures", action="store_true", help="JSON only")
    iv.add_argument("--device", default="cpu")
    iv.add_argument("--seed", type=int, default=0)
    iv.add_argument("--quick", action="store_true", help="tiny budgets (tests)")
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
    args.argv = list(argv) if argv is not None else sys.argv[1:]
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
    if args.command == "fields":
        return _fields(args)
    if args.command == "ot-bench":
        return _ot_bench(args)
    if args.command == "map":
        return _map(args)
    if args.command == "score":
        return _score(args)
    if args.command == "flows":
        return _flows(args)
    if args.command == "inverse":
        return _inverse(args)
    return 0


def _inverse(args: argparse.Namespace) -> int:
    from .inverse import ConvexRegularizer, Denoising, noisy_copies
    from .studies import inverse as si
    from .studies.ot_maps import save_json

    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - {"train", "denoise", "ct", "deblur", "convergence", "figures"}
    if unknown:
        raise SystemExit(f"otgrad inverse: unknown tasks {sorted(unknown)}")
    methods = [m for m in args.methods.split(",") if m]
    if not methods or set(methods) - {"convex", "tv"}:
        raise SystemExit(
            f"otgrad inverse: --methods must be convex and/or tv, got {args.methods!r}"
        )
    sigmas = [float(s) for s in args.sigmas.split(",")]
    channels = [int(c) for c in args.channels.split(",")]
    q = args.quick
    os.makedirs(args.out, exist_ok=True)
    meta = {"command": "otgrad " + " ".join(args.argv), "quick": q}
    if "train" in tasks:
        reg, rec = si.run_train(
            data_dir=args.data_dir,
            sigma=args.sigma_train,
            sigmas=sigmas,
            steps=2 if q else args.t_steps,
            iterations=4 if q else args.iterations,
            batch_size=8 if q else 128,
            channels=channels,
            val=2 if q else 40,
            train_limit=6 if q else None,
            tune_rounds=1 if q else 4,
            device=args.device,
            seed=args.seed,
            time_limit=args.time_limit,
            checkpoint=os.path.join(args.out, "crr_bsd.pt"),
            stride=None if q else 10,
            init=args.init,
        )
        reg.save(
            os.path.join(args.out, "crr_bsd.pt"), {"strengths": rec["strengths"], "training": rec}
        )
        reg = ConvexRegularizer.load(os.path.join(args.out, "crr_bsd.pt"))
        save_json({**meta, **rec}, os.path.join(args.out, "inverse_train.json"))
        print(f"trained in {rec['train_seconds']:.0f} s; validation PSNR {rec['validation_psnr']}")
    elif args.weights:
        reg = ConvexRegularizer.load(args.weights)
    else:
        reg = ConvexRegularizer.pretrained("bsd", sigma=sigmas[0])
    if "denoise" in tasks:
        r = si.run_denoise(
            {"convex_regularizer": reg} if "convex" in methods else {},
            tv="tv" in methods,
            data_dir=args.data_dir,
            sigmas=sigmas,
            val=2 if q else 40,
            limit=2 if q else None,
            device=args.device,
            max_iter=20 if q else 2000,
        )
        suffix = "" if {"convex", "tv"} <= set(methods) else "_" + "_".join(methods)
        save_json({**meta, **r}, os.path.join(args.out, f"inverse_denoise{suffix}.json"))
        for key, row in r["results"].items():
            print(
                f"sigma={key}: ours {row.get('convex_regularizer', float('nan')):.2f} dB, "
                f"TV {row.get('tv', float('nan')):.2f}, CRR-NN (published) {row['crr_nn_published']}"
            )
    if "ct" in tasks:
        r = si.run_ct(
            reg,
            data_dir=args.data_dir,
            size=32 if q else 128,
            angles=12 if q else 60,
            limit=1 if q else 5,
            max_iter=20 if q else 1000,
            tune_rounds=1,
            device=args.device,
        )
        save_json({**meta, **r}, os.path.join(args.out, "inverse_ct.json"))
        print(f"CT: FBP {r['fbp']:.2f} dB, TV {r['tv']:.2f}, ours {r['convex_regularizer']:.2f}")
    if "deblur" in tasks:
        r = si.run_deblur(
            reg,
            data_dir=args.data_dir,
            images=1 if q else 4,
            crop=32 if q else 128,
            max_iter=20 if q else 1000,
            device=args.device,
        )
        save_json({**meta, **r}, os.path.join(args.out, "inverse_deblur.json"))
        print(
            f"deblur: observed {r['observed']:.2f} dB, TV {r['tv']:.2f}, ours {r['convex_regularizer']:.2f}"
        )
    if "convergence" in tasks:
        from .data.images import load_image_set

        img, _ = load_image_set("bsd68", args.data_dir, 1)
        crop = 32 if q else 128
        x = si.to_tensors([img[0][:crop, :crop]])[0]
        reg25 = reg.set_strength(*reg.metadata["strengths"][f"{sigmas[-1]:g}"])
        y = noisy_copies([x], sigmas[-1])[0]
        r = si.run_convergence(reg25, y, Denoising(), iterations=20 if q else 300)
        save_json({**meta, **r}, os.path.join(args.out, "inverse_convergence.json"))
        print(f"two initializations: relative distance {r['two_inits_relative_distance']:.1e}")
        if not args.no_figures:
            from .plotting import plot_convergence

            plot_convergence(r, os.path.join(args.out, "inverse_convergence.png"))
    if "figures" in tasks or not args.no_figures:
        from .plotting import plot_images

        found = {}
        for task in ("denoise", "ct", "deblur"):
            path = os.path.join(args.out, f"inverse_{task}.json")
            if os.path.exists(path) and (task in tasks or "figures" in tasks):
                with open(path) as fh:
                    found[task] = json.load(fh)
        tv_path = os.path.join(args.out, "inverse_denoise_tv.json")
        if "denoise" in found and os.path.exists(tv_path):  # TV measured in a separate run
            with open(tv_path) as fh:
                tv_rows = json.load(fh)["results"]
            for key, row in found["denoise"]["results"].items():
                row.update({k: v for k, v in tv_rows.get(key, {}).items() if k.startswith("tv")})
        for task, images in si.examples(reg, found, args.data_dir).items():
            plot_images(images, os.path.join(args.out, f"inverse_{task}.png"))
    return 0


def _save_task(args: argparse.Namespace, result: dict, name: str) -> dict:
    """Stamps ``result`` with the command line and writes it as JSON to ``args.out/name``."""
    from .studies.ot_maps import save_json

    result["command"] = "otgrad " + " ".join(args.argv)
    save_json(result, os.path.join(args.out, name))
    return result


def _write_report(out: str, text: str) -> None:
    """Writes the markdown tables to ``out/results.md`` and prints them."""
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(text)
    print(text)


def _flows(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.toy2d import TOY2D
    from .flows import NETS
    from .plotting import plot_flow_densities
    from .studies import flows as sf

    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - {"toy2d", "mixture"}
    if unknown:
        raise SystemExit(f"otgrad flows: unknown tasks {sorted(unknown)}")
    sets = [s for s in args.sets.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    bad = [s for s in sets if s not in TOY2D] + [m for m in models if m not in sf.MODELS]
    if bad:
        raise SystemExit(f"otgrad flows: unknown sets or models {bad}")
    if args.net is not None and args.net not in NETS:
        raise SystemExit(f"otgrad flows: --net must be one of {NETS}, got {args.net!r}")
    if "nsf" in models:
        import importlib.util

        if importlib.util.find_spec("zuko") is None:
            raise SystemExit(
                "otgrad flows: the NSF baseline needs zuko (pip install 'otgrad[bench]'), "
                "or run --models cpflow"
            )
    for name in ("workers", "steps", "blocks", "hidden", "layers", "mixture_dim"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"otgrad flows: --{name.replace('_', '-')} must be positive")
    overrides = {
        k: getattr(args, k)
        for k in ("blocks", "net", "hidden", "layers", "beta")
        if getattr(args, k) is not None
    }
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for task in tasks:
        if task == "toy2d":
            r = sf.run_toy2d(
                sets=sets, models=models, quick=args.quick, steps=args.steps,
                cpflow=overrides, workers=args.workers, seed=args.seed,
            )  # fmt: skip
            figs: dict = {}
            for row in r["rows"]:
                f = row.pop("_fig")
                entry = figs.setdefault(row["set"], {"box": f["box"]})
                if "data" in f:
                    entry["data"] = f["data"]
                entry[row["model"]] = {k: v for k, v in f.items() if k not in ("data", "box")}
            if all("data" in f and "log_density" in f.get(models[0], {}) for f in figs.values()):
                plot_flow_densities(figs, os.path.join(args.out, "flows_toy2d.png"))
            np.savez_compressed(
                os.path.join(args.out, "flows_figure_data.npz"),
                **{
                    f"{s}/{k}" + (f"/{kk}" if isinstance(v, dict) else ""): np.asarray(vv)
                    for s, f in figs.items()
                    for k, v in f.items()
                    for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)])
                },
            )
        else:
            r = sf.run_mixture(
                dim=args.mixture_dim, models=models, steps=args.steps, quick=args.quick,
                cpflow=overrides, workers=args.workers, seed=args.seed,
            )  # fmt: skip
        results[task] = _save_task(args, r, f"flows_{task}.json")
    _write_report(args.out, sf.report(results))
    return 0


def _score(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.toy2d import TOY2D
    from .plotting import plot_score_densities, plot_score_fields, plot_score_samples
    from .studies import score as ss

    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - {"toy2d", "mala", "trace"}
    if unknown:
        raise SystemExit(f"otgrad score: unknown tasks {sorted(unknown)}")
    sets = [s for s in args.sets.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    bad = [s for s in sets if s not in TOY2D] + [m for m in models if m not in ss.MODELS]
    if bad:
        raise SystemExit(f"otgrad score: unknown sets or models {bad}")
    if args.workers < 1 or (args.steps is not None and args.steps < 1):
        raise SystemExit("otgrad score: --workers and --steps must be positive")
    dims = [int(d) for d in args.trace_dims.split(",") if d]
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for task in tasks:
        if task == "toy2d":
            r = ss.run_toy2d(
                sets=sets,
                models=models,
                quick=args.quick,
                steps=args.steps,
                workers=args.workers,
                seed=args.seed,
            )
            figs = {}
            for row in r["rows"]:
                f = row.pop("_fig")
                entry = figs.setdefault(row["set"], {})
                entry[row["model"]] = f.pop("samples")
                entry.update(f)
            samples = {
                s: {k: v for k, v in f.items() if k == "data" or k in models}
                for s, f in figs.items()
            }
            plot_score_samples(samples, os.path.join(args.out, "score_samples.png"))
            dens = {s: f for s, f in figs.items() if "log_density" in f}
            if dens:
                plot_score_densities(dens, os.path.join(args.out, "score_densities.png"))
                keep = [s for s in ("8gaussians", "checkerboard", "2spirals") if s in dens]
                plot_score_fields(
                    {s: dens[s] for s in keep[:2] or list(dens)[:1]},
                    os.path.join(args.out, "score_fields.png"),
                )
            np.savez_compressed(
                os.path.join(args.out, "score_figure_data.npz"),
                **{f"{s}/{k}": np.asarray(v) for s, f in figs.items() for k, v in f.items()},
            )
        elif task == "mala":
            r = ss.run_mala(quick=args.quick, steps=args.steps or 5000, seed=args.seed)
        else:
            r = ss.run_trace_speed(dims=dims, quick=args.quick, seed=args.seed)
        results[task] = _save_task(args, r, f"score_{task}.json")
    _write_report(args.out, ss.report(results))
    return 0


def _ot_bench(args: argparse.Namespace) -> int:
    from .studies import ot_maps as om

    tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(tasks) - {"gaussian", "w2bench", "toy2d", "losses", "color"}
    if unknown:
        raise SystemExit(f"otgrad ot-bench: unknown tasks {sorted(unknown)}")
    if args.workers < 1:
        raise SystemExit("otgrad ot-bench: --workers must be positive")
    gdims = [int(d) for d in args.gaussian_dims.split(",") if d]
    wdims = [int(d) for d in args.w2_dims.split(",") if d]
    if args.quick:
        gdims, wdims = [d for d in gdims if d <= 4][:2] or [2], [d for d in wdims if d <= 4][:1]
    extra = {k: getattr(args, k) for k in ("lr", "steps") if getattr(args, k) is not None}
    if extra.get("steps", 1) < 1:
        raise SystemExit("otgrad ot-bench: --steps must be positive")
    root = args.w2_root if os.path.isdir(os.path.join(args.w2_root, "arrays")) else None
    os.makedirs(args.out, exist_ok=True)
    results = {}
    peers = not args.no_peers
    for task in tasks:
        if task == "gaussian":
            r = om.run_gaussian(
                gdims, quick=args.quick, peers=peers, workers=args.workers, brenier=extra
            )
        elif task == "w2bench":
            if root is None:
                print(f"w2bench: no data at {args.w2_root!r} (set --w2-root); skipped")
                continue
            r = om.run_w2bench(root, wdims, quick=args.quick, workers=args.workers, brenier=extra)
        elif task == "toy2d":
            pairs = om.TOY_PAIRS[:1] if args.quick else om.TOY_PAIRS
            r = om.run_toy2d(
                args.out, pairs=pairs, quick=args.quick, peers=peers, workers=args.workers
            )
        elif task == "losses":
            r = om.run_losses(
                root, quick=args.quick, seconds=args.loss_seconds, workers=args.workers
            )
        else:
            r = om.run_color_transfer(args.out, quick=args.quick)
        results[task] = _save_task(args, r, f"ot_{task}.json")
    _write_report(args.out, om.report(results))
    print(json.dumps({k: v for k, v in results.get("color", {}).items()}, indent=1))
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
