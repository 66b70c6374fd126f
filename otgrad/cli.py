r"""The ``otgrad`` command: the tools a user runs on their own data.

Each command is one small function registered in :data:`COMMANDS` with its options; the
options several commands share are declared once in :data:`SHARED`. Output paths are
checked before any work starts, so a long fit never ends in a failed save. The studies
that reproduce the project's benchmarks are not commands: they run from a source checkout
as ``python -m applications.<name>`` (listed by ``otgrad --help``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["main", "build_parser", "COMMANDS", "SHARED", "Command", "read_points", "write_points"]


@dataclass(frozen=True)
class Command:
    r"""A subcommand: its help line, its own options, the shared ones it takes, and the
    function that runs it (``args -> exit status``)."""

    help: str
    run: Callable[[argparse.Namespace], int]
    options: Callable[[argparse.ArgumentParser], None]
    shared: tuple[str, ...] = ()
    description: str = field(default="")


def _positive(kind: type) -> Callable[[str], Any]:
    r"""An argparse type: a positive finite ``int`` or ``float``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
        return value

    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**63), got {text}")
    return value


#: Options shared by several commands: name -> (flags, argparse keywords).
SHARED: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "seed": (("--seed",), dict(type=_seed, default=0, help="random seed (default 0)")),
    "device": (
        ("--device",),
        dict(default=None, help="cpu, cuda or cuda:N (default: a GPU if available)"),
    ),
    "steps": (("--steps",), dict(type=_positive(int), default=None, help="training steps")),
    "quick": (("--quick",), dict(action="store_true", help="a tiny budget (for tests)")),
    "load": (("--load",), dict(default=None, help="a model saved by --out")),
    "output": (
        ("--output",),
        dict(default=None, help="where to write the result (.npy or .csv)"),
    ),
}


# ---------------------------------------------------------------------- files
def _fail(command: str, message: Any) -> SystemExit:
    return SystemExit(f"otgrad {command}: {message}")


def read_points(path: str, name: str, command: str) -> Any:
    r"""Reads a 2-D array (``(n, d)`` points, an image, a mask) from a ``.npy`` or ``.csv``
    file (integers and booleans become float64)."""
    import numpy as np

    if not os.path.isfile(path):
        raise _fail(command, f"{name} file {path!r} does not exist")
    try:
        if path.endswith(".npy"):
            arr = np.load(path, allow_pickle=False)
        elif path.endswith(".csv"):
            arr = np.loadtxt(path, delimiter=",", ndmin=2)
        else:
            raise _fail(command, f"{name} must be a .npy or .csv file, got {path!r}")
    except ValueError as e:
        raise _fail(command, f"cannot read {name} {path!r}: {e}") from e
    if arr.ndim != 2:
        raise _fail(command, f"{name} must hold a 2-D array, got shape {arr.shape}")
    return arr.astype(np.float64) if arr.dtype.kind in "iub" else arr


def _check_output(path: str | None, command: str, suffixes: tuple[str, ...]) -> None:
    if path is None:
        return
    from ._validation import check_output_path

    if not path.endswith(suffixes):
        raise _fail(command, f"{path!r} must end in one of {suffixes}")
    try:
        check_output_path(path)
    except (TypeError, ValueError) as e:
        raise _fail(command, e) from None


def write_points(path: str, values: Any) -> None:
    r"""Writes an array to ``path`` as ``.npy`` or ``.csv`` (exactly that file name)."""
    import numpy as np

    if path.endswith(".csv"):
        np.savetxt(path, np.asarray(values), delimiter=",")
    else:
        with open(path, "wb") as fh:  # np.save(path) would append ".npy" to other names
            np.save(fh, np.asarray(values))


def _load(cls: Any, path: str, command: str) -> Any:
    if not os.path.isfile(path):
        raise _fail(command, f"--load file {path!r} does not exist")
    try:
        return cls.load(path)
    except ValueError as e:
        raise _fail(command, e) from e


# ---------------------------------------------------------------------- demo, field-demo
def _demo_options(p: argparse.ArgumentParser) -> None:
    from .data.toy2d import TOY2D

    p.add_argument("--source", choices=sorted(TOY2D), default="gaussian")
    p.add_argument("--target", choices=sorted(TOY2D), default="8gaussians")
    p.add_argument("--samples", type=_positive(int), default=10_000)
    p.add_argument("--out", default="otgrad-demo", help="output folder (figure, results, map)")


