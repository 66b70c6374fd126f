r"""Figures of the gradient-field study: the fields (the paper's Figs. 4 and 6) and the
error maps of the learned networks (Figs. 5 and 7)."""

from __future__ import annotations

import os

import torch

from otgrad.data.fields import GradientField, unit_grid
from otgrad.nn import GradientNetwork

from ..common import new_figure

__all__ = ["plot_fields", "plot_error_maps"]


def _grid(n: int, dtype: torch.dtype, device: torch.device):
    grid = unit_grid(n, dtype=dtype).to(device)
    g = grid.cpu().reshape(n, n, 2)
    return grid, g[..., 0], g[..., 1]


def plot_fields(fields: dict[str, GradientField], path: str | os.PathLike) -> None:
    r"""Saves the potential contours and the gradient field (quiver) of each field."""
    n = 100
    fig = new_figure(figsize=(5.2 * len(fields), 4.6))
    axes = fig.subplots(1, len(fields), squeeze=False)
    for ax, (name, field) in zip(axes[0], fields.items(), strict=True):
        grid, X, Y = _grid(n, torch.float64, torch.device("cpu"))
        pot = field.potential(grid).reshape(n, n)
        grad = field.gradient(grid).reshape(n, n, 2)
        cs = ax.contourf(X, Y, pot, levels=20, cmap="viridis")
        fig.colorbar(cs, ax=ax)
        sub = slice(None, None, 7)
        ax.quiver(X[sub, sub], Y[sub, sub], grad[sub, sub, 0], grad[sub, sub, 1], color="w")
        ax.set_title(f"{name} field: potential and gradient")
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_error_maps(
    nets: dict[str, GradientNetwork],
    field: GradientField,
    path: str | os.PathLike,
    title: str = "",
) -> None:
    r"""Saves one error-norm map :math:`\|f(x) - \nabla F(x)\|` per network on a shared color
    scale."""
    n = 100
    errors = {}
    for name, net in nets.items():
        p = next(net.parameters())
        grid, _, _ = _grid(n, p.dtype, p.device)
        with torch.no_grad():
            err = (net(grid) - field.gradient(grid)).norm(dim=-1)
        errors[name] = err.reshape(n, n).cpu().double()
    vmax = max(float(e.max()) for e in errors.values())
    fig = new_figure(figsize=(3.6 * len(nets), 3.6))
    axes = fig.subplots(1, len(nets), squeeze=False)
    im = None
    for ax, (name, err) in zip(axes[0], errors.items(), strict=True):
        mse_db = 10 * torch.log10((err**2).mean()).item()
        im = ax.imshow(err, origin="lower", extent=(0, 1, 0, 1), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"{name}\n{mse_db:.1f} dB")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
