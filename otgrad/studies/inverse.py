r"""Benchmarks of learned convex regularizers: BSD68 denoising, CT, deblurring, convergence.

Protocol (CRR-NN's): the regularizer is trained once, as a :math:`t`-step denoiser on
40x40 patches of the BSD400 training images at one noise level; the last ``val`` training
images are held out, and :math:`\lambda, \mu` (and TV's weight) are tuned on them for each
task and noise level. BSD68 is used only for the final test numbers. Without the data
folders the tasks run on scikit-image's bundled images (and say so in their JSON).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.images import load_image_set, psnr
from ..inverse import (
    Blur,
    ConvexRegularizer,
    Denoising,
    LinearOperator,
    Tomography,
    noisy_copies,
    reconstruct,
    train_regularizer,
    tune_strength,
    tv_reconstruct,
)
from ..inverse.training import mean_psnr
from ..nn.conv import ConvGradNet

__all__ = [
    "CRR_NN_PUBLISHED",
    "WCRR_NN_PUBLISHED",
    "run_train",
    "run_denoise",
    "run_ct",
    "run_deblur",
    "run_convergence",
    "tune_tv",
    "to_tensors",
]

#: BSD68 mean PSNR (dB) at sigma = 5, 15, 25 (Goujon et al. 2023, convex; and the weakly convex WCRR-NN).
CRR_NN_PUBLISHED = {"5": 36.93, "15": 30.51, "25": 28.07}
WCRR_NN_PUBLISHED = {"5": 37.65, "15": 31.21, "25": 28.68}


def to_tensors(images: Sequence[np.ndarray], device: str | torch.device = "cpu") -> list[Tensor]:
    r"""Images as ``(1, 1, H, W)`` float32 tensors."""
    return [torch.as_tensor(im, dtype=torch.float32, device=device)[None, None] for im in images]


def _split(data_dir: str | None, val: int, limit: int | None) -> tuple[list, list, str]:
    images, source = load_image_set("bsd-train", data_dir)
    val = min(val, max(1, len(images) // 5))
    train, held = images[:-val], images[-val:]
    return (train[:limit] if limit else train), held, source


def make_regularizer(
    channels: Sequence[int] = (1, 8, 32), kernel_size: int = 7, knots: int = 21
) -> ConvexRegularizer:
    r"""The CRR-NN-sized regularizer: a single-layer spline mGradNet on a 1-8-32 multi-convolution."""
    return ConvexRegularizer(
        ConvGradNet(channels, kernel_size, knots=knots, span=0.1), lmbda=1.0, mu=1.0
    )


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


def run_train(
    *,
    data_dir: str | None = None,
    sigma: float = 5.0,
    sigmas: Sequence[float] = (5, 15, 25),
    steps: int = 10,
    iterations: int = 6000,
    batch_size: int = 128,
    channels: Sequence[int] = (1, 8, 32),
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
) -> tuple[ConvexRegularizer, dict[str, Any]]:
    r"""Trains one regularizer on the BSD400 training images and tunes it per noise level.

    ``time_limit`` caps the iterations to what fits (see
    :func:`~otgrad.inverse.train_regularizer`); ``init`` (a saved regularizer) warm-starts
    the training.

    Returns:
        The regularizer (on the CPU) and a record with the training curve, the tuned
        :math:`(\lambda, \mu)` per noise level and the validation PSNRs.
    """
    torch.manual_seed(seed)
    train, held, source = _split(data_dir, val, train_limit)
    reg = (ConvexRegularizer.load(init) if init else make_regularizer(channels)).to(device)
    options = dict(sigma=sigma, steps=steps, batch_size=batch_size, seed=seed, stride=stride)
    start = time.perf_counter()
    hist = train_regularizer(
        reg,
        train,
        iterations=iterations,
        checkpoint=checkpoint,
        time_limit=time_limit,
        progress=progress,
        **options,
    )
    seconds = time.perf_counter() - start
    clean = to_tensors(held, device)
    strengths, val_psnr = {}, {}
    base = (reg.lmbda, reg.mu)
    for s in sigmas:
        reg.set_strength(
            base[0] * (s / sigma) ** 2, base[1]
        )  # start from the noise-variance scaling
        lam, mu, score = tune_strength(reg, clean, noisy_copies(clean, s), rounds=tune_rounds)
        strengths[f"{float(s):g}"] = [lam, mu]
        val_psnr[f"{float(s):g}"] = score
    reg = reg.cpu()
    record = {
        "data": source,
        "train_images": len(train),
        "validation_images": len(held),
        "sigma_train": sigma,
        "t_steps": steps,
        "iterations": hist.steps,
        "batch_size": batch_size,
        "channels": list(channels),
        "parameters": sum(p.numel() for p in reg.parameters()),
        "train_seconds": seconds,
        "train_loss": hist.train_loss,
        "strengths": strengths,
        "validation_psnr": val_psnr,
        "device": str(device),
        "init": init,
    }
    return reg, record


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
        regs: Regularizers by name; each must carry ``metadata["strengths"]`` (the tuned
            :math:`(\lambda, \mu)` per noise level).
    """
    test, source = load_image_set("bsd68", data_dir, limit)
    clean = to_tensors(test, device)
    _, held, _ = _split(data_dir, val, None)
    held_t = to_tensors(held, device)
    out: dict[str, Any] = {
        "data": source,
        "images": len(test),
        "sigmas": list(sigmas),
        "results": {},
    }
    op = Denoising()
    for s in sigmas:
        key = f"{float(s):g}"
        noisy = noisy_copies(clean, s, seed=1234)  # test noise: another seed than validation
        row: dict[str, Any] = {"noisy": mean_psnr(lambda y: y, clean, noisy)}
        for name, reg in regs.items():
            lam, mu = reg.metadata["strengths"][key]
            reg = reg.to(device).set_strength(lam, mu)
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
            lam, _ = tune_tv(
                held_t,
                noisy_copies(held_t, s),
                op,
                grid=[s / 255 * f for f in (0.25, 0.5, 1, 2)],
                max_iter=tv_max_iter,
            )
            row["tv"] = mean_psnr(
                lambda y, lam=lam: tv_reconstruct(y, op, lam, max_iter=tv_max_iter, tol=tol).x,
                clean,
                noisy,
            )
            row["tv_lambda"] = lam
            row["tv_max_iter"] = tv_max_iter
        row["crr_nn_published"] = CRR_NN_PUBLISHED.get(key)
        row["wcrr_nn_published"] = WCRR_NN_PUBLISHED.get(key)
        out["results"][key] = row
    return out


