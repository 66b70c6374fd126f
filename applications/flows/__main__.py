r"""Fit convex potential flows (strongly convex mGradNet blocks, exact log-determinants) and zuko's
neural spline flow (pip install 'otgrad[bench]') on the FFJORD toy sets and a 16-dimensional
Gaussian mixture. Writes one JSON file per task, results.md and figures to --out."""

from __future__ import annotations

import argparse
import importlib.util
import sys

from otgrad.flows import NETS

from ..common import (
    add_run_options,
    add_toy_options,
    check_positive,
    check_toy_options,
    positive_float,
    split_list,
    study_parser,
    task_main,
)
from . import study
from .figures import toy2d_figures
from .report import tables

__all__ = ["TASKS", "build_parser", "main"]

PROG = "applications.flows"
TASKS = ("toy2d", "mixture")
_FLOW_OPTIONS = ("blocks", "net", "hidden", "layers", "beta")


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    fl = study_parser(PROG, __doc__, "otgrad-flows", TASKS)
    add_toy_options(fl, study.MODELS, 10000)
    fl.add_argument("--blocks", type=int, default=None, help="flow blocks (default 4)")
    fl.add_argument("--net", default=None, help="block network: modular, cascade, single")
    fl.add_argument("--hidden", type=int, default=None, help="block width")
    fl.add_argument("--layers", type=int, default=None, help="modules or cascade layers")
    fl.add_argument(
        "--beta", type=positive_float, default=None, help="softmax inverse temperature (20)"
    )
    fl.add_argument("--mixture-dim", type=int, default=16)
    add_run_options(fl)
    return fl


def _check(args: argparse.Namespace) -> list[str]:
    tasks = check_toy_options(PROG, args, TASKS, study.MODELS)
    check_positive(PROG, args, ("blocks", "hidden", "layers", "mixture_dim"))
    if args.net is not None and args.net not in NETS:
        raise SystemExit(f"{PROG}: --net must be one of {NETS}, got {args.net!r}")
    if "nsf" in split_list(args.models) and importlib.util.find_spec("zuko") is None:
        raise SystemExit(
            f"{PROG}: the NSF baseline needs zuko (pip install 'otgrad[bench]'), "
            "or run --models cpflow"
        )
    return tasks


def _run_task(task: str, args: argparse.Namespace) -> dict:
    models = split_list(args.models)
    flow = {k: getattr(args, k) for k in _FLOW_OPTIONS if getattr(args, k) is not None}
    common = dict(models=models, quick=args.quick, steps=args.steps, cpflow=flow,
                  workers=args.workers, seed=args.seed)  # fmt: skip
    if task == "mixture":
        return study.run_mixture(dim=args.mixture_dim, **common)
    r = study.run_toy2d(sets=split_list(args.sets), **common)
    toy2d_figures(r["rows"], models, args.out)
    return r


main = task_main(PROG, build_parser, _check, _run_task, "flows", tables)


if __name__ == "__main__":
    sys.exit(main())
