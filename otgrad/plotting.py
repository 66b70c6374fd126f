r"""Figures shared by the applications (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .data.fields import GradientField, unit_grid  # noqa: E402
from .nn.base import GradientNetwork  # noqa: E402

__all__ = ["plot_field_fit"]


def plot_field_fit(
    net: GradientNetwork, field: GradientField, path: str | os.PathLike, title: str = ""
) -> None:
    r"""Saves a three-panel figure: the learned potential's contours with the learned
    field (quiver), the true field, and the error norm :math:`\|f(x) - \nabla F(x)\|` on
    the unit square."""
    n = 100
    p = next(net.parameters())
    grid = unit_grid(n, dtype=p.dtype).to(p.device)
    with torch.no_grad():
        pred = net(grid)
        pot = net.potential(grid)
    true = field.gradient(grid)
    err = (pred - true).norm(dim=-1).reshape(n, n).cpu()
    g = grid.cpu().reshape(n, n, 2)
    X, Y = g[..., 0], g[..., 1]
    sub = slice(None, None, 8)
    fig, ax = plt.subplots(1, 3, figsize=(14, 4.2))
    pot = pot.cpu().reshape(n, n)
    ax[0].contourf(X, Y, pot - pot.min(), levels=20, cmap="viridis")
    pr = pred.cpu().reshape(n, n, 2)
    ax[0].quiver(X[sub, sub], Y[sub, sub], pr[sub, sub, 0], pr[sub, sub, 1], color="w")
    ax[0].set_title("learned potential and field")
    tr = true.cpu().reshape(n, n, 2)
    tp = field.potential(grid).cpu().reshape(n, n)
    ax[1].contourf(X, Y, tp - tp.min(), levels=20, cmap="viridis")
    ax[1].quiver(X[sub, sub], Y[sub, sub], tr[sub, sub, 0], tr[sub, sub, 1], color="w")
    ax[1].set_title("true potential and field")
    im = ax[2].imshow(err, origin="lower", extent=(0, 1, 0, 1), cmap="magma")
    fig.colorbar(im, ax=ax[2])
    ax[2].set_title("error norm")
    for a in ax:
        a.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
