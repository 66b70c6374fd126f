r"""Fit BrenierMap on the OT benchmarks (Gaussians, the W2 benchmark, 2D toys, peers, losses, color
transfer) and write one JSON file per task, results.md and figures to --out."""

from __future__ import annotations

import argparse
import os
import sys

from ..common import (
    add_run_options,
    check_choices,
    check_positive,
    positive_float,
    split_list,
    study_parser,
    task_main,
)
from . import color, digits, study
from .report import tables

__all__ = ["TASKS", "build_parser", "main"]

PROG = "applications.ot_maps"
TASKS = ("gaussian", "w2bench", "peers", "toy2d", "losses", "color", "digits")


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    # the peer table (2 hours) and the digits showcase run when asked for
    default = ",".join(t for t in TASKS if t not in ("peers", "digits"))
    b = study_parser(PROG, __doc__, "otgrad-ot-bench", TASKS, default)
    b.add_argument("--gaussian-dims", default="2,4,8,16,32,64,128,256")
    b.add_argument("--w2-dims", default="2,4,8,16,32,64,128")
    b.add_argument(
        "--w2-root",
        default=os.environ.get("OTGRAD_W2BENCH", os.path.join("..", "shared", "data", "w2bench")),
        help="the W2 benchmark folder (with arrays/D{d}.npz); default $OTGRAD_W2BENCH or "
        "../shared/data/w2bench",
    )
    b.add_argument(
        "--w2-protocols",
        default="fixed",
        help="fixed (the stored sample sets), fresh (new draws of the pair at every step), "
        "or both: fixed,fresh",
    )
    b.add_argument(
        "--budget",
        type=positive_float,
        default=None,
        help="seconds per W2 benchmark fit (the clock ends it; the cosine learning rate "
        "decays to 0 at the limit)",
    )
    b.add_argument("--peer-dims", default="8,32,64", help="the W2 benchmark dimensions of peers")
    b.add_argument(
        "--peer-budgets",
        default="300,900",
        help="seconds per fit of the peer table's neural solvers",
    )
    b.add_argument("--loss-seconds", type=positive_float, default=120.0)
    b.add_argument("--no-peers", action="store_true", help="skip POT's estimators")
    b.add_argument(
        "--lr", type=positive_float, default=None, help="override BrenierMap's learning rate"
    )
    b.add_argument("--steps", type=int, default=None, help="override BrenierMap's steps")
    add_run_options(b, seed=False, quick="small data and step budgets (tests)")
    return b


def _check(args: argparse.Namespace) -> list[str]:
    tasks = split_list(args.tasks)
    check_choices(PROG, "tasks", tasks, TASKS)
    check_choices(PROG, "w2-protocols", split_list(args.w2_protocols), ("fixed", "fresh"))
    check_positive(PROG, args, ("workers", "steps"))
    for name, cast in (("peer_budgets", float), ("peer_dims", int)):
        try:
            values = split_list(getattr(args, name), cast)
        except ValueError:
            values = [0]
        if not values or min(values) <= 0:
            flag = "--" + name.replace("_", "-")
            raise SystemExit(
                f"{PROG}: {flag} must be positive numbers, got {getattr(args, name)!r}"
            )
    return tasks


def _dims(args: argparse.Namespace) -> tuple[list[int], list[int]]:
    gdims, wdims = split_list(args.gaussian_dims, int), split_list(args.w2_dims, int)
    if args.quick:
        gdims, wdims = [d for d in gdims if d <= 4][:2] or [2], [d for d in wdims if d <= 4][:1]
    return gdims, wdims


def _run_task(task: str, args: argparse.Namespace) -> dict | None:
    r"""Runs one task; ``None`` when its data is missing."""
    root = args.w2_root if os.path.isdir(os.path.join(args.w2_root, "arrays")) else None
    gdims, wdims = _dims(args)
    extra = {k: getattr(args, k) for k in ("lr", "steps") if getattr(args, k) is not None}
    common = dict(quick=args.quick, workers=args.workers)
    if task == "gaussian":
        return study.run_gaussian(gdims, peers=not args.no_peers, brenier=extra, **common)
    if task == "w2bench":
        if root is None:
            print(f"w2bench: no data at {args.w2_root!r} (set --w2-root); skipped")
            return None
        protocols = split_list(args.w2_protocols)
        return study.run_w2bench(
            root, wdims, brenier=extra, protocols=protocols, budget=args.budget, **common
        )
    if task == "peers":
        if root is None:
            print(f"peers: no data at {args.w2_root!r} (set --w2-root); skipped")
            return None
        dims, budgets = split_list(args.peer_dims, int), split_list(args.peer_budgets, float)
        if args.quick:
            dims, budgets = [2], [3.0]
        result = study.run_peers(root, dims, budgets, **common)
        for line in result["protocol"]["skipped"]:
            print(f"peers: skipped {line}")
        return result
    if task == "toy2d":
        pairs = study.TOY_PAIRS[:1] if args.quick else study.TOY_PAIRS
        return study.run_toy2d(args.out, pairs=pairs, peers=not args.no_peers, **common)
    if task == "losses":
        return study.run_losses(root, seconds=args.loss_seconds, **common)
    if task == "digits":
        r = digits.run_digits(args.out, quick=args.quick)
        print(
            f"digits {r['source']} -> {r['target']}: held-out W2 {r['w2_source']:.3f} before, "
            f"{r['w2_mapped']:.3f} after ({r['w2_linear']:.3f} linear)"
        )
        return r
    c = color.run_color_transfer(args.out, quick=args.quick)
    print(f"color transfer: W2 {c['w2_source']:.3f} before, {c['w2_mapped']:.3f} after")
    return c


main = task_main(PROG, build_parser, _check, _run_task, "ot", tables)


if __name__ == "__main__":
    sys.exit(main())