def _ct_images(data_dir: str | None, size: int, limit: int | None) -> tuple[list, list, str]:
    from skimage.transform import resize

    train, source = load_image_set("ct-validation", data_dir)
    test, _ = load_image_set("ct-train", data_dir, limit)
    shrink = [resize(im, (size, size), anti_aliasing=True) for im in train + test]
    return shrink[: len(train)], shrink[len(train) :], source


def run_ct(
    reg: ConvexRegularizer,
    *,
    data_dir: str | None = None,
    size: int = 128,
    angles: int = 60,
    noise: float = 1.0,
    limit: int | None = 5,
    max_iter: int = 1000,
    tol: float = 1e-6,
    tune_rounds: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    r"""Sparse-view CT: FBP (scikit-image), TV and the learned regularizer, tuned on the
    validation phantoms (at most 300 iterations each) and tested on the first ``limit``
    training phantoms (at most ``max_iter`` iterations); all iterative methods start from
    the clipped FBP. The regularizer never saw CT images."""
    from skimage.transform import iradon

    val, test, source = _ct_images(data_dir, size, limit)
    op = Tomography(size, angles)
    gen = torch.Generator().manual_seed(0)

    def measure(images: list) -> tuple[list[Tensor], list[Tensor]]:
        xs = to_tensors(images)
        ys = [op.A(x) + noise * torch.randn(op.A(x).shape, generator=gen) for x in xs]
        return xs, ys

    val_x, val_y = measure(val)
    test_x, test_y = measure(test)
    bounds = (0.0, 1.0)

    def fbp(y: Tensor) -> Tensor:
        sino = y[0, 0].double().numpy().T
        rec = iradon(sino, theta=op.theta, filter_name="ramp", circle=True)
        return torch.as_tensor(rec, dtype=torch.float32)[None, None]

    # the iterative methods start from the (clipped) FBP: the minimizer does not depend on
    # the start (convexity), the number of iterations to reach it does
    val_0 = [fbp(y).clamp(0, 1) for y in val_y]
    test_0 = [fbp(y).clamp(0, 1) for y in test_y]

    def mean(solve, xs, ys, starts) -> float:  # iterative methods are box-bounded already
        return mean_psnr(lambda y, z: solve(y, z).clamp(0, 1), xs, ys, starts)

    out: dict[str, Any] = {
        "data": source,
        "size": size,
        "angles": angles,
        "noise": noise,
        "images": len(test),
        "start": "FBP",
    }
    out["fbp"] = mean(lambda y, z: fbp(y), test_x, test_y, test_0)

    def tv(lam: float, iterations: int):
        return lambda y, z: (
            tv_reconstruct(y, op, lam, x0=z, max_iter=iterations, tol=tol, bounds=bounds).x
        )

    tune_iter = min(max_iter, 300)
    grid = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
    best_tv = max((mean(tv(lam, tune_iter), val_x, val_y, val_0), lam) for lam in grid)
    out["tv_lambda"] = best_tv[1]
    out["tv"] = mean(tv(best_tv[1], max_iter), test_x, test_y, test_0)
    # learned regularizer: lambda, mu tuned on the validation phantoms, first lambda alone on
    # a decade grid (the data term's scale, ||A||^2, is far from denoising's), then
    # coarse-to-fine in both
    reg = reg.to(device)
    mu0 = reg.mu

    def score(lam: float) -> float:
        reg.set_strength(lam, mu0)
        return mean(
            lambda y, z: (
                reconstruct(
                    y, op, reg, x0=z, max_iter=tune_iter, tol=tol, bounds=bounds, record=False
                ).x
            ),
            val_x,
            val_y,
            val_0,
        )

    reg.set_strength(max((1.0, 10.0, 100.0, 1000.0), key=score), mu0)
    lam, mu, _ = tune_strength(
        reg,
        val_x,
        val_y,
        op,
        rounds=tune_rounds,
        bounds=bounds,
        x0=val_0,
        tol=tol,
        max_iter=tune_iter,
    )
    iters = []

    def solve(y: Tensor, z: Tensor) -> Tensor:
        r = reconstruct(y, op, reg, x0=z, max_iter=max_iter, tol=tol, bounds=bounds, record=False)
        iters.append(r.iterations)
        return r.x

    out["convex_regularizer"] = mean(solve, test_x, test_y, test_0)
    out["strength"] = [lam, mu]
    out["iterations"] = max(iters)
    return out


def run_deblur(
    reg: ConvexRegularizer,
    *,
    data_dir: str | None = None,
    blur_sigma: float = 1.5,
    noise: float = 2.0,
    images: int = 4,
    crop: int = 128,
    max_iter: int = 1000,
    tol: float = 1e-5,
    device: str = "cpu",
) -> dict[str, Any]:
    r"""Gaussian deblurring of crops of the first BSD68 images (noise std ``noise``/255),
    with :math:`\lambda, \mu` and TV's weight tuned on held-out training images."""
    test, source = load_image_set("bsd68", data_dir, images)
    _, held, _ = _split(data_dir, 40, None)
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
    reg = reg.to(device)
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
    reg, y = copy.deepcopy(reg).double(), y.double()
    out: dict[str, Any] = {}
    for name, kw in {
        "gradient descent": dict(accelerated=False),
        "FISTA": dict(accelerated=True, restart=False),
        "FISTA + restart": dict(accelerated=True, restart=True),
    }.items():
        r = reconstruct(y, operator, reg, max_iter=iterations, tol=1e-12, **kw)
        out[name] = [float(v.sum()) for v in r.objective]
    a = reconstruct(y, operator, reg, max_iter=5000, tol=1e-9)
    b = reconstruct(y, operator, reg, x0=torch.zeros_like(a.x), max_iter=5000, tol=1e-9)
    out["two_inits_relative_distance"] = float((a.x - b.x).norm() / a.x.norm())
    out["iterations_to_1e-9"] = [a.iterations, b.iterations]
    return out


def examples(
    reg: ConvexRegularizer, results: dict[str, dict], data_dir: str | None = None
) -> dict[str, dict[str, np.ndarray]]:
    r"""Example reconstructions with the parameters recorded in ``results`` (the task JSONs
    ``{"denoise": ..., "ct": ..., "deblur": ...}``), for figures: ``{task: {title: image}}``."""
    from skimage.transform import iradon

    out: dict[str, dict[str, np.ndarray]] = {}

    def title(name: str, x: Tensor, ref: Tensor) -> str:
        return f"{name} {float(psnr(x.clamp(0, 1), ref)):.2f} dB"

    if "denoise" in results:
        r = results["denoise"]
        key = max(r["results"], key=float)
        row = r["results"][key]
        img, _ = load_image_set("bsd68", data_dir, 1)
        x = to_tensors([img[0]])[0]
        y = noisy_copies([x], float(key), seed=1234)[0]
        reg.set_strength(*reg.metadata["strengths"][key])
        ours = reconstruct(y, Denoising(), reg, max_iter=2000, tol=1e-5, record=False).x
        fig = {"clean": x, title(f"noisy (sigma={key})", y, x): y, title("ours", ours, x): ours}
        if "tv_lambda" in row:
            tv = tv_reconstruct(y, Denoising(), row["tv_lambda"], max_iter=2000, tol=1e-5).x
            fig[title("TV", tv, x)] = tv
        out["denoise"] = {k: v[0, 0].clamp(0, 1).numpy() for k, v in fig.items()}
    if "ct" in results:
        r = results["ct"]
        _, test, _ = _ct_images(data_dir, r["size"], 1)
        op = Tomography(r["size"], r["angles"])
        x = to_tensors(test)[0]
        gen = torch.Generator().manual_seed(0)
        y = op.A(x) + r["noise"] * torch.randn(op.A(x).shape, generator=gen)
        fbp = torch.as_tensor(
            iradon(y[0, 0].double().numpy().T, theta=op.theta, filter_name="ramp", circle=True),
            dtype=torch.float32,
        )[None, None]
        z = fbp.clamp(0, 1)
        tv = tv_reconstruct(
            y, op, r["tv_lambda"], x0=z, max_iter=1000, tol=1e-6, bounds=(0.0, 1.0)
        ).x
        reg.set_strength(*r["strength"])
        ours = reconstruct(
            y, op, reg, x0=z, max_iter=1000, tol=1e-6, bounds=(0.0, 1.0), record=False
        ).x
        fig = {
            "phantom": x,
            title("FBP", fbp, x): fbp,
            title("TV", tv, x): tv,
            title("ours", ours, x): ours,
        }
        out["ct"] = {k: v[0, 0].clamp(0, 1).numpy() for k, v in fig.items()}
    if "deblur" in results:
        r = results["deblur"]
        img, _ = load_image_set("bsd68", data_dir, 1)
        x = to_tensors([img[0][: r["crop"], : r["crop"]]])[0]
        op = Blur(tuple(x.shape[-2:]), sigma=r["blur_sigma"])
        gen = torch.Generator().manual_seed(0)
        y = op.A(x) + r["noise"] / 255 * torch.randn(x.shape, generator=gen)
        tv = tv_reconstruct(y, op, r["tv_lambda"], max_iter=1000).x
        reg.set_strength(*r["strength"])
        ours = reconstruct(y, op, reg, max_iter=1000, record=False).x
        fig = {
            "clean": x,
            title("blurred", y, x): y,
            title("TV", tv, x): tv,
            title("ours", ours, x): ours,
        }
        out["deblur"] = {k: v[0, 0].clamp(0, 1).numpy() for k, v in fig.items()}
    return out
