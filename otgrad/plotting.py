r"""Figures shared by the applications (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .data.fields import GradientField, unit_grid  # noqa: E402
from .nn.base import GradientNetwork  # noqa: E402

__all__ = [
    "plot_field_fit",
    "plot_fields",
    "plot_error_maps",
    "plot_transport",
    "plot_score_samples",
    "plot_score_densities",
    "plot_score_fields",
    "plot_convergence",
    "plot_images",
]


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


def _grid(n: int, dtype: torch.dtype, device: torch.device):
    grid = unit_grid(n, dtype=dtype).to(device)
    g = grid.cpu().reshape(n, n, 2)
    return grid, g[..., 0], g[..., 1]


def plot_fields(fields: dict[str, GradientField], path: str | os.PathLike) -> None:
    r"""Saves the potential contours and the gradient field (quiver) of each field
    (the paper's Figs. 4 and 6)."""
    n = 100
    fig, axes = plt.subplots(1, len(fields), figsize=(5.2 * len(fields), 4.6), squeeze=False)
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
    plt.close(fig)


def plot_error_maps(
    nets: dict[str, GradientNetwork],
    field: GradientField,
    path: str | os.PathLike,
    title: str = "",
) -> None:
    r"""Saves one error-norm map :math:`\|f(x) - \nabla F(x)\|` per network on a shared color
    scale (the paper's Figs. 5 and 7)."""
    n = 100
    errors = {}
    for name, net in nets.items():
        p = next(net.parameters())
        grid, X, Y = _grid(n, p.dtype, p.device)
        with torch.no_grad():
            err = (net(grid) - field.gradient(grid)).norm(dim=-1)
        errors[name] = err.reshape(n, n).cpu().double()
    vmax = max(float(e.max()) for e in errors.values())
    fig, axes = plt.subplots(1, len(nets), figsize=(3.6 * len(nets), 3.6), squeeze=False)
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
    plt.close(fig)


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
    fig, ax = plt.subplots(1, 3, figsize=(14, 4.4))
    ax[0].scatter(*X.T, s=2, alpha=0.5, label="source μ")
    ax[0].scatter(*Y.T, s=2, alpha=0.5, label="target ν")
    ax[0].legend(loc="upper right", markerscale=4)
    ax[0].set_title("samples")
    ax[1].contour(g0, g1, pot.reshape(g0.shape), levels=20, cmap="Greys", linewidths=0.6)
    cmap = plt.get_cmap("viridis")
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
    plt.close(fig)


def _scatter(ax, pts, title: str, color: str) -> None:
    ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5, color=color, rasterized=True)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_score_samples(figs: dict, path: str | os.PathLike) -> None:
    r"""Samples of each model drawn over the data (grey), one column per set.

    Arguments:
        figs: ``{set: {"data": array, model: samples, ...}}`` (``(n, 2)`` arrays).
        path: The PNG file.
    """
    sets = list(figs)
    rows = ["data"] + [k for k in next(iter(figs.values())) if k != "data"]
    fig, axes = plt.subplots(
        len(rows), len(sets), figsize=(1.9 * len(sets), 1.9 * len(rows)), squeeze=False
    )
    colors = {"data": "k", "gradnet": "tab:blue", "mlp": "tab:orange", "gradmlp": "tab:green"}
    for j, s in enumerate(sets):
        ref = figs[s]["data"]
        lo, hi = ref.min(0), ref.max(0)
        for i, r in enumerate(rows):
            ax = axes[i, j]
            if r != "data":  # the data underneath, for comparison
                ax.scatter(ref[:, 0], ref[:, 1], s=1, alpha=0.25, color="0.7", rasterized=True)
            if r in figs[s]:
                _scatter(ax, figs[s][r], f"{s}: {r}" if i == 0 else r, colors.get(r, "tab:red"))
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


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
    fig, axes = plt.subplots(
        len(rows), len(sets), figsize=(1.9 * len(sets), 1.9 * len(rows)), squeeze=False
    )
    for j, s in enumerate(sets):
        f = figs[s]
        box = tuple(float(v) for v in f["box"])
        for i, (k, part) in enumerate(rows):
            ax = axes[i, j]
            if k == "data":
                _scatter(ax, f["data"], f"{s}: data", "k")
            elif part == "density":
                dens = torch.as_tensor(f[k]["log_density"]).exp().numpy()
                ax.imshow(dens, origin="lower", extent=box, cmap="magma", interpolation="bilinear")
                ax.set_title(f"{k} density", fontsize=9)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                _scatter(ax, f[k]["samples"], f"{k} samples", "tab:blue")
            ax.set_xlim(box[0], box[1])
            ax.set_ylim(box[2], box[3])
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


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
    fig, axes = plt.subplots(2, len(sets), figsize=(1.9 * len(sets), 4.2), squeeze=False)
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
    plt.close(fig)


def plot_score_fields(figs: dict, path: str | os.PathLike) -> None:
    r"""Energy contours with the score field (quiver) at two noise levels, one row per set.

    Arguments:
        figs: ``{set: {"energy_small", "energy_large": (n, n), "score_small",
            "score_large": (q, q, 2), "quiver": (q, q, 2), "box", "sigma_small",
            "sigma_large"}}``.
        path: The PNG file.
    """
    sets = list(figs)
    fig, axes = plt.subplots(len(sets), 2, figsize=(7, 3.3 * len(sets)), squeeze=False)
    for i, s in enumerate(sets):
        f = figs[s]
        x0, x1, y0, y1 = f["box"]
        n = f["energy_small"].shape[0]
        gx = torch.linspace(float(x0), float(x1), n)
        gy = torch.linspace(float(y0), float(y1), n)
        for j, tag in enumerate(("small", "large")):
            ax = axes[i, j]
            e = torch.as_tensor(f[f"energy_{tag}"])
            ax.contourf(
                gx,
                gy,
                (e - e.min()).clamp(max=float(torch.quantile(e - e.min(), 0.9))),
                levels=20,
                cmap="viridis_r",
            )
            q, v = f["quiver"], f[f"score_{tag}"]
            ax.quiver(q[..., 0], q[..., 1], v[..., 0], v[..., 1], color="w", width=0.004)
            ax.set_title(f"{s}: energy and score, sigma = {f[f'sigma_{tag}']:.2g}", fontsize=9)
            ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_convergence(record: dict, path: str | os.PathLike) -> None:
    r"""Objective gap :math:`F(x_k) - F^*` per iteration for the solvers in ``record``."""
    curves = {k: v for k, v in record.items() if isinstance(v, list) and len(v) > 2}
    best = min(min(v) for v in curves.values())
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in curves.items():
        gap = [max(v - best, 1e-12 * max(1.0, abs(best))) for v in values]
        ax.semilogy(gap, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("F(x_k) - min F")
    ax.legend()
    ax.set_title("denoising objective (convex: one minimizer)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_images(images: dict, path: str | os.PathLike, ncols: int | None = None) -> None:
    r"""A row of grayscale images ``{title: (H, W) array}`` in :math:`[0, 1]`."""
    n = len(images)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, im) in zip(axes.flat, images.items(), strict=False):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
