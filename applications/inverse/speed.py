r"""Time measurements: reconstruction time per image, as a user meets it (denoising 256x256
crops of BSD68 with the shipped regularizer, beside TV solved by
``otgrad.inverse.tv_reconstruct`` at the same tolerance and scikit-image's
``denoise_tv_chambolle``, its weight tuned on held-out images), and the seconds per training
iteration of each regularizer architecture."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from otgrad.data.images import load_image_set, psnr
from otgrad.inverse import ConvexRegularizer, Denoising, noisy_copies, reconstruct, tv_reconstruct

from .study import make_network, split_images, to_tensors

__all__ = ["crops", "run_speed", "run_train_speed", "ARCHITECTURES"]

#: The networks timed by :func:`run_train_speed`: CRR-NN's size and twice its width.
ARCHITECTURES = [
    {"arch": "crr", "channels": (1, 8, 32)},
    {"arch": "cascade", "channels": (1, 8, 32), "layers": 2},
    {"arch": "modular", "channels": (1, 8, 32), "modules": 8},
    {"arch": "crr", "channels": (1, 8, 64)},
    {"arch": "modular", "channels": (1, 8, 64), "modules": 16},
]


def crops(images: Sequence[np.ndarray], size: int) -> list[Tensor]:
    r"""The centered ``size`` x ``size`` crop of each image, as ``(1, 1, size, size)`` tensors."""
    out = []
    for im in images:
        top, left = (im.shape[0] - size) // 2, (im.shape[1] - size) // 2
        out.append(im[top : top + size, left : left + size])
    return to_tensors(out)


def _timed(solve: Callable[[Tensor], Any], clean: list[Tensor], noisy: list[Tensor]) -> dict:
    r"""Mean seconds, iterations and PSNR of ``solve`` over the images (one at a time, after a
    warm-up run on the first)."""
    solve(noisy[0])
    seconds, iterations, scores = [], [], []
    for x, y in zip(clean, noisy, strict=True):
        start = time.perf_counter()
        out = solve(y)
        seconds.append(time.perf_counter() - start)
        image = (out.x if hasattr(out, "x") else out).to(x.dtype)
        iterations.append(getattr(out, "iterations", None))
        scores.append(float(psnr(image.clamp(0, 1), x)))
    its = [i for i in iterations if i is not None]
    return {
        "seconds": float(np.mean(seconds)),
        "iterations": float(np.mean(its)) if its else None,
        "psnr": float(np.mean(scores)),
    }


def _skimage_weight(held: list[Tensor], sigma: float, grid: Sequence[float]) -> float:
    r"""The weight of ``denoise_tv_chambolle`` with the best mean PSNR on held-out images."""
    from skimage.restoration import denoise_tv_chambolle

    noisy = noisy_copies(held, sigma, seed=1)

    def score(w: float) -> float:
        outs = [torch.as_tensor(denoise_tv_chambolle(y[0, 0].numpy(), weight=w)) for y in noisy]
        return float(
            np.mean(
                [float(psnr(o[None, None].float(), x)) for o, x in zip(outs, held, strict=True)]
            )
        )

    return max(grid, key=score)


def _row(reg: ConvexRegularizer, lam: float, weight: float, clean, noisy, tols) -> dict:
    r"""One noise level: each solver's mean seconds, iterations and PSNR."""
    from skimage.restoration import denoise_tv_chambolle

    row: dict[str, Any] = {"skimage_weight": weight, "tv_lambda": lam}
    for tol in tols:
        row[f"ours_tol{tol:g}"] = _timed(
            lambda y, tol=tol: reconstruct(y, Denoising(), reg, tol=tol, max_iter=2000),
            clean, noisy,
        )  # fmt: skip
        row[f"tv_tol{tol:g}"] = _timed(
            lambda y, tol=tol: tv_reconstruct(y, Denoising(), lam, tol=tol, max_iter=2000),
            clean, noisy,
        )  # fmt: skip
    row["skimage_tv"] = _timed(
        lambda y: torch.as_tensor(denoise_tv_chambolle(y[0, 0].numpy(), weight=weight))[None, None],
        clean, noisy,
    )  # fmt: skip
    return row


def run_speed(
    reg: ConvexRegularizer,
    tv_lambdas: dict[str, float],
    *,
    data_dir: str | None,
    sigmas: Sequence[float] = (15, 25),
    size: int = 256,
    images: int = 4,
    tols: Sequence[float] = (1e-4, 1e-5),
) -> dict[str, Any]:
    r"""Seconds, iterations and PSNR per image of the regularizer, TV and scikit-image's TV.

    Arguments:
        reg: The regularizer, with strengths recorded per noise level.
        tv_lambdas: The TV weight per noise level (tuned on held-out images).
        tols: The relative-change tolerances of both iterative solvers.
    """
    test, _ = load_image_set("bsd68", data_dir, images)
    clean = crops(test, size)
    held = crops(split_images(data_dir, 2, 2)[1], size)
    out: dict[str, Any] = {"images": len(clean), "size": size, "threads": torch.get_num_threads()}
    grid = [0.0025 * 2 ** (k / 2) for k in range(15)]  # 0.0025 to 0.32
    for sigma in sigmas:
        key = f"{sigma:g}"
        weight = _skimage_weight(held, sigma, grid)
        row = _row(reg.use_strength(sigma), tv_lambdas[key], weight, clean,
                   noisy_copies(clean, sigma), tols)  # fmt: skip
        out[key] = row
    return out


def run_train_speed(
    data_dir: str | None,
    *,
    t_steps: int = 10,
    batch_size: int = 128,
    patch: int = 40,
    steps: tuple[int, int] = (4, 12),
    device: str = "cpu",
) -> list[dict[str, Any]]:
    r"""Seconds per training iteration of each network of :data:`ARCHITECTURES`: the
    difference of two fits of ``steps`` iterations, over their difference (the setup and
    the first steps cancel), after an untimed fit (the device's warm-up)."""
    train, _, _ = split_images(data_dir, 40, 40)
    rows = []
    for spec in ARCHITECTURES:
        seconds = []
        for n in (steps[0], *steps):
            net = make_network(**spec)
            reg = ConvexRegularizer(
                net, sigma=5, t_steps=t_steps, iterations=n, epochs=1, batch_size=batch_size,
                patch=patch, seed=0, progress=False, device=device,
            ).fit(train)  # fmt: skip
            seconds.append(reg.history_.seconds)
        seconds = seconds[1:]
        rows.append({
            **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
            "parameters": sum(p.numel() for p in net.parameters()),
            "seconds_per_iteration": (seconds[1] - seconds[0]) / (steps[1] - steps[0]),
        })  # fmt: skip
    return rows
