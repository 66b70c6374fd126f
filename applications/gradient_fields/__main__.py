r"""Learn the paper's convex and nonconvex gradient fields with GradNets and baselines (paper
protocol and an improved one), and the PolyMax field in higher dimension. Writes tables.json,
polymax.json, results.md and figures to --out."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..common import (
    add_run_options,
    check_positive,
    command_line,
    split_list,
    study_parser,
    write_report,
    write_result,
)
from . import study
from .report import results_md

__all__ = ["build_parser", "main"]

PROG = "applications.gradient_fields"


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    f = study_parser(PROG, __doc__, "otgrad-fields")
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
    add_run_options(
        f,
        device="cpu",
        seed=False,
        quick="one seed, 5 epochs, 20 L-BFGS iterations, PolyMax at d = 2, 8 for 300 steps",
    )
    return f


def _check(args: argparse.Namespace) -> None:
    if args.quick:
        args.trials, args.epochs, args.refine_iterations = 1, 5, 20
        args.polymax_dims, args.polymax_iterations = "2,8", 300
    names = ("trials", "epochs", "workers", "refine_iterations", "polymax_iterations")
    check_positive(PROG, args, names)


def main(argv: Sequence[str] | None = None) -> int:
    r"""Runs the study with the options ``argv`` (default: the command line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _check(args)
    command = command_line(PROG, argv)
    tables = polymax = None
    if not args.skip_tables:
        tables = study.run_tables(
            args.out,
            trials=args.trials,
            epochs=args.epochs,
            protocols=split_list(args.protocols),
            refine_iterations=args.refine_iterations,
            workers=args.workers,
            device=args.device,
            init_from=args.init_from,
        )
        write_result(tables, os.path.join(args.out, "tables.json"), command, args.device)
    dims = split_list(args.polymax_dims, int)
    if dims:
        polymax = study.run_polymax(
            dims=dims,
            iterations=args.polymax_iterations,
            lrs=(1e-2, 1e-3) if args.quick else (1e-2, 1e-3, 1e-4),
            workers=args.workers,
            device=args.device,
        )
        write_result(polymax, os.path.join(args.out, "polymax.json"), command, args.device)
    os.makedirs(args.out, exist_ok=True)
    write_report(args.out, results_md(tables, polymax))
    return 0


if __name__ == "__main__":
    sys.exit(main())
