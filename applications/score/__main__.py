r"""Train conservative GradNet score models and baselines on the FFJORD toy sets, compare MALA with
unadjusted Langevin, and time the ODE likelihood with the closed-form divergence. Writes one
JSON file per task, results.md and figures to --out."""

from __future__ import annotations

import argparse
import sys

from otgrad.score import ScoreModel

from ..common import (
    add_run_options,
    add_toy_options,
    check_toy_options,
    split_list,
    study_parser,
    task_main,
)
from . import study
from .figures import toy2d_figures
from .report import tables

__all__ = ["TASKS", "build_parser", "main"]

PROG = "applications.score"
TASKS = ("toy2d", "mala", "trace")


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    sc = study_parser(PROG, __doc__, "otgrad-score", TASKS)
    add_toy_options(sc, study.MODELS, ScoreModel().steps)
    sc.add_argument("--trace-dims", default="2,16,64", help="dimensions of the speed benchmark")
    add_run_options(sc)
    return sc


def _check(args: argparse.Namespace) -> list[str]:
    return check_toy_options(PROG, args, TASKS, study.MODELS)


def _run_task(task: str, args: argparse.Namespace) -> dict:
    if task == "toy2d":
        models = split_list(args.models)
        r = study.run_toy2d(
            sets=split_list(args.sets),
            models=models,
            quick=args.quick,
            steps=args.steps,
            workers=args.workers,
            seed=args.seed,
        )
        toy2d_figures(r["rows"], models, args.out)
        return r
    if task == "mala":
        return study.run_mala(quick=args.quick, steps=args.steps, seed=args.seed)
    dims = split_list(args.trace_dims, int)
    return study.run_trace_speed(dims=dims, quick=args.quick, seed=args.seed)


main = task_main(PROG, build_parser, _check, _run_task, "score", tables)


if __name__ == "__main__":
    sys.exit(main())
