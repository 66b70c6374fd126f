r"""Train a convex regularizer (a monotone convolutional GradNet) as a t-step denoiser on BSD400
patches, tune it per task on held-out images, and compare it with TV (and FBP for CT). Without
--tasks train the shipped regularizer is used. Writes one JSON file per task (and figures) to
--out; the task 'figures' rebuilds the example reconstructions from the task JSONs in --out."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from otgrad.data.images import load_image_set
from otgrad.inverse import ConvexRegularizer, Denoising, noisy_copies
from otgrad.train import reuse_cpu_memory

from ..common import (
    DOCS,
    add_run_options,
    check_choices,
    command_line,
    load_json,
    split_list,
    study_parser,
    write_result,
)
from . import study
from .examples import examples
from .figures import plot_convergence, plot_images
from .report import with_tv
from .speed import run_speed, run_train_speed

__all__ = ["TASKS", "RESUME", "build_parser", "main"]

PROG = "applications.inverse"
#: The exit status of a training session that stopped before the end (run it again).
RESUME = 75
TASKS = (
    "train", "denoise", "ct", "deblur", "convergence", "speed", "train-speed", "architectures",
    "figures",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    r"""The command line's options."""
    iv = study_parser(PROG, __doc__, "otgrad-inverse", TASKS, "denoise,ct,deblur,convergence")
    iv.add_argument("--data-dir", default=None, help="folder with bsd/ and ct/ (../shared/data)")
    iv.add_argument("--weights", default=None, help="a saved ConvexRegularizer to evaluate")
    iv.add_argument("--channels", default="1,8,32", help="channels of the multi-convolution")
    iv.add_argument(
        "--arch", choices=["crr", "cascade", "modular"], default="crr",
        help="network: single-layer spline (CRR-NN), cascaded mGradNet-C, modular mGradNet-M",
    )  # fmt: skip
    iv.add_argument("--layers", type=int, default=2, help="cascade layers (--arch cascade)")
    iv.add_argument("--modules", type=int, default=8, help="modules (--arch modular)")
    iv.add_argument("--iterations", type=int, default=6000, help="training steps")
    iv.add_argument("--t-steps", type=int, default=10, help="steps of the t-step denoiser")
    iv.add_argument("--sigma-train", type=float, default=5.0, help="training noise (0-255)")
    iv.add_argument("--sigmas", default="5,15,25", help="test noise levels (0-255)")
    iv.add_argument(
        "--methods", default="convex,tv", help="denoise task: convex (the regularizer), tv"
    )
    iv.add_argument(
        "--time-limit", type=float, default=None,
        help="training session length (s): training stops at an epoch boundary before it and "
        f"the command exits with status {RESUME}; the same command continues it",
    )  # fmt: skip
    iv.add_argument("--progress", action="store_true", help="training progress bar")
    iv.add_argument("--init", default=None, help="warm-start training from a saved regularizer")
    iv.add_argument("--no-figures", action="store_true", help="JSON only")
    iv.add_argument(
        "--runs", default="",
        help="architectures task: output folders of train,denoise runs to put in one table",
    )  # fmt: skip
    add_run_options(iv, workers=False, device="cpu")
    return iv


class _Run:
    r"""One invocation: the parsed options, the tasks and where results go."""

    def __init__(self, args: argparse.Namespace, argv: Sequence[str]):
        self.args, self.q = args, args.quick
        self.tasks = split_list(args.tasks)
        check_choices(PROG, "tasks", self.tasks, TASKS)
        self.methods = split_list(args.methods)
        if not self.methods or set(self.methods) - {"convex", "tv"}:
            raise SystemExit(f"{PROG}: --methods must be convex and/or tv, got {args.methods!r}")
        self.sigmas = split_list(args.sigmas, float)
        self.command = command_line(PROG, argv)

    def path(self, name: str) -> str:
        return os.path.join(self.args.out, name)

    def save(self, result: dict, name: str) -> dict:
        r"""Writes a task's result (with the command, provenance and ``quick``)."""
        result = {"quick": self.q, **result}
        return write_result(result, self.path(name), self.command, self.args.device)


