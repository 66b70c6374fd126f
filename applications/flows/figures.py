r"""Figures of the flow benchmarks: each flow's density and samples beside the data."""

from __future__ import annotations

import os

import numpy as np
import torch

from ..common import new_figure, scatter

__all__ = ["plot_flow_densities", "toy2d_figures"]


def plot_flow_densities(figs: dict, path: str | os.PathLike) -> None:
    r"""Test data, then each flow's density (exp of its exact log-density on a grid) and
    samples, one column per set.

    Arguments:
        figs: ``{set: {"data": (n, 2), "box": (x0, x1, y0, y1),
            model: {"log_density": (m, m), "samples": (n, 2)}}}``.
        path: The PNG file.
    """
    sets = list(figs)
    models = [k for k in figs[sets[0]] if k not in ("data", "box")]
    rows = [("data", None)] + [(k, part) for k in models for part in ("density", "samples")]
    fig = new_figure(figsize=(1.9 * len(sets), 1.9 * len(rows)))
    axes = fig.subplots(len(rows), len(sets), squeeze=False)
    for j, s in enumerate(sets):
        f = figs[s]
        box = tuple(float(v) for v in f["box"])
        for i, (k, part) in enumerate(rows):
            ax = axes[i, j]
            if k == "data":
                scatter(ax, f["data"], f"{s}: data", "k")
            elif part == "density":
                dens = torch.as_tensor(f[k]["log_density"]).exp().numpy()
                ax.imshow(dens, origin="lower", extent=box, cmap="magma", interpolation="bilinear")
                ax.set_title(f"{k} density", fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                scatter(ax, f[k]["samples"], f"{k} samples", "tab:blue")
            ax.set_xlim(box[0], box[1])
            ax.set_ylim(box[2], box[3])
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def toy2d_figures(rows: list[dict], models: list[str], out: str) -> None:
    r"""Takes the figure arrays out of the toy rows (their ``"_fig"`` entries) and writes
    ``flows_toy2d.png`` (when every set has data and densities) and the arrays
    (``flows_figure_data.npz``) to ``out``."""
    figs: dict = {}
    for row in rows:
        f = row.pop("_fig")
        entry = figs.setdefault(row["set"], {"box": f["box"]})
        if "data" in f:
            entry["data"] = f["data"]
        entry[row["model"]] = {k: v for k, v in f.items() if k not in ("data", "box")}
    if all("data" in f and "log_density" in f.get(models[0], {}) for f in figs.values()):
        plot_flow_densities(figs, os.path.join(out, "flows_toy2d.png"))
    np.savez_compressed(
        os.path.join(out, "flows_figure_data.npz"),
        **{
            f"{s}/{k}" + (f"/{kk}" if isinstance(v, dict) else ""): np.asarray(vv)
            for s, f in figs.items()
            for k, v in f.items()
            for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)])
        },
    )
