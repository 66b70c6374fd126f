r"""Score-matching objectives over a noise schedule.

Every objective draws a time :math:`t \sim \mathcal{U}(t_{\min}, 1)` per sample, noises the
data at the VE-equivalent level :math:`\tilde\sigma_t` (see :mod:`otgrad.score.schedules`)
and weights by :math:`\tilde\sigma_t^2`, so the three estimate the same field:

* :func:`dsm_loss`, denoising score matching (Vincent, 2011):
  :math:`\mathbb{E}\,\|\tilde\sigma s(x_0 + \tilde\sigma\varepsilon, \tilde\sigma) + \varepsilon\|^2`;
* :func:`implicit_score_matching_loss` (Hyvärinen, 2005) on the noised data:
  :math:`\mathbb{E}\,\tilde\sigma^2 [\operatorname{tr}\nabla_x s + \tfrac12\|s\|^2]`, with the
  closed-form trace of a GradNet (no Hessian by automatic differentiation);
* :func:`sliced_score_matching_loss` (Song et al., 2019, the variance-reduced form):
  :math:`\mathbb{E}\,\tilde\sigma^2 [v^\top \nabla_x s \, v + \tfrac12\|s\|^2]`, with the
  closed-form Jacobian-vector product.

The last two differ from the first by a constant; all three are minimized by the score of
the noised data.

References:
    | A Connection Between Score Matching and Denoising Autoencoders (Vincent, 2011).
    | Estimation of Non-Normalized Statistical Models by Score Matching (Hyvärinen, 2005).
    | Sliced Score Matching (Song, Garg, Shi, Ermon, 2019).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .models import NoiseConditionalScore
from .schedules import NoiseSchedule

__all__ = [
    "dsm_loss",
    "implicit_score_matching_loss",
    "sliced_score_matching_loss",
    "score_matching_loss",
]


def _noised(
    x0: Tensor, schedule: NoiseSchedule, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, Tensor]:
    t = schedule.sample_time(x0.shape[0], generator=generator, dtype=x0.dtype).to(x0.device)
    sigma = schedule.noise_level(t)
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
    return x0 + sigma[:, None] * eps, sigma, eps


def dsm_loss(
    model: NoiseConditionalScore,
    x0: Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Denoising score matching, :math:`\tilde\sigma^2`-weighted, summed over coordinates.

    Arguments:
        model: The score model.
        x0: A batch of data, shape ``(B, d)``.
        schedule: The noise schedule.
        generator: The random generator of times and noise.

    Returns:
        The mean loss over the batch (a scalar).
    """
    x, sigma, eps = _noised(x0, schedule, generator)
    s = model._score(x, sigma)
    return ((sigma[:, None] * s + eps) ** 2).sum(-1).mean()


def implicit_score_matching_loss(
    model: NoiseConditionalScore,
    x0: Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Implicit (exact) score matching on noised data with the Jacobian trace.

    The trace is closed form for :class:`~otgrad.score.NoiseConditionalGradNet`; other
    models fall back to :math:`d` reverse passes with a differentiable graph.
    """
    x, sigma, _ = _noised(x0, schedule, generator)
    s, tr = model._score_and_trace(x, sigma, "exact", create_graph=True)
    return (sigma**2 * (tr + 0.5 * (s**2).sum(-1))).mean()


def sliced_score_matching_loss(
    model: NoiseConditionalScore,
    x0: Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Sliced score matching (variance-reduced) on noised data with one Gaussian
    projection per sample; :math:`v^\top \nabla_x s \, v` from the closed-form
    Jacobian-vector product where the model has it (forward-mode AD otherwise)."""
    x, sigma, _ = _noised(x0, schedule, generator)
    v = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    if model.closed_form:
        s, jac = model._evaluate(x, sigma, True)
        jv = jac.matvec(v)
    else:
        s, jv = torch.func.jvp(lambda y: model._score(y, sigma), (x,), (v,))
    return (sigma**2 * ((v * jv).sum(-1) + 0.5 * (s**2).sum(-1))).mean()


_LOSSES = {
    "dsm": dsm_loss,
    "ism": implicit_score_matching_loss,
    "ssm": sliced_score_matching_loss,
}


def score_matching_loss(name: str):
    r"""The objective named ``"dsm"``, ``"ism"`` (implicit) or ``"ssm"`` (sliced)."""
    if name not in _LOSSES:
        raise ValueError(f"objective must be one of {sorted(_LOSSES)}, got {name!r}")
    return _LOSSES[name]
