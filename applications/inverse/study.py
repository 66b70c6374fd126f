r"""The inverse-problem tasks: training, BSD68 denoising, sparse-view CT, deblurring and
the solver's convergence."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from otgrad.data.images import load_image_set
from otgrad.inverse import (
    Blur,
    ConvexRegularizer,
    Denoising,
    LinearOperator,
    RegularizerNetwork,
    Tomography,
    mean_psnr,
    noisy_copies,
    reconstruct,
    tune_strength,
    tv_reconstruct,
)
from otgrad.nn import ConvGradNet, ConvGradNetM

from ..common import load_json
from .published import CRR_NN_PUBLISHED, WCRR_NN_PUBLISHED

__all__ = [
    "run_train",
    "run_denoise",
    "run_ct",
    "run_deblur",
    "run_convergence",
    "tune_tv",
    "to_tensors",
    "make_network",
    "network",
    "split_images",
    "ct_images",
    "fbp",
    "STEPS_PER_EPOCH",
    "architecture_row",
]


#: Training steps per epoch (a checkpoint is written after each).
STEPS_PER_EPOCH = 100


def to_tensors(images: Sequence[np.ndarray], device: str | torch.device = "cpu") -> list[Tensor]:
    r"""Images as ``(1, 1, H, W)`` float32 tensors."""
    return [torch.as_tensor(im, dtype=torch.float32, device=device)[None, None] for im in images]


def split_images(data_dir: str | None, val: int, limit: int | None) -> tuple[list, list, str]:
    images, source = load_image_set("bsd-train", data_dir)
    val = min(val, max(1, len(images) // 5))
    train, held = images[:-val], images[-val:]
    return (train[:limit] if limit else train), held, source


def make_network(
    channels: Sequence[int] = (1, 8, 32),
    kernel_size: int = 7,
    knots: int = 21,
    arch: str = "crr",
    layers: int = 2,
    modules: int = 8,
) -> nn.Module:
    r"""A monotone image network by architecture: ``"crr"`` (CRR-NN's single-layer spline
    mGradNet on a 1-8-32 multi-convolution), ``"cascade"`` (the cascaded mGradNet-C of
    ``layers`` spline layers, eq. (39)) or ``"modular"`` (the mGradNet-M of ``modules``
    softmax modules over the channels, Thm 12, inverse temperature 30)."""
    if arch == "crr":
        return ConvGradNet(channels, kernel_size, knots=knots, span=0.1)
    if arch == "cascade":
        return ConvGradNet(channels, kernel_size, layers=layers, knots=knots, span=0.1)
    if arch == "modular":  # sharp softmax modules at the scale of Wx on [0, 1] images, like
        # the spline's knots on [-0.1, 0.1] (beta 30 beat 1 by 0.9 dB after 200 short steps)
        return ConvGradNetM(channels, modules, kernel_size, beta=30.0)
    raise ValueError(f"arch must be 'crr', 'cascade' or 'modular', got {arch!r}")


def network(reg: ConvexRegularizer, device: str | torch.device = "cpu") -> RegularizerNetwork:
    r"""The fitted module of ``reg`` on ``device`` (what the solvers and tuning work on)."""
    return reg.regularizer_.to(device)


def tune_tv(
    clean: list[Tensor],
    noisy: list[Tensor],
    operator: LinearOperator,
    *,
    grid: Sequence[float],
    max_iter: int = 300,
) -> tuple[float, float]:
    r"""The TV weight of ``grid`` (refined once around the best) with the best mean PSNR."""

    def score(lam: float) -> float:
        return mean_psnr(
            lambda y: tv_reconstruct(y, operator, lam, max_iter=max_iter, tol=1e-5).x, clean, noisy
        )

    scores = {lam: score(lam) for lam in grid}
    best = max(scores, key=scores.get)
    step = (grid[1] / grid[0]) ** 0.5 if len(grid) > 1 else 2.0
    for lam in (best / step, best * step):
        scores[lam] = score(lam)
    best = max(scores, key=scores.get)
    return best, scores[best]


def _estimator(
    init: str | None, network: dict[str, Any], device: str, **options: Any
) -> ConvexRegularizer:
    r"""A regularizer to train: a new network (``network``: the arguments of
    :func:`make_network`), or warm-started from a saved one."""
    if init is None:
        return ConvexRegularizer(make_network(**network), device=device, **options)
    start = ConvexRegularizer.load(init)
    module = start.regularizer_
    return ConvexRegularizer(module.net, module.lmbda, module.mu, device=device, **options)


def run_train(
    *,
    data_dir: str | None = None,
    sigma: float = 5.0,
    sigmas: Sequence[float] = (5, 15, 25),
    steps: int = 10,
    iterations: int = 6000,
    batch_size: int = 128,
    channels: Sequence[int] = (1, 8, 32),
    arch: str = "crr",
    layers: int = 2,
    modules: int = 8,
    val: int = 40,
    train_limit: int | None = None,
    tune_rounds: int = 4,
    device: str = "cpu",
    seed: int = 0,
    checkpoint: str | None = None,
    time_limit: float | None = None,
    progress: bool | None = None,
    stride: int | None = None,
    init: str | None = None,
    steps_per_epoch: int = STEPS_PER_EPOCH,
    tune_images: int = 12,
) -> tuple[ConvexRegularizer, dict[str, Any]]:
    r"""Trains one regularizer on the BSD400 training images and tunes it per noise level.

    ``checkpoint`` is the training state's file (an interrupted run resumes); with it,
    ``time_limit`` is the length of one session of the run (training stops at an epoch of
    :data:`STEPS_PER_EPOCH` steps before the limit; without it, the iterations are capped to
    what fits, see :class:`~otgrad.inverse.ConvexRegularizer`). ``init`` (a saved
    regularizer) warm-starts the training. :math:`\lambda, \mu` are tuned per noise level on
    the first ``tune_images`` held-out images (the search reconstructs each of them about 33
    times per noise level).

    Returns:
        The fitted regularizer, its strengths tuned per noise level, and a record with the
        training curve, the tuned :math:`(\lambda, \mu)` and the validation PSNRs; for a
        session that stopped before the end, the regularizer as it stands and a record
        ``{"finished": False, "iterations": done, "planned": iterations}`` (nothing tuned).
    """
    train, held, source = split_images(data_dir, val, train_limit)
    network = {"channels": channels, "arch": arch, "layers": layers, "modules": modules}
    torch.manual_seed(seed)  # the network's initialization
    reg = _estimator(
        init, network, device, sigma=sigma, t_steps=steps, iterations=iterations,
        epochs=max(1, iterations // steps_per_epoch), batch_size=batch_size, stride=stride,
        time_limit=time_limit, checkpoint=checkpoint, seed=seed, progress=progress,
    )  # fmt: skip
    start = time.perf_counter()
    reg.fit(train)
    seconds = time.perf_counter() - start
    if not reg.history_.finished:  # one session of a resumable run: no tuning yet
        return reg, {"finished": False, "iterations": reg.history_.steps, "planned": iterations}
    clean = to_tensors(held[:tune_images], device)
    val_psnr = {}
    base = (reg.lmbda_, reg.mu_)
    for s in sigmas:
        reg.set_strength(base[0] * (s / sigma) ** 2, base[1])  # the noise-variance scaling
        *_, val_psnr[f"{float(s):g}"] = reg.tune(
            clean, noisy_copies(clean, s), label=s, rounds=tune_rounds
        )
    record = {
        "finished": True,
        "data": source,
        "train_images": len(train),
        "validation_images": len(held),
        "tuning_images": len(clean),
        "sigma_train": sigma,
        "t_steps": steps,
        "loss": reg.loss,
        "iterations": reg.history_.steps,
        "batch_size": batch_size,
        "channels": list(channels),
        "arch": arch,
        "layers": layers if arch == "cascade" else 1,
        "modules": modules if arch == "modular" else None,
        "parameters": sum(p.numel() for p in reg.regularizer_.parameters()),
        "train_seconds": seconds,
        "train_loss": reg.history_.train_loss,
        "strengths": dict(reg.strengths_),
        "validation_psnr": val_psnr,
        "device": str(device),
        "init": init,
    }
    return reg, record


def architecture_row(folder: str) -> dict[str, Any]:
    r"""One row of the architecture table from the output folder of a ``train,denoise`` run:
    the network, its training, its validation PSNR and its BSD68 PSNR per noise level."""
    train = load_json(os.path.join(folder, "inverse_train.json"))
    denoise = load_json(os.path.join(folder, "inverse_denoise_convex.json")) or load_json(
        os.path.join(folder, "inverse_denoise.json")
    )
    if train is None or denoise is None:
        raise SystemExit(f"{folder} needs inverse_train.json and a denoising result")
    keys = ("arch", "channels", "layers", "modules", "parameters", "iterations", "t_steps",
            "loss", "batch_size", "validation_psnr", "tuning_images", "device")  # fmt: skip
    row = {k: train.get(k) for k in keys}
    row["bsd68_psnr"] = {k: r["convex_regularizer"] for k, r in denoise["results"].items()}
    row["folder"] = folder
    return row


def _denoise_row(
    regs: dict[str, ConvexRegularizer],
    held: list[Tensor],
    clean: list[Tensor],
    s: float,
    *,
    tv: bool,
    device: str,
    max_iter: int,
    tol: float,
    tv_max_iter: int,
) -> dict[str, Any]:
    r"""At the noise level ``s``: the mean PSNR of the noisy images, of each regularizer (with
    its time and iterations), of TV (with ``tv``; its weight tuned on the held-out images)
    and the published values."""
    op, key = Denoising(), f"{float(s):g}"
    noisy = noisy_copies(clean, s, seed=1234)  # test noise: another seed than validation
    row: dict[str, Any] = {"noisy": mean_psnr(lambda y: y, clean, noisy)}
    for name, est in regs.items():
        reg = network(est, device).set_strength(*est.strengths_[key])
        t0 = time.perf_counter()
        iters = []

        def solve(y: Tensor, reg=reg, iters=iters) -> Tensor:
            r = reconstruct(y, op, reg, max_iter=max_iter, tol=tol, record=False)
            iters.append(r.iterations)
            return r.x

        row[name] = mean_psnr(solve, clean, noisy)
        row[f"{name}_seconds"] = time.perf_counter() - t0
        row[f"{name}_iterations"] = max(iters)
    if tv:
        grid = [s / 255 * f for f in (0.25, 0.5, 1, 2)]
        lam, _ = tune_tv(held, noisy_copies(held, s), op, grid=grid, max_iter=tv_max_iter)
        row["tv"] = mean_psnr(
            lambda y: tv_reconstruct(y, op, lam, max_iter=tv_max_iter, tol=tol).x, clean, noisy
        )
        row.update(tv_lambda=lam, tv_max_iter=tv_max_iter)
    row["crr_nn_published"] = CRR_NN_PUBLISHED.get(key)
    row["wcrr_nn_published"] = WCRR_NN_PUBLISHED.get(key)
    return row


def run_denoise(
    regs: dict[str, ConvexRegularizer],
    *,
    data_dir: str | None = None,
    sigmas: Sequence[float] = (5, 15, 25),
    val: int = 40,
    limit: int | None = None,
    tv: bool = True,
    device: str = "cpu",
    max_iter: int = 2000,
    tol: float = 1e-5,
    tv_max_iter: int = 150,
) -> dict[str, Any]:
    r"""BSD68 denoising: mean PSNR of each regularizer (set per noise level) and of tuned TV.

    TV runs at most ``tv_max_iter`` primal-dual iterations (at 100 the mean PSNR is within
    0.002 dB of 400 on BSD68 crops).

    Arguments:
        regs: Fitted regularizers by name, with their :math:`(\lambda, \mu)` tuned per noise
            level in ``strengths_``.
    """
    test, source = load_image_set("bsd68", data_dir, limit)
    clean = to_tensors(test, device)
    _, held, _ = split_images(data_dir, val, None)
    held_t = to_tensors(held, device)
    out: dict[str, Any] = {"data": source, "images": len(test), "sigmas": list(sigmas)}
    out["results"] = {
        f"{float(s):g}": _denoise_row(regs, held_t, clean, s, tv=tv, device=device,
                                      max_iter=max_iter, tol=tol, tv_max_iter=tv_max_iter)
        for s in sigmas
    }  # fmt: skip
    return out


def ct_images(
    data_dir: str | None, size: int, limit: int | None
) -> tuple[list, list, dict[str, str]]:
    r"""The CT validation (tuning) and test phantoms, resized to ``size`` x ``size``, and
    where each set came from."""
    from skimage.transform import resize

    val, val_source = load_image_set("ct-validation", data_dir)
    test, test_source = load_image_set("ct-train", data_dir, limit)
    shrink = [resize(im, (size, size), anti_aliasing=True) for im in val + test]
    return shrink[: len(val)], shrink[len(val) :], {"tuning": val_source, "test": test_source}


def fbp(op: Tomography, y: Tensor) -> Tensor:
    r"""Filtered back-projection (scikit-image, ramp filter) of the sinogram ``y``."""
    from skimage.transform import iradon

    sino = y[0, 0].double().numpy().T
    rec = iradon(sino, theta=op.theta, filter_name="ramp", circle=True)
    return torch.as_tensor(rec, dtype=torch.float32)[None, None]


class _CT:
    r"""The measurements of a CT task, with the clipped FBP of each as the starting point
    of the iterative methods (the minimizer does not depend on the start, by convexity;
    the number of iterations to reach it does)."""

    def __init__(self, op: Tomography, images: list, noise: float, gen: torch.Generator):
        self.x = to_tensors(images)
        self.y = [op.A(x) + noise * torch.randn(op.A(x).shape, generator=gen) for x in self.x]
        self.start = [fbp(op, y).clamp(0, 1) for y in self.y]

    def psnr(self, solve: Callable[[Tensor, Tensor], Tensor]) -> float:
        r"""Mean PSNR of ``solve(y, start)`` clipped to [0, 1]."""
        return mean_psnr(lambda y, z: solve(y, z).clamp(0, 1), self.x, self.y, self.start)


def _ct_solver(op, reg, *, max_iter: int, tol: float, iters: list | None = None):
    def solve(y: Tensor, z: Tensor) -> Tensor:
        r = reconstruct(y, op, reg, x0=z, max_iter=max_iter, tol=tol, bounds=(0.0, 1.0),
                        record=False)  # fmt: skip
        if iters is not None:
            iters.append(r.iterations)
        return r.x

    return solve


def _ct_tv(op, lam: float, *, max_iter: int, tol: float):
    return lambda y, z: (
        tv_reconstruct(y, op, lam, x0=z, max_iter=max_iter, tol=tol, bounds=(0.0, 1.0)).x
    )


def _tune_ct(reg, op, val: _CT, *, tune_iter: int, tol: float, rounds: int):
    r"""Tunes lambda, mu on the validation phantoms: first lambda alone on a decade grid
    (the data term's scale, ||A||^2, is far from denoising's), then coarse-to-fine in both."""
    mu0 = reg.mu

    def score(lam: float) -> float:
        reg.set_strength(lam, mu0)
        return val.psnr(_ct_solver(op, reg, max_iter=tune_iter, tol=tol))

    reg.set_strength(max((1.0, 10.0, 100.0, 1000.0), key=score), mu0)
    lam, mu, _ = tune_strength(reg, val.x, val.y, op, rounds=rounds, bounds=(0.0, 1.0),
                               x0=val.start, tol=tol, max_iter=tune_iter)  # fmt: skip
    return lam, mu


def run_ct(reg: ConvexRegularizer, *, data_dir: str | None, quick: bool, device: str) -> dict:
    r"""Sparse-view CT: FBP (scikit-image), TV and the learned regularizer, tuned on the
    validation phantoms (at most 300 iterations each) and tested on the first 5 training
    phantoms, 128 x 128, 60 angles (at most 1000 iterations); all iterative methods start
    from the clipped FBP. The regularizer never saw CT images. With ``quick``: 1 phantom,
    32 x 32, 12 angles, 20 iterations."""
    size, angles, limit, max_iter = (32, 12, 1, 20) if quick else (128, 60, 5, 1000)
    noise, tol = 1.0, 1e-6
    val_images, test_images, source = ct_images(data_dir, size, limit)
    op = Tomography(size, angles)
    gen = torch.Generator().manual_seed(0)
    val, test = _CT(op, val_images, noise, gen), _CT(op, test_images, noise, gen)
    out: dict[str, Any] = {"data": source, "size": size, "angles": angles, "noise": noise}
    out.update(images=len(test.x), start="FBP", fbp=test.psnr(lambda y, z: fbp(op, y)))
    tune_iter = min(max_iter, 300)
    grid = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
    best_tv = max((val.psnr(_ct_tv(op, lam, max_iter=tune_iter, tol=tol)), lam) for lam in grid)
    out["tv_lambda"] = best_tv[1]
    out["tv"] = test.psnr(_ct_tv(op, best_tv[1], max_iter=max_iter, tol=tol))
    reg = network(reg, device)
    lam, mu = _tune_ct(reg, op, val, tune_iter=tune_iter, tol=tol, rounds=1)
    iters: list[int] = []
    out["convex_regularizer"] = test.psnr(
        _ct_solver(op, reg, max_iter=max_iter, tol=tol, iters=iters)
    )
    out["strength"] = [lam, mu]
    out["iterations"] = max(iters)
    return out


def run_deblur(reg: ConvexRegularizer, *, data_dir: str | None, quick: bool, device: str) -> dict:
    r"""Gaussian deblurring (blur std 1.5 px, noise std 2/255) of 128 x 128 crops of the first
    4 BSD68 images (at most 1000 iterations), with :math:`\lambda, \mu` and TV's weight
    tuned on held-out training images. With ``quick``: one 32 x 32 crop, 20 iterations."""
    images, crop, max_iter = (1, 32, 20) if quick else (4, 128, 1000)
    blur_sigma, noise, tol = 1.5, 2.0, 1e-5
    test, source = load_image_set("bsd68", data_dir, images)
    _, held, _ = split_images(data_dir, 40, None)
    test = [im[:crop, :crop] for im in test]
    held = [im[:crop, :crop] for im in held[:4]]
    shape = test[0].shape
    op = Blur(shape, sigma=blur_sigma)
    gen = torch.Generator().manual_seed(0)

    def measure(ims):
        xs = to_tensors(ims)
        return xs, [op.A(x) + noise / 255 * torch.randn(x.shape, generator=gen) for x in xs]

    hx, hy = measure([h for h in held if h.shape == shape])
    tx, ty = measure(test)
    reg = network(reg, device)
    lam, mu, _ = tune_strength(reg, hx, hy, op, rounds=2)
    tv_lam, _ = tune_tv(hx, hy, op, grid=[noise / 255 * f for f in (0.25, 0.5, 1, 2)])
    return {
        "data": source,
        "images": len(tx),
        "crop": crop,
        "blur_sigma": blur_sigma,
        "noise": noise,
        "observed": mean_psnr(lambda y: y, tx, ty),
        "convex_regularizer": mean_psnr(
            lambda y: reconstruct(y, op, reg, max_iter=max_iter, tol=tol, record=False).x, tx, ty
        ),
        "strength": [lam, mu],
        "tv": mean_psnr(
            lambda y: tv_reconstruct(y, op, tv_lam, max_iter=max_iter, tol=tol).x, tx, ty
        ),
        "tv_lambda": tv_lam,
    }


def run_convergence(
    reg: ConvexRegularizer, y: Tensor, operator: LinearOperator, iterations: int = 300
) -> dict[str, Any]:
    r"""Objective per iteration of plain gradient descent, FISTA and FISTA with restart,
    from two initializations, and the distance between the two restarted solutions
    (in float64, so that the objective gap is resolved below float32's rounding)."""
    reg, y = copy.deepcopy(reg.regularizer_).double(), y.double()
    out: dict[str, Any] = {}
    for name, kw in {
        "gradient descent": dict(accelerated=False),
        "FISTA": dict(accelerated=True, restart=False),
        "FISTA + restart": dict(accelerated=True, restart=True),
    }.items():
        r = reconstruct(y, operator, reg, max_iter=iterations, tol=1e-12, record=True, **kw)
        out[name] = [float(v.sum()) for v in r.objective]
    a = reconstruct(y, operator, reg, max_iter=5000, tol=1e-9)
    b = reconstruct(y, operator, reg, x0=torch.zeros_like(a.x), max_iter=5000, tol=1e-9)
    out["two_inits_relative_distance"] = float((a.x - b.x).norm() / a.x.norm())
    out["iterations_to_1e-9"] = [a.iterations, b.iterations]
    return out
