r"""Training a convex regularizer as a :math:`t`-step denoiser, and tuning its strength.

CRR-NN's recipe: the regularizer is trained so that :math:`t` gradient steps on
:math:`\frac12\|x - y\|^2 + R_{\lambda,\mu}(x)` from the noisy patch :math:`y` denoise it
(mean squared error against the clean patch), then used, for any operator and noise level,
by solving the full variational problem with :func:`~otgrad.inverse.reconstruct`, with
:math:`\lambda, \mu` tuned on held-out images (:func:`tune_strength`).
:meth:`ConvexRegularizer.fit <otgrad.inverse.ConvexRegularizer.fit>` and
:meth:`~otgrad.inverse.ConvexRegularizer.tune` run these functions.

References:
    | A Neural-Network-Based Convex Regularizer for Inverse Problems (Goujon et al., 2023).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.images import patch_sampler, psnr
from ..train import History, fit
from .operators import Denoising, LinearOperator
from .regularizer import RegularizerNetwork
from .solve import reconstruct

__all__ = ["t_step_denoiser", "train_denoiser", "tune_strength", "noisy_copies", "mean_psnr"]


def _lipschitz(reg: RegularizerNetwork) -> float:
    net = reg.net
    if hasattr(net, "slope_bound"):  # a coarser (still rigorous) norm bound: cheap per step
        return net.slope_bound() * net.operator_norm(grid=128) ** 2
    return net.lipschitz_bound()


def t_step_denoiser(reg: RegularizerNetwork, y: Tensor, steps: int) -> Tensor:
    r"""``steps`` gradient steps on :math:`\frac12\|x - y\|^2 + R(x)` from :math:`x_0 = y`.

    The step :math:`2 / (2 + \lambda\mu L_R)` is the optimal constant step for this
    1-strongly convex, :math:`(1 + \lambda\mu L_R)`-smooth objective. Differentiable in the
    regularizer's parameters.
    """
    step = 2.0 / (2.0 + reg.lmbda * reg.mu * _lipschitz(reg))
    options = {"kernel": reg.net.kernel()} if hasattr(reg.net, "kernel") else {}
    x = y
    for _ in range(steps):
        _, g = reg.value_and_grad(x, value=False, **options)
        x = x - step * (x - y + g)
    return x


def train_denoiser(
    reg: RegularizerNetwork, images: list[np.ndarray], options: Any, seed: int
) -> History:
    r"""Trains ``reg`` in place as a ``t_steps``-step denoiser on random patches of ``images``
    (mean absolute or squared error against the clean patches).

    Arguments:
        reg: The regularizer module (its network and :math:`\lambda, \mu` are trained).
        images: Training images, 2D arrays in :math:`[0, 1]`.
        options: The training hyperparameters (a :class:`~otgrad.inverse.ConvexRegularizer`:
            ``sigma``, ``t_steps``, ``loss``, ``iterations``, ``epochs``, ``batch_size``, ``patch``,
            ``stride``, ``lr``, ``time_limit``, ``checkpoint``, ``progress``).
        seed: Seeds the patches and the noise.

    Returns:
        The training :class:`~otgrad.train.History`.
    """
    p = next(reg.parameters())
    sampler = patch_sampler(
        images, options.patch, options.batch_size, sigma=options.sigma / 255.0,
        dtype=p.dtype, device=p.device, stride=options.stride,
    )  # fmt: skip
    steps, lr = options.t_steps, options.lr

    power = {"l1": 1, "mse": 2}[options.loss]

    def loss(model: RegularizerNetwork, clean: Tensor, noisy: Tensor) -> Tensor:
        return ((t_step_denoiser(model, noisy, steps) - clean).abs() ** power).mean()

    def run(model: RegularizerNetwork, n: int, epochs: int, **kwargs: Any) -> History:
        opt = torch.optim.Adam(
            [
                {"params": list(model.net.parameters()), "lr": lr},
                {"params": [model.log_lmbda, model.log_mu], "lr": 10 * lr},
            ]
        )
        return fit(
            model, loss, sampler, epochs=min(epochs, n), steps_per_epoch=max(1, n // epochs),
            optimizer=opt, schedule="cosine", seed=seed, **kwargs,
        )  # fmt: skip

    iterations, budget, limit = options.iterations, options.time_limit, options.time_limit
    if budget is not None and options.checkpoint is None:
        # a budget, not a session: time a few steps on a copy; cap the iterations to fit
        trial = copy.deepcopy(reg)
        run(trial, 2, 1, progress=False)
        start = time.perf_counter()
        run(trial, 10, 1, progress=False)
        per_step = (time.perf_counter() - start) / 10
        iterations = max(options.epochs, min(iterations, int(budget / per_step)))
        limit = 1.5 * budget
    return run(
        reg, iterations, options.epochs, progress=options.progress, time_limit=limit,
        checkpoint=options.checkpoint,
    )  # fmt: skip


def noisy_copies(images: list[Tensor], sigma: float, seed: int = 0) -> list[Tensor]:
    r"""Adds Gaussian noise of std ``sigma / 255`` to each image, reproducibly (``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    return [
        x + sigma / 255.0 * torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)
        for x in images
    ]


