r"""Transport between two classes of scikit-learn's 8x8 digits, in 64 dimensions."""

from __future__ import annotations

import os

import numpy as np
import torch

from otgrad.ot import BrenierMap, GaussianMap, wasserstein2

from ..common import new_figure

__all__ = ["digit_sets", "run_digits", "plot_digits"]

INTERPOLATION = (0.25, 0.5, 0.75)


def digit_sets(source: int, target: int, seed: int = 0) -> dict[str, np.ndarray]:
    r"""The images of two digit classes as points of :math:`[0, 1]^{64}`, split 80 / 20 into
    training and held-out sets.

    The pixels are integers 0 to 16; a uniform jitter of one grey level makes the sets
    absolutely continuous (Brenier's theorem needs a source with a density), and pixels
    that are blank in every image get a spread of one level instead of none.

    Returns:
        ``X``, ``Y`` (training images of ``source`` and ``target``), ``X_test``, ``Y_test``.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    out = {}
    for name, label in (("X", source), ("Y", target)):
        images = digits.data[digits.target == label]
        images = (images + rng.uniform(0.0, 1.0, images.shape)) / 17.0
        images = images[rng.permutation(len(images))]
        cut = int(0.8 * len(images))
        out[name], out[f"{name}_test"] = images[:cut], images[cut:]
    return out


def run_digits(
    out: str, *, source: int = 1, target: int = 7, quick: bool = False, seed: int = 0
) -> dict:
    r"""Fits the map from digit ``source`` to digit ``target`` and writes ``digits.png``
    (held-out source images, the interpolation :math:`(1 - t) x + t T(x)`, :math:`T(x)`
    and the linear map's image) to ``out``; scores :math:`W_2` on the held-out images.
    The full run is 3000 steps or 10 minutes, whichever ends first (two threads)."""
    torch.set_num_threads(2)
    data = digit_sets(source, target, seed)
    est = BrenierMap(
        steps=100 if quick else 3000,
        time_limit=None if quick else 600.0,
        seed=seed,
        progress=False,
        device="cpu",
    )
    est.fit(data["X"], data["Y"])
    linear = GaussianMap().fit(data["X"], data["Y"])
    Xt, Yt = data["X_test"], data["Y_test"]
    row = dict(
        task="digits",
        source=source,
        target=target,
        d=Xt.shape[1],
        n_train=[len(data["X"]), len(data["Y"])],
        n_test=[len(Xt), len(Yt)],
        steps=est.history_.steps,
        seconds=est.fit_seconds_,
        w2_source=wasserstein2(Xt, Yt),
        w2_mapped=wasserstein2(est.transform(Xt), Yt),
        w2_linear=wasserstein2(linear.transform(Xt), Yt),
        w2_target_sets=wasserstein2(data["Y"][: len(Yt)], Yt),
    )
    os.makedirs(out, exist_ok=True)
    plot_digits(est, linear, Xt[:8], os.path.join(out, "digits.png"))
    row["figure"] = "digits.png"
    return row


def plot_digits(est: BrenierMap, linear: GaussianMap, x: np.ndarray, path: str) -> None:
    r"""One row per source image: the image, the interpolation towards :math:`T(x)`,
    :math:`T(x)` and the linear (Bures) map of the image."""
    mapped, lin = est.transform(x), linear.transform(x)
    columns = [x] + [(1 - t) * x + t * mapped for t in INTERPOLATION] + [mapped, lin]
    titles = ["x"] + [f"t = {t:g}" for t in INTERPOLATION] + ["T(x)", "linear map"]
    fig = new_figure(figsize=(1.3 * len(columns), 1.3 * len(x)))
    axes = fig.subplots(len(x), len(columns), squeeze=False)
    for i in range(len(x)):
        for j, images in enumerate(columns):
            ax = axes[i, j]
            ax.imshow(np.clip(images[i], 0, 1).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
