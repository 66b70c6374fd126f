r"""Grayscale images for inverse problems: the BSD and CT sets, with a bundled fallback.

The benchmark sets live outside the package (``../shared/data`` in the project checkout,
or any folder passed as ``data_dir``). Without them, :func:`load_image_set` falls back to
the images that ship with scikit-image (and generated phantoms for CT), so the
applications still run on a user's machine: the numbers then are not the benchmark's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "load_images",
    "load_image_set",
    "psnr",
    "patch_sampler",
    "check_images",
    "DATA_DIR",
]

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"

_SETS = {
    "bsd-train": ("bsd", "train"),
    "bsd68": ("bsd", "Set68"),
    "set12": ("bsd", "Set12"),
    "ct-train": ("ct", "train"),
    "ct-validation": ("ct", "validation"),
}


def load_images(folder: str | os.PathLike, limit: int | None = None) -> list[np.ndarray]:
    r"""Loads the PNG images of a folder (sorted by name) as float64 arrays in :math:`[0, 1]`."""
    from PIL import Image

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif"))
    if not files:
        raise ValueError(f"no images in {folder}")
    out = []
    for p in files[:limit]:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L") if im.mode not in ("L", "I;16") else im)
        out.append(a.astype(np.float64) / (65535.0 if a.dtype == np.uint16 else 255.0))
    return out


def _fallback(name: str, limit: int | None) -> list[np.ndarray]:
    r"""scikit-image's images (BSD sets) or generated phantoms (CT sets); the training and
    test sets share no image."""
    if name.startswith("ct"):
        return _phantoms(name, limit)
    from skimage import data, transform
    from skimage.color import rgb2gray

    gray = [data.camera(), data.coins(), data.moon(), data.text(), data.page()]
    gray += [rgb2gray(getattr(data, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    imgs = [
        np.asarray(g, dtype=np.float64) / (255.0 if np.asarray(g).dtype == np.uint8 else 1.0)
        for g in gray
    ]
    # a deterministic split: training crops from the first images, test images from the rest
    if name == "bsd-train":  # every whole 180 x 180 window
        crops = [
            im[i : i + 180, j : j + 180]
            for im in imgs[:5]
            for i in range(0, im.shape[0] - 179, 180)
            for j in range(0, im.shape[1] - 179, 180)
        ]
        return crops[:limit]
    if name == "set12":  # square test images, as Set12's
        return [_square(im, 256) for im in imgs[5:]][:limit]
    return [transform.resize(im, (160, 240), anti_aliasing=True) for im in imgs[5:]][:limit]


def _square(image: np.ndarray, size: int) -> np.ndarray:
    from skimage import transform

    h, w = image.shape
    k = min(h, w)
    top, left = (h - k) // 2, (w - k) // 2
    return transform.resize(
        image[top : top + k, left : left + k], (size, size), anti_aliasing=True
    )


def _phantoms(name: str, limit: int | None) -> list[np.ndarray]:
    r"""Shepp–Logan (training set only) and random ellipse phantoms, 256 x 256 in [0, 1]."""
    from skimage import data, transform

    imgs = []
    if name == "ct-train":
        imgs.append(transform.resize(data.shepp_logan_phantom(), (256, 256), anti_aliasing=True))
    rng = np.random.default_rng(0 if name == "ct-train" else 1)
    yy, xx = np.mgrid[-1:1:256j, -1:1:256j]
    while len(imgs) < (limit or 8):
        img = np.zeros((256, 256))
        for _ in range(8):
            cx, cy, a, b = rng.uniform(-0.5, 0.5, 2).tolist() + rng.uniform(0.05, 0.4, 2).tolist()
            t = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
            v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
            img[(u / a) ** 2 + (v / b) ** 2 <= 1] += rng.uniform(0.1, 0.5)
        imgs.append(np.clip(img * (xx**2 + yy**2 <= 0.9), 0, 1))
    return imgs[:limit]


def load_image_set(
    name: str, data_dir: str | os.PathLike | None = None, limit: int | None = None
) -> tuple[list[np.ndarray], str]:
    r"""Loads a benchmark image set, or the bundled fallback when its folder is missing.

    Arguments:
        name: ``"bsd-train"`` (BSD400), ``"bsd68"``, ``"set12"``, ``"ct-train"`` or
            ``"ct-validation"``.
        data_dir: The folder holding ``bsd/`` and ``ct/`` (default ``../shared/data``
            beside the project checkout).
        limit: Load at most this many images.

    Returns:
        The images (float64 arrays in :math:`[0, 1]`) and their source: the folder, or
        ``"fallback:scikit-image"``.
    """
    if name not in _SETS:
        raise ValueError(f"name must be one of {sorted(_SETS)}, got {name!r}")
    folder = Path(data_dir or DATA_DIR).joinpath(*_SETS[name])
    if folder.is_dir():
        return load_images(folder, limit), str(folder)
    return _fallback(name, limit), "fallback:scikit-image"


def psnr(x: Tensor, ref: Tensor, data_range: float = 1.0) -> Tensor:
    r"""The peak signal-to-noise ratio in dB of each image of a batch, shape ``(B,)``."""
    if x.shape != ref.shape:
        raise ValueError(
            f"x and ref must have the same shape, got {tuple(x.shape)} and {tuple(ref.shape)}"
        )
    mse = ((x - ref) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def check_images(images: Any, name: str = "images") -> list[np.ndarray]:
    r"""Returns ``images`` as a list of float64 arrays; a ``ValueError`` (``TypeError`` for
    a wrong kind) naming ``name`` unless it is a nonempty list of nonempty 2D arrays or
    tensors with finite values in :math:`[0, 1]` (8-bit images must be divided by 255)."""
    if not isinstance(images, (list, tuple)) or not images:
        raise ValueError(f"{name} must be a nonempty list of 2D arrays")
    out = []
    for i, im in enumerate(images):
        if isinstance(im, Tensor):
            im = im.detach().cpu().numpy()
        if not isinstance(im, np.ndarray) or im.dtype.kind not in "fiub":
            raise TypeError(f"{name}[{i}] must be a numeric 2D array, got {type(im).__name__}")
        if im.ndim != 2 or im.size == 0:
            raise ValueError(f"{name}[{i}] must be a nonempty 2D array, got shape {im.shape}")
        im = im.astype(np.float64)
        if not np.isfinite(im).all():
            raise ValueError(f"{name}[{i}] contains NaN or infinite values")
        if im.min() < 0 or im.max() > 1:
            raise ValueError(
                f"{name}[{i}] has values in [{im.min():.4g}, {im.max():.4g}]; images must be "
                "in [0, 1] (divide 8-bit images by 255)"
            )
        out.append(im)
    return out


def patch_sampler(
    images: list[np.ndarray],
    size: int = 40,
    batch_size: int = 128,
    scales: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7),
    sigma: float | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    stride: int | None = None,
) -> Callable[[torch.Generator], tuple[Tensor, ...]]:
    r"""A sampler of random training patches for :func:`otgrad.train.fit`.

    Each call draws ``batch_size`` patches of ``size`` x ``size`` pixels from random images
    at a random scale of ``scales`` (images rescaled once, as in the usual BSD400
    protocol), with random flips and 90° rotations.

    Arguments:
        images: The training images (2D arrays in :math:`[0, 1]`).
        sigma: If given, the sampler also returns a noisy copy with Gaussian noise of
            standard deviation ``sigma`` (same scale as the images).
        stride: If given, all patches on a grid of this stride are extracted once (a bank
            on ``device``; stride 10 gives the usual 238,400 BSD400 patches) and batches are
            drawn from it by index, with one random flip/rotation per batch: fast on a GPU.

    Returns:
        ``generator -> (clean,)`` or ``(clean, noisy)``, each ``(batch_size, 1, size, size)``.
    """
    from skimage.transform import rescale

    images = check_images(images)
    pyramid = []
    for s in scales:
        for im in images:
            r = im if s == 1.0 else rescale(im, s, anti_aliasing=True)
            if min(r.shape) >= size:
                pyramid.append(torch.as_tensor(r, dtype=dtype))
    if not pyramid:
        raise ValueError(f"no image is at least {size} pixels on a side")

    if stride is not None:  # a bank of all patches on a stride-``stride`` grid, sampled by index
        bank = torch.cat(
            [
                im.unfold(0, size, stride).unfold(1, size, stride).reshape(-1, size, size)
                for im in pyramid
            ]
        ).to(device)

        def sample_bank(gen: torch.Generator) -> tuple[Tensor, ...]:
            idx = torch.randint(bank.shape[0], (batch_size,), generator=gen).to(device)
            k = int(torch.randint(8, (1,), generator=gen))  # one flip/rotation per batch
            out = torch.rot90(bank[idx], k % 4, (-2, -1))[:, None]
            out = out.flip(-1) if k >= 4 else out
            if sigma is None:
                return (out,)
            noise = torch.randn(out.shape, generator=gen, dtype=dtype).to(device)
            return out, out + sigma * noise

        return sample_bank

    def sample(gen: torch.Generator) -> tuple[Tensor, ...]:
        idx = torch.randint(len(pyramid), (batch_size,), generator=gen)
        out = torch.empty(batch_size, 1, size, size, dtype=dtype)
        for b, i in enumerate(idx.tolist()):
            im = pyramid[i]
            r = int(torch.randint(im.shape[0] - size + 1, (1,), generator=gen))
            c = int(torch.randint(im.shape[1] - size + 1, (1,), generator=gen))
            p = im[r : r + size, c : c + size]
            k = int(torch.randint(8, (1,), generator=gen))
            p = torch.rot90(p, k % 4)
            out[b, 0] = p.flip(-1) if k >= 4 else p
        out = out.to(device)
        if sigma is None:
            return (out,)
        noise = torch.randn(out.shape, generator=gen, dtype=dtype).to(device)
        return out, out + sigma * noise

    return sample
