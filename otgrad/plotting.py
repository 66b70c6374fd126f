r"""Figures of the command-line demos (matplotlib, no pyplot: the backend is left alone)."""

from __future__ import annotations

import os

import matplotlib
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .data.fields import GradientField, unit_grid
from .nn.base import GradientNetwork

__all__ = ["plot_field_fit", "plot_transport"]


def _figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


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
    fig = _figure((14, 4.2))
    ax = fig.subplots(1, 3)
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


def plot_transport(estimator, X, Y, path: str | os.PathLike, title: str = "") -> None:
    r"""Saves a three-panel figure of a fitted 2D transport map :math:`T = \nabla\psi`:
    source and target samples; the displacement interpolation :math:`(1 - t)x + tT(x)`
    over the contours of :math:`\psi(x) - \|x\|^2/2`; and :math:`T_\#\mu` over the target.

    Arguments:
        estimator: A fitted :class:`~otgrad.ot.BrenierMap` (or anything with ``transform``
            and ``potential`` on ``(n, 2)`` arrays).
        X: Source samples, ``(n, 2)`` NumPy array.
        Y: Target samples, ``(m, 2)`` NumPy array.
        path: The PNG file to write.
        title: A title for the figure.
    """
    import numpy as np

    TX = estimator.transform(X)
    pts = np.concatenate([X, Y, TX])
    lo, hi = pts.min(0) - 0.3, pts.max(0) + 0.3
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
    grid = np.stack([g0.ravel(), g1.ravel()], -1)
    pot = estimator.potential(grid) - 0.5 * (grid**2).sum(-1)
    fig = _figure((14, 4.4))
    ax = fig.subplots(1, 3)
    ax[0].scatter(*X.T, s=2, alpha=0.5, label="source μ")
    ax[0].scatter(*Y.T, s=2, alpha=0.5, label="target ν")
    ax[0].legend(loc="upper right", markerscale=4)
    ax[0].set_title("samples")
    ax[1].contour(g0, g1, pot.reshape(g0.shape), levels=20, cmap="Greys", linewidths=0.6)
    cmap = matplotlib.colormaps["viridis"]
    k = min(len(X), 300)
    for i in range(k):
        ax[1].plot([X[i, 0], TX[i, 0]], [X[i, 1], TX[i, 1]], color="k", lw=0.3, alpha=0.3)
    for t in np.linspace(0, 1, 5):
        ax[1].scatter(*((1 - t) * X[:k] + t * TX[:k]).T, s=3, color=cmap(t), zorder=3)
    ax[1].set_title("(1−t)x + tT(x), t = 0 … 1; contours of ψ − ‖x‖²/2")
    ax[2].scatter(*Y.T, s=2, alpha=0.4, color="C1", label="target ν")
    ax[2].scatter(*TX.T, s=2, alpha=0.4, color="C2", label="T#μ")
    ax[2].legend(loc="upper right", markerscale=4)
    ax[2].set_title("pushed-forward samples")
    for a in ax:
        a.set_xlim(lo[0], hi[0])
        a.set_ylim(lo[1], hi[1])
        a.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
