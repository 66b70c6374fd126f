r"""Color transfer: the RGB pixel cloud of one image mapped onto another's."""

from __future__ import annotations

import os

import numpy as np
import torch

from otgrad.ot import BrenierMap, GaussianMap, wasserstein2

from ..common import new_figure

__all__ = ["run_color_transfer", "plot_color_transfer"]


def run_color_transfer(out: str, *, quick: bool = False, seed: int = 0) -> dict:
    r"""Maps the RGB pixel cloud of scikit-learn's ``china.jpg`` onto that of ``flower.jpg``
    and writes ``color_transfer.png`` (source, target, result) to ``out``."""
    from sklearn.datasets import load_sample_images

    torch.set_num_threads(2)
    images = load_sample_images().images
    src, tgt = (im.astype(np.float64) / 255 for im in images[:2])
    rng = np.random.default_rng(seed)
    ps, pt = src.reshape(-1, 3), tgt.reshape(-1, 3)
    n = 2000 if quick else 20000
    X, Y = ps[rng.choice(len(ps), n, replace=False)], pt[rng.choice(len(pt), n, replace=False)]
    # pixel clouds sit on a few colors; a little noise makes them absolutely continuous
    X = X + rng.uniform(-0.5, 0.5, X.shape) / 255
    Y = Y + rng.uniform(-0.5, 0.5, Y.shape) / 255
    est = BrenierMap(steps=100 if quick else 2000, seed=seed, progress=False, device="cpu")
    est.fit(X, Y)
    mapped = np.clip(est.transform(ps), 0, 1).reshape(src.shape)
    k = 500 if quick else 3000
    Xe, Ye = ps[rng.choice(len(ps), k, replace=False)], pt[rng.choice(len(pt), k, replace=False)]
    row = dict(
        task="color",
        n_train=n,
        seconds=est.fit_seconds_,
        w2_source=wasserstein2(Xe, Ye),
        w2_mapped=wasserstein2(np.clip(est.transform(Xe), 0, 1), Ye),
        w2_linear=wasserstein2(np.clip(GaussianMap().fit(X, Y).transform(Xe), 0, 1), Ye),
    )
    os.makedirs(out, exist_ok=True)
    plot_color_transfer(src, tgt, mapped, os.path.join(out, "color_transfer.png"))
    row["figure"] = "color_transfer.png"
    return row


def plot_color_transfer(src: np.ndarray, tgt: np.ndarray, mapped: np.ndarray, path: str) -> None:
    r"""The source image, the target image and the source in the target's colors."""
    fig = new_figure(figsize=(15, 4.2))
    titles = ("source (china.jpg)", "target palette (flower.jpg)", "source, target's colors")
    for a, im, title in zip(fig.subplots(1, 3), (src, tgt, mapped), titles, strict=True):
        a.imshow(im)
        a.set_title(title)
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
