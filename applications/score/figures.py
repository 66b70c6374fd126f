r"""Figures of the score benchmarks: samples, learned densities and score fields."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..common import new_figure, scatter

__all__ = ["plot_score_samples", "plot_score_densities", "plot_score_fields", "toy2d_figures"]

_COLORS = {
    "data": "k",
    "gradnet": "tab:blue",
    "gradnet-2": "tab:cyan",
    "gradnet-lse": "tab:purple",
    "mlp": "tab:orange",
    "gradmlp": "tab:green",
}


def plot_score_samples(figs: dict, path: str | os.PathLike) -> None:
    r"""Samples of each model drawn over the data (grey), one column per set.

    Arguments:
        figs: ``{set: {"data": array, model: samples, ...}}`` (``(n, 2)`` arrays).
        path: The PNG file.
    """
    sets = list(figs)
    rows = ["data"] + [k for k in next(iter(figs.values())) if k != "data"]
    fig = new_figure(figsize=(1.9 * len(sets), 1.9 * len(rows)))
    axes = fig.subplots(len(rows), len(sets), squeeze=False)
    for j, s in enumerate(sets):
        ref = figs[s]["data"]
        lo, hi = ref.min(0), ref.max(0)
        for i, r in enumerate(rows):
            ax = axes[i, j]
            if r != "data":  # the data underneath, for comparison
                ax.scatter(ref[:, 0], ref[:, 1], s=1, alpha=0.25, color="0.7", rasterized=True)
            if r in figs[s]:
                scatter(ax, figs[s][r], f"{s}: {r}" if i == 0 else r, _COLORS.get(r, "tab:red"))
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def plot_score_densities(figs: dict, path: str | os.PathLike) -> None:
    r"""The learned densities per set: :math:`e^{-E}` normalized on a grid, at the smallest
    noise level (``"log_density"``) and at the small level of :func:`plot_score_fields`
    (``"energy_small"``), one row each.

    Arguments:
        figs: ``{set: {"log_density": (n, n), "energy_small": (n, n), "sigma_small": float,
            "box": (x0, x1, y0, y1)}}``.
        path: The PNG file.
    """
    sets = list(figs)
    rows = [("log_density", "σ min"), ("energy_small", "σ = 0.05 s")]
    fig = new_figure(figsize=(1.9 * len(sets), 4.2))
    axes = fig.subplots(2, len(sets), squeeze=False)
    for j, s in enumerate(sets):
        f = figs[s]
        for i, (key, label) in enumerate(rows):
            v = torch.as_tensor(f[key])
            dens = v.exp() if key == "log_density" else (v.min() - v).exp()
            ax = axes[i, j]
            ax.imshow(
                dens.numpy(), origin="lower", extent=tuple(f["box"]), cmap="magma",
                interpolation="bilinear",
            )  # fmt: skip
            ax.set_title(f"{s}, {label}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def plot_score_fields(figs: dict, path: str | os.PathLike) -> None:
    r"""Energy contours with the score field (quiver) at two noise levels, one row per set.

    Arguments:
        figs: ``{set: {"energy_small", "energy_large": (n, n), "score_small",
            "score_large": (q, q, 2), "quiver": (q, q, 2), "box", "sigma_small",
            "sigma_large"}}``.
        path: The PNG file.
    """
    sets = list(figs)
    fig = new_figure(figsize=(7, 3.3 * len(sets)))
    axes = fig.subplots(len(sets), 2, squeeze=False)
    for i, s in enumerate(sets):
        f = figs[s]
        x0, x1, y0, y1 = f["box"]
        n = f["energy_small"].shape[0]
        gx = torch.linspace(float(x0), float(x1), n)
        gy = torch.linspace(float(y0), float(y1), n)
        for j, tag in enumerate(("small", "large")):
            ax = axes[i, j]
            e = torch.as_tensor(f[f"energy_{tag}"])
            e = e - e.min()
            ax.contourf(gx, gy, e.clamp(max=float(torch.quantile(e, 0.9))), levels=20,
                        cmap="viridis_r")  # fmt: skip
            q, v = f["quiver"], f[f"score_{tag}"]
            ax.quiver(q[..., 0], q[..., 1], v[..., 0], v[..., 1], color="w", width=0.004)
            ax.set_title(f"{s}: energy and score, sigma = {f[f'sigma_{tag}']:.2g}", fontsize=9)
            ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def toy2d_figures(rows: list[dict], models: list[str], out: str) -> None:
    r"""Takes the figure arrays out of the toy rows (their ``"_fig"`` entries) and writes
    ``score_samples.png``, ``score_densities.png``, ``score_fields.png`` and the arrays
    (``score_figure_data.npz``) to ``out``."""
    figs: dict = {}
    for row in rows:
        f = row.pop("_fig")
        entry = figs.setdefault(row["set"], {})
        entry[row["model"]] = f.pop("samples")
        entry.update(f)
    samples = {
        s: {k: v for k, v in f.items() if k == "data" or k in models} for s, f in figs.items()
    }
    plot_score_samples(samples, os.path.join(out, "score_samples.png"))
    dens = {s: f for s, f in figs.items() if "log_density" in f}
    if dens:
        plot_score_densities(dens, os.path.join(out, "score_densities.png"))
        keep = [s for s in ("8gaussians", "checkerboard", "2spirals") if s in dens]
        plot_score_fields(
            {s: dens[s] for s in keep[:2] or list(dens)[:1]},
            os.path.join(out, "score_fields.png"),
        )
    np.savez_compressed(
        os.path.join(out, "score_figure_data.npz"),
        **{f"{s}/{k}": np.asarray(v) for s, f in figs.items() for k, v in f.items()},
    )