def _batches(images: list[Tensor]) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, x in enumerate(images):
        groups.setdefault(tuple(x.shape), []).append(i)
    return list(groups.values())


def mean_psnr(
    solve: Callable[..., Tensor],
    clean: list[Tensor],
    measured: list[Tensor],
    starts: list[Tensor] | None = None,
) -> float:
    r"""The mean PSNR of ``solve(measured)`` against ``clean``.

    Without ``starts``, images of equal size are solved as one batch; with ``starts`` (one
    initial image each), they are solved one at a time as ``solve(y, start)``.
    """
    if starts is not None:
        values = [psnr(solve(y, z), x) for x, y, z in zip(clean, measured, starts, strict=True)]
        return float(torch.cat(values).mean())
    values = []
    for idx in _batches(clean):
        x = solve(torch.cat([measured[i] for i in idx]))
        values.append(psnr(x, torch.cat([clean[i] for i in idx])))
    return float(torch.cat(values).mean())


def tune_strength(
    reg: RegularizerNetwork,
    clean: list[Tensor],
    measured: list[Tensor],
    operator: LinearOperator | None = None,
    *,
    rounds: int = 4,
    factor: float = 4.0,
    max_iter: int = 300,
    tol: float = 1e-4,
    bounds: tuple[float, float] | None = None,
    x0: list[Tensor] | None = None,
) -> tuple[float, float, float]:
    r"""Tunes :math:`\lambda, \mu` by coarse-to-fine search on held-out images.

    Each round evaluates the mean PSNR of the full reconstructions on a 3-by-3 grid around
    the current best :math:`(\lambda, \mu)` (log-spaced by ``factor``), moves to the best
    point and takes the square root of the spacing. The regularizer is left at the best
    values.

    Arguments:
        reg: The regularizer module (its current :math:`\lambda, \mu` start the search).
        clean: Held-out clean images ``(1, 1, H, W)`` (never the test set).
        measured: Their measurements (e.g. :func:`noisy_copies` for denoising).
        operator: The forward operator (default: denoising).
        rounds: The number of refinement rounds.
        factor: The initial multiplicative spacing.
        bounds: Passed to :func:`~otgrad.inverse.reconstruct`.
        x0: Initial images, one per measurement (e.g. filtered backprojections for CT);
            images are then reconstructed one at a time.

    Returns:
        The best :math:`\lambda`, :math:`\mu` and the mean validation PSNR.
    """
    if len(clean) != len(measured) or not clean:
        raise ValueError("clean and measured must be nonempty lists of the same length")
    operator = operator or Denoising()
    cache: dict[tuple[float, float], float] = {}

    def score(lam: float, mu: float) -> float:
        key = (round(math.log(lam), 6), round(math.log(mu), 6))
        if key not in cache:
            reg.set_strength(lam, mu)
            cache[key] = mean_psnr(
                lambda y, z=None: (
                    reconstruct(
                        y,
                        operator,
                        reg,
                        x0=z,
                        max_iter=max_iter,
                        tol=tol,
                        bounds=bounds,
                        record=False,
                    ).x
                ),
                clean,
                measured,
                x0,
            )
        return cache[key]

    best_lm = (reg.lmbda, reg.mu)
    best = score(*best_lm)
    f = factor
    for _ in range(rounds):
        lam, mu = best_lm
        for a in (1 / f, 1.0, f):
            for b in (1 / f, 1.0, f):
                s = score(lam * a, mu * b)
                if s > best:
                    best, best_lm = s, (lam * a, mu * b)
        f = math.sqrt(f)
    reg.set_strength(*best_lm)
    return best_lm[0], best_lm[1], best
