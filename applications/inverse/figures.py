r"""Figures of the inverse-problem benchmarks: convergence curves and reconstructions."""

from __future__ import annotations

import os

from ..common import new_figure

__all__ = ["plot_convergence", "plot_images"]


def plot_convergence(record: dict, path: str | os.PathLike) -> None:
    r"""Objective gap :math:`F(x_k) - F^*` per iteration for the solvers in ``record``."""
    curves = {k: v for k, v in record.items() if isinstance(v, list) and len(v) > 2}
    best = min(min(v) for v in curves.values())
    fig = new_figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for name, values in curves.items():
        gap = [max(v - best, 1e-12 * max(1.0, abs(best))) for v in values]
        ax.semilogy(gap, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("F(x_k) - min F")
    ax.legend()
    ax.set_title("denoising objective (convex: one minimizer)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def plot_images(images: dict, path: str | os.PathLike, ncols: int | None = None) -> None:
    r"""A row of grayscale images ``{title: (H, W) array}`` in :math:`[0, 1]`."""
    n = len(images)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig = new_figure(figsize=(2.6 * ncols, 2.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, im) in zip(axes.flat, images.items(), strict=False):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