def _train(run: _Run) -> ConvexRegularizer:
    a, q = run.args, run.q
    reg, rec = study.run_train(
        data_dir=a.data_dir, sigma=a.sigma_train, sigmas=run.sigmas,
        steps=2 if q else a.t_steps, iterations=4 if q else a.iterations,
        batch_size=8 if q else 128, channels=split_list(a.channels, int), arch=a.arch,
        layers=a.layers, modules=a.modules, val=2 if q else 40,
        train_limit=6 if q else None, tune_rounds=1 if q else 4, device=a.device, seed=a.seed,
        time_limit=a.time_limit, checkpoint=run.path("train_state.pt"), stride=None if q else 10,
        init=a.init, progress=a.progress or None, steps_per_epoch=2 if q else 100,
    )  # fmt: skip
    if not rec["finished"]:
        print(
            f"training stopped after {rec['iterations']} of {rec['planned']} iterations; "
            f"run the same command to continue from {run.path('train_state.pt')}"
        )
        raise SystemExit(RESUME)
    weights = run.path(f"{a.arch}_bsd.pt")
    reg.save(weights)
    run.save(rec, "inverse_train.json")
    print(f"trained in {rec['train_seconds']:.0f} s; validation PSNR {rec['validation_psnr']}")
    return ConvexRegularizer.load(weights)


def _regularizer(run: _Run) -> ConvexRegularizer | None:
    if "train" in run.tasks:
        return _train(run)
    if set(run.tasks) <= {"train-speed", "architectures"}:
        return None  # tasks that use no regularizer
    if run.args.weights:
        return ConvexRegularizer.load(run.args.weights)
    return ConvexRegularizer.pretrained("bsd", sigma=run.sigmas[0])


def _denoise(run: _Run, reg: ConvexRegularizer) -> None:
    q, methods = run.q, run.methods
    r = study.run_denoise(
        {"convex_regularizer": reg} if "convex" in methods else {},
        tv="tv" in methods, data_dir=run.args.data_dir, sigmas=run.sigmas,
        val=2 if q else 40, limit=2 if q else None, device=run.args.device,
        max_iter=20 if q else 2000,
    )  # fmt: skip
    suffix = "" if {"convex", "tv"} <= set(methods) else "_" + "_".join(methods)
    run.save(r, f"inverse_denoise{suffix}.json")
    for key, row in r["results"].items():
        print(
            f"sigma={key}: ours {row.get('convex_regularizer', float('nan')):.2f} dB, "
            f"TV {row.get('tv', float('nan')):.2f}, CRR-NN (published) {row['crr_nn_published']}"
        )


def _ct(run: _Run, reg: ConvexRegularizer) -> None:
    r = study.run_ct(reg, data_dir=run.args.data_dir, quick=run.q, device=run.args.device)
    run.save(r, "inverse_ct.json")
    print(f"CT: FBP {r['fbp']:.2f} dB, TV {r['tv']:.2f}, ours {r['convex_regularizer']:.2f}")


def _deblur(run: _Run, reg: ConvexRegularizer) -> None:
    r = study.run_deblur(reg, data_dir=run.args.data_dir, quick=run.q, device=run.args.device)
    run.save(r, "inverse_deblur.json")
    print(
        f"deblur: observed {r['observed']:.2f} dB, TV {r['tv']:.2f}, "
        f"ours {r['convex_regularizer']:.2f}"
    )


def _convergence(run: _Run, reg: ConvexRegularizer) -> None:
    img, _ = load_image_set("bsd68", run.args.data_dir, 1)
    crop = 32 if run.q else 128
    x = study.to_tensors([img[0][:crop, :crop]])[0]
    sigma = run.sigmas[-1]
    reg = reg.use_strength(sigma)
    y = noisy_copies([x], sigma)[0]
    r = study.run_convergence(reg, y, Denoising(), iterations=20 if run.q else 300)
    run.save(r, "inverse_convergence.json")
    print(f"two initializations: relative distance {r['two_inits_relative_distance']:.1e}")
    if not run.args.no_figures:
        plot_convergence(r, run.path("inverse_convergence.png"))