def _demo(args: argparse.Namespace) -> int:
    from .demos import demo

    quick = args.quick
    r = demo(
        args.source, args.target, steps=100 if quick else (args.steps or 1000),
        samples=2000 if quick else args.samples, out=args.out, seed=args.seed, device=args.device,
    )  # fmt: skip
    print(
        f"{r['pair']}: BrenierMap fitted in {r['seconds']:.1f} s ({r['steps']} steps)\n"
        f"W2(T#source, target) = {r['w2_mapped']:.3f}  (linear map {r['w2_linear']:.3f}, "
        f"identity {r['w2_source']:.3f}, two target samples {r['w2_floor']:.3f})\n"
        f"transport cost E|x - T(x)|^2 = {r['transport_cost']:.3f}; dual W2^2 bound "
        f"{r['dual_w2_squared']:.3f}\n"
        f"figure: {r['figure']}; map: {r['map']} (otgrad map --load {r['map']} --apply X.npy)"
    )
    return 0


def _field_demo_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=_positive(float), default=5.0, help="training budget")
    p.add_argument("--epochs", type=_positive(int), default=10_000, help="epoch limit")
    p.add_argument("--model", choices=["mgradnet-c", "mgradnet-m"], default="mgradnet-c")
    p.add_argument("--out", default="otgrad-field-demo", help="output folder")


def _field_demo(args: argparse.Namespace) -> int:
    from .demos import field_demo

    r = field_demo(
        seconds=None if args.quick else args.seconds, epochs=10 if args.quick else args.epochs,
        model=args.model, out=args.out, seed=args.seed, device=args.device or "cpu",
    )  # fmt: skip
    print(
        f"{r['model']} ({r['parameters']} parameters, monotone={r['monotone']}): "
        f"{r['epochs']} epochs in {r['seconds']:.1f} s\n"
        f"test MSE on the 100x100 grid: {r['test_mse_db']:.2f} dB (the paper's 'RMSE dB' = "
        f"{r['paper_rmse_db']:.2f}; its Table 1 after 200 epochs: "
        f"{r['paper_table1_rmse_db']:.2f})\nfigure: {r['figure']}"
    )
    return 0


# ---------------------------------------------------------------------- map
def _map_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="source samples (.npy or .csv, n x d)")
    p.add_argument("target", nargs="?", help="target samples (.npy or .csv, m x d)")
    p.add_argument("--out", default=None, help="where to save the fitted map (.pt)")
    p.add_argument("--apply", default=None, help="points to transport with --load")
    p.add_argument("--batch-size", type=_positive(int), default=1024, help="the global batch")
    p.add_argument("--compile", action="store_true", help="torch.compile the training step")


def _map(args: argparse.Namespace) -> int:
    from .ot import BrenierMap

    if args.load:
        if args.apply is None:
            raise _fail("map", "--load needs --apply POINTS")
        dest = args.output or os.path.splitext(args.apply)[0] + "_mapped.npy"
        _check_output(dest, "map", (".npy", ".csv"))
        est = _load(BrenierMap, args.load, "map")
        out = _guard("map", lambda: est.transform(read_points(args.apply, "--apply", "map")))
        write_points(dest, out)
        print(f"transported {len(out)} points with {args.load}: {dest}")
        return 0
    if args.source is None or args.target is None:
        raise _fail("map", "give SOURCE and TARGET files (or --load and --apply)")
    _check_output(args.out, "map", (".pt",))
    _check_output(args.output, "map", (".npy", ".csv"))  # the transported source points
    X, Y = read_points(args.source, "SOURCE", "map"), read_points(args.target, "TARGET", "map")
    from .train import init_distributed, is_main_process

    init_distributed()  # under torchrun: data-parallel fit, rank 0 reports and saves
    est = _guard("map", lambda: BrenierMap(
        steps=args.steps or 2000, batch_size=args.batch_size, seed=args.seed,
        device=args.device, compile=args.compile,
    ).fit(X, Y))  # fmt: skip
    if is_main_process():
        _report_map(est, X, Y)
        _save(est, args.out)
        if args.output:
            write_points(args.output, est.transform(X))
            print(f"transported source points: {args.output}")
    return 0


def _report_map(est: Any, X: Any, Y: Any) -> None:
    import numpy as np

    from .ot import GaussianMap, transport_cost, wasserstein2

    k = min(2000, len(X), len(Y))
    rng = np.random.default_rng(0)
    xs, ys = X[rng.choice(len(X), k, replace=False)], Y[rng.choice(len(Y), k, replace=False)]
    linear = GaussianMap().fit(X, Y).transform(xs)
    print(
        f"fitted in {est.fit_seconds_:.1f} s ({est.history_.steps} steps, d = {X.shape[1]})\n"
        f"transport cost E|x - T(x)|^2: {transport_cost(X, est.transform(X)):.4g}\n"
        f"fit quality on {k} points: W2(T#source, target) = "
        f"{wasserstein2(est.transform(xs), ys):.4g} (identity: {wasserstein2(xs, ys):.4g}; "
        f"linear map: {wasserstein2(linear, ys):.4g})\n"
        f"dual W2^2 lower bound: {est.score(xs, ys):.4g}"
    )


