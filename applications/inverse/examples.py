r"""Example reconstructions for the figures, rebuilt with the parameters recorded in the
task results."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from otgrad.data.images import load_image_set, psnr
from otgrad.inverse import (
    Blur,
    ConvexRegularizer,
    Denoising,
    Tomography,
    noisy_copies,
    reconstruct,
    tv_reconstruct,
)

from .study import ct_images, fbp, to_tensors

__all__ = ["examples"]


def _title(name: str, x: Tensor, ref: Tensor) -> str:
    return f"{name} {float(psnr(x.clamp(0, 1), ref)):.2f} dB"


def _images(ref: str, x: Tensor, **reconstructions: Tensor) -> dict[str, np.ndarray]:
    r"""The reference image ``x`` (titled ``ref``), then each reconstruction titled with
    its PSNR, as ``{title: (H, W) array}`` clipped to [0, 1]."""
    fig = {ref: x} | {_title(name, v, x): v for name, v in reconstructions.items()}
    return {k: v[0, 0].clamp(0, 1).numpy() for k, v in fig.items()}


def _denoise(reg: ConvexRegularizer, r: dict, data_dir: str | None) -> dict[str, np.ndarray]:
    key = max(r["results"], key=float)
    row = r["results"][key]
    img, _ = load_image_set("bsd68", data_dir, 1)
    x = to_tensors([img[0]])[0]
    y = noisy_copies([x], float(key), seed=1234)[0]
    reg.use_strength(key)
    ours = reconstruct(y, Denoising(), reg, max_iter=2000, tol=1e-5, record=False).x
    fig = {f"noisy (sigma={key})": y, "ours": ours}
    if "tv_lambda" in row:
        fig["TV"] = tv_reconstruct(y, Denoising(), row["tv_lambda"], max_iter=2000, tol=1e-5).x
    return _images("clean", x, **fig)


def _ct(reg: ConvexRegularizer, r: dict, data_dir: str | None) -> dict[str, np.ndarray]:
    _, test, _ = ct_images(data_dir, r["size"], 1)
    op = Tomography(r["size"], r["angles"])
    x = to_tensors(test)[0]
    gen = torch.Generator().manual_seed(0)
    y = op.A(x) + r["noise"] * torch.randn(op.A(x).shape, generator=gen)
    start = fbp(op, y)
    z = start.clamp(0, 1)
    bounds = (0.0, 1.0)
    tv = tv_reconstruct(y, op, r["tv_lambda"], x0=z, max_iter=1000, tol=1e-6, bounds=bounds).x
    reg.set_strength(*r["strength"])
    ours = reconstruct(y, op, reg, x0=z, max_iter=1000, tol=1e-6, bounds=bounds, record=False).x
    return _images("phantom", x, FBP=start, TV=tv, ours=ours)


def _deblur(reg: ConvexRegularizer, r: dict, data_dir: str | None) -> dict[str, np.ndarray]:
    img, _ = load_image_set("bsd68", data_dir, 1)
    x = to_tensors([img[0][: r["crop"], : r["crop"]]])[0]
    op = Blur(tuple(x.shape[-2:]), sigma=r["blur_sigma"])
    gen = torch.Generator().manual_seed(0)
    y = op.A(x) + r["noise"] / 255 * torch.randn(x.shape, generator=gen)
    tv = tv_reconstruct(y, op, r["tv_lambda"], max_iter=1000).x
    reg.set_strength(*r["strength"])
    ours = reconstruct(y, op, reg, max_iter=1000, record=False).x
    return _images("clean", x, blurred=y, TV=tv, ours=ours)


_EXAMPLES = {"denoise": _denoise, "ct": _ct, "deblur": _deblur}


def examples(
    reg: ConvexRegularizer, results: dict[str, dict], data_dir: str | None = None
) -> dict[str, dict[str, np.ndarray]]:
    r"""Example reconstructions with the parameters recorded in ``results`` (the task JSONs
    ``{"denoise": ..., "ct": ..., "deblur": ...}``), for figures: ``{task: {title: image}}``."""
    return {
        task: f(reg, results[task], data_dir) for task, f in _EXAMPLES.items() if task in results
    }