def _figures(run: _Run, reg: ConvexRegularizer) -> None:
    r"""Example reconstructions of the tasks whose results are in ``--out``."""
    found = {}
    for task in ("denoise", "ct", "deblur"):
        result = load_json(run.path(f"inverse_{task}.json"))
        if result is not None and (task in run.tasks or "figures" in run.tasks):
            found[task] = result
    if "denoise" in found:  # TV measured in a separate run
        with_tv(found["denoise"], load_json(run.path("inverse_denoise_tv.json")))
    for task, images in examples(reg, found, run.args.data_dir).items():
        plot_images(images, run.path(f"inverse_{task}.png"))


def _tv_lambdas(run: _Run) -> dict[str, float]:
    r"""TV's weight per noise level: from a denoising run in ``--out`` (or the committed one),
    else tuned on two held-out images."""
    for path in (run.path("inverse_denoise_tv.json"), run.path("inverse_denoise.json"),
                 os.path.join(DOCS, "inverse", "inverse_denoise_tv.json")):  # fmt: skip
        result = load_json(path)
        if result and all("tv_lambda" in row for row in result["results"].values()):
            return {k: row["tv_lambda"] for k, row in result["results"].items()}
    _, held, _ = study.split_images(run.args.data_dir, 2, 2)
    clean = study.to_tensors([im[:64, :64] for im in held])
    return {
        f"{s:g}": study.tune_tv(clean, noisy_copies(clean, s), Denoising(), grid=[0.02, 0.06])[0]
        for s in run.sigmas
    }


def _speed(run: _Run, reg: ConvexRegularizer) -> None:
    q = run.q
    r = run_speed(
        reg, _tv_lambdas(run), data_dir=run.args.data_dir, sigmas=run.sigmas,
        size=32 if q else 256, images=1 if q else 4, tols=(1e-3,) if q else (1e-4, 1e-5),
    )  # fmt: skip
    run.save(r, "inverse_speed.json")
    for key in run.sigmas:
        row = r[f"{key:g}"]
        best = {k: v for k, v in row.items() if isinstance(v, dict)}
        print(
            f"sigma={key:g}: "
            + ", ".join(f"{k} {v['seconds']:.2f} s {v['psnr']:.2f} dB" for k, v in best.items())
        )


def _train_speed(run: _Run, reg: ConvexRegularizer) -> None:
    q = run.q
    rows = run_train_speed(
        run.args.data_dir, t_steps=2 if q else run.args.t_steps, batch_size=4 if q else 128,
        patch=12 if q else 40, steps=(1, 2) if q else (4, 12), device=run.args.device,
    )  # fmt: skip
    run.save(
        {"networks": rows, "t_steps": 2 if q else run.args.t_steps}, "inverse_train_speed.json"
    )
    for r in rows:
        print(f"{r['arch']} {r['channels']}: {r['parameters']} parameters, "
              f"{r['seconds_per_iteration']:.2f} s per iteration")  # fmt: skip


def _architectures(run: _Run, reg: ConvexRegularizer) -> None:
    rows = [study.architecture_row(folder) for folder in split_list(run.args.runs)]
    if not rows:
        raise SystemExit(f"{PROG}: the architectures task needs --runs")
    run.save({"runs": rows}, "inverse_architectures.json")
    for r in rows:
        print(f"{r['arch']} {r['parameters']} parameters: BSD68 {r['bsd68_psnr']}")


_TASKS = {
    "denoise": _denoise,
    "ct": _ct,
    "deblur": _deblur,
    "convergence": _convergence,
    "speed": _speed,
    "train-speed": _train_speed,
    "architectures": _architectures,
}


def main(argv: Sequence[str] | None = None) -> int:
    r"""Runs the tasks of ``argv`` (default: the command line); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    run = _Run(build_parser().parse_args(argv), argv)
    os.makedirs(run.args.out, exist_ok=True)
    reuse_cpu_memory()  # CPU training steps 1.3-2.6x faster
    reg = _regularizer(run)
    for task, fn in _TASKS.items():
        if task in run.tasks:
            fn(run, reg)
    if reg is not None and ("figures" in run.tasks or not run.args.no_figures):
        _figures(run, reg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