def _guard(command: str, work: Callable[[], Any]) -> Any:
    r"""Runs ``work``, turning the library's ``TypeError``, ``ValueError`` and
    ``FloatingPointError`` (a diverged fit) into a clean exit."""
    try:
        return work()
    except (TypeError, ValueError, FloatingPointError) as e:
        raise _fail(command, e) from e


def _save(est: Any, path: str | None) -> None:
    if path:
        est.save(path)
        print(f"saved: {path}")


# ---------------------------------------------------------------------- score, flow
def _density_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", help="samples to fit (.npy or .csv, n x d)")
    p.add_argument("--out", default=None, help="where to save the fitted model (.pt)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--sample", type=_positive(int), default=None, help="draw this many samples")
    what.add_argument("--log-prob", default=None, help="points whose log-density to write")


def _score_options(p: argparse.ArgumentParser) -> None:
    _density_options(p)
    p.add_argument(
        "--method", choices=["sde", "pc", "ode", "langevin", "mala"], default="sde",
        help="the sampler (mala: Metropolis-adjusted, with the model's energy)",
    )  # fmt: skip


def _density(
    args: argparse.Namespace, name: str, cls: type, make: Callable[[Any], Any], sample: Callable
) -> int:
    r"""Fits a density model to ``args.data`` (or loads ``--load``), then samples it or
    evaluates its log-density as asked."""
    if (args.data is None) == (args.load is None):
        raise _fail(name, "give DATA to fit, or --load MODEL (not both)")
    if args.load and args.sample is None and args.log_prob is None:
        raise _fail(name, "with --load, ask for --sample N or --log-prob POINTS")
    _check_output(args.out, name, (".pt",))
    dest = args.output or f"otgrad-{name}-{'samples' if args.sample else 'log-prob'}.npy"
    _check_output(dest if (args.sample or args.log_prob) else None, name, (".npy", ".csv"))
    if args.load:
        est = _load(cls, args.load, name)
    else:
        X = read_points(args.data, "DATA", name)
        est = _guard(name, lambda: make(X).fit(X))
        print(f"fitted in {est.fit_seconds_:.1f} s ({est.history_.steps} steps, d = {X.shape[1]})")
        _save(est, args.out)
    if args.sample:
        write_points(dest, _guard(name, lambda: sample(est, args.sample, args.seed)))
        print(f"{args.sample} samples: {dest}")
    if args.log_prob:
        points = read_points(args.log_prob, "--log-prob", name)
        write_points(dest, _guard(name, lambda: est.log_prob(points)))
        print(f"log-densities of {len(points)} points: {dest}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from .score import ScoreModel

    def make(X: Any) -> Any:
        steps = {"steps": 50} if args.quick else ({"steps": args.steps} if args.steps else {})
        return ScoreModel(**steps, seed=args.seed, device=args.device)

    def sample(est: Any, n: int, seed: int) -> Any:
        return est.sample(n, method=args.method, steps=20 if args.quick else 500, seed=seed)

    return _density(args, "score", ScoreModel, make, sample)


def _flow_options(p: argparse.ArgumentParser) -> None:
    _density_options(p)
    p.add_argument("--blocks", type=_positive(int), default=4, help="flow blocks")


def _flow(args: argparse.Namespace) -> int:
    from .flows import ConvexPotentialFlow

    def make(X: Any) -> Any:
        steps = 50 if args.quick else (args.steps or 5000)
        return ConvexPotentialFlow(
            X.shape[1], blocks=args.blocks, steps=steps, seed=args.seed, device=args.device
        )

    def sample(est: Any, n: int, seed: int) -> Any:
        return est.sample(n, seed=seed).cpu().numpy()

    return _density(args, "flow", ConvexPotentialFlow, make, sample)


# ---------------------------------------------------------------------- reconstruct
def _reconstruct_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the observed image: .npy/.csv (2-D array) or .png, in [0, 1]")
    p.add_argument("--task", choices=["denoise", "deblur", "inpaint"], default="denoise")
    p.add_argument("--sigma", type=float, default=15.0, help="noise level (0-255): 5, 15, 25")
    p.add_argument("--blur", type=_positive(float), default=1.0, help="Gaussian blur width")
    p.add_argument("--mask", default=None, help="inpainting: a .npy mask (1 = observed)")
    p.add_argument("--max-iter", type=_positive(int), default=1000, help="solver iterations")


def _reconstruct(args: argparse.Namespace) -> int:
    import torch

    from .inverse import Blur, ConvexRegularizer, Denoising, Inpainting, reconstruct

    dest = args.output or os.path.splitext(args.image)[0] + "_reconstructed.npy"
    _check_output(dest, "reconstruct", (".npy", ".png"))
    y = torch.as_tensor(_read_image(args.image), dtype=torch.float32)[None, None]
    if not bool(torch.isfinite(y).all()):
        raise _fail("reconstruct", "IMAGE contains NaN or infinite values")
    if not (y.min() >= -1 and y.max() <= 2):  # noisy images stray a little outside [0, 1]
        raise _fail(
            "reconstruct", f"IMAGE has values in [{float(y.min()):.4g}, {float(y.max()):.4g}]; "
            "it must be in [0, 1] (divide an 8-bit image by 255)",
        )  # fmt: skip
    if args.load:
        reg = _load(ConvexRegularizer, args.load, "reconstruct")
        _guard("reconstruct", lambda: reg.use_strength(args.sigma))
    else:
        reg = _guard("reconstruct", lambda: ConvexRegularizer.pretrained("bsd", args.sigma))
    if args.task == "denoise":
        op = Denoising()
    elif args.task == "deblur":
        op = Blur(tuple(y.shape[-2:]), sigma=args.blur)
    else:
        if args.mask is None:
            raise _fail("reconstruct", "--task inpaint needs --mask MASK.npy")
        mask = read_points(args.mask, "--mask", "reconstruct")
        if mask.shape != tuple(y.shape[-2:]):
            raise _fail(
                "reconstruct", f"--mask has shape {mask.shape}, IMAGE {tuple(y.shape[-2:])}"
            )
        op = _guard("reconstruct", lambda: Inpainting(torch.as_tensor(mask > 0.5)))
    out = _guard("reconstruct", lambda: reconstruct(y, op, reg, max_iter=args.max_iter))
    image = out.x[0, 0].clamp(0, 1).numpy()
    _write_image(dest, image)
    print(f"{args.task}: {out.iterations} iterations (converged: {out.converged}): {dest}")
    return 0


def _read_image(path: str) -> Any:
    if not path.endswith(".png"):
        return read_points(path, "IMAGE", "reconstruct")
    if not os.path.isfile(path):
        raise _fail("reconstruct", f"IMAGE file {path!r} does not exist")
    import matplotlib.image

    img = matplotlib.image.imread(path)
    return img if img.ndim == 2 else img[..., :3].mean(-1)


def _write_image(path: str, image: Any) -> None:
    if path.endswith(".png"):
        import matplotlib.image

        matplotlib.image.imsave(path, image, cmap="gray", vmin=0, vmax=1)
    else:
        write_points(path, image)


#: The subcommands, in the order ``otgrad --help`` lists them.
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "fit an optimal transport map between two built-in 2D distributions (end to end)",
        _demo, _demo_options, ("steps", "seed", "device", "quick"),
    ),
    "field-demo": Command(
        "fit an mGradNet to the paper's convex gradient field for a few seconds",
        _field_demo, _field_demo_options, ("seed", "device", "quick"),
    ),
    "map": Command(
        "fit an optimal transport map between two sample files, or apply a saved one",
        _map, _map_options, ("steps", "seed", "device", "load", "output"),
        "Fit the optimal transport map from SOURCE to TARGET and save it (--out), or apply a "
        "saved map to new points (--load, --apply). Data-parallel on several processes or "
        "GPUs with: torchrun --nproc_per_node=N -m otgrad.cli map ...",
    ),
    "score": Command(
        "fit a conservative score model to a sample file, then sample it or get log-densities",
        _score, _score_options, ("steps", "seed", "device", "quick", "load", "output"),
    ),
    "flow": Command(
        "fit a convex potential flow to a sample file, then sample it or get log-densities",
        _flow, _flow_options, ("steps", "seed", "device", "quick", "load", "output"),
    ),
    "reconstruct": Command(
        "denoise, deblur or inpaint a grayscale image with the shipped convex regularizer",
        _reconstruct, _reconstruct_options, ("load", "output"),
    ),
}  # fmt: skip

_STUDIES = """studies (from a source checkout; each takes --quick):
  python -m applications.gradient_fields   the paper's Tables 1-2 and the PolyMax study
  python -m applications.ot_maps           OT maps: Gaussians, the W2 benchmark, peers
  python -m applications.score             score models on the FFJORD toy sets
  python -m applications.flows             convex potential flows against a spline flow
  python -m applications.inverse           the convex regularizer: BSD68, CT, deblurring
  python -m applications.speed.core_speed  speed of the calculus and a training step"""


def build_parser() -> argparse.ArgumentParser:
    r"""The ``otgrad`` argument parser, built from :data:`COMMANDS` and :data:`SHARED`."""
    parser = argparse.ArgumentParser(
        prog="otgrad",
        description="Gradient networks for optimal transport and generative modeling.",
        epilog=_STUDIES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.description or cmd.help)
        cmd.options(p)
        for option in cmd.shared:
            flags, kwargs = SHARED[option]
            p.add_argument(*flags, **kwargs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    r"""Runs ``otgrad`` with ``argv`` (default: the process's arguments); returns the exit
    status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return COMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
