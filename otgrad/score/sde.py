r"""Samplers and likelihoods of a score model under a noise schedule.

The marginal score of the schedule's time-:math:`t` distribution is
:math:`\nabla_x \log p_t(x) = \alpha_t^{-1} s(x/\alpha_t, \tilde\sigma_t)` (see
:mod:`otgrad.score.schedules`). From it:

* :func:`reverse_sde` — Euler–Maruyama on the reverse-time SDE
  :math:`dx = [f x - g^2 \nabla\log p_t]\,dt + g\,d\bar w`;
* :func:`predictor_corrector` — the same predictor with Langevin corrector steps at a
  signal-to-noise ratio (Song et al., 2021, Alg. 2–3);
* :func:`probability_flow` — the probability-flow ODE
  :math:`\dot x = f x - \tfrac12 g^2 \nabla\log p_t` solved by ``torchdiffeq``;
* :func:`annealed_langevin` — annealed Langevin dynamics over noise levels (Song & Ermon,
  2019), unadjusted or, for conservative models, Metropolis-adjusted (MALA) with the
  potential :math:`\psi(x, \sigma)` as the log-density;
* :func:`ode_log_prob` — :math:`\log p_{t_{\min}}(x)` by the instantaneous change of
  variables along the probability-flow ODE, :math:`\log p_0(x_0) = \log p_1(x_1) +
  \int_0^1 \nabla\cdot v \,dt`, with the divergence :math:`\nabla\cdot v = f d - \tfrac12 g^2
  \operatorname{tr}\nabla_x \log p_t` exact (closed-form trace), by :math:`d` reverse passes,
  or by Hutchinson's estimator;
* :func:`grid_log_prob` — in two dimensions, the potential at the smallest noise level
  normalized on a grid: a likelihood without any ODE, for conservative models only.

Models are evaluated in their own (standardized) coordinates; the estimator
:class:`~otgrad.score.ScoreModel` maps data in and out.

References:
    | Score-Based Generative Modeling through Stochastic Differential Equations
      (Song et al., 2021), Sec. 4.2–4.3, App. D.
    | Generative Modeling by Estimating Gradients of the Data Distribution (Song & Ermon, 2019), Alg. 1.
    | FFJORD (Grathwohl et al., 2019), Hutchinson's trace estimator.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torchdiffeq import odeint

from .._validation import check_choice, check_positive_int, check_positive_number
from .models import NoiseConditionalScore
from .schedules import NoiseSchedule

__all__ = [
    "marginal_score",
    "reverse_sde",
    "predictor_corrector",
    "probability_flow",
    "annealed_langevin",
    "langevin",
    "ode_log_prob",
    "grid_log_prob",
]


def _full(x: Tensor, value: Tensor | float) -> Tensor:
    return torch.as_tensor(value, dtype=x.dtype, device=x.device).expand(x.shape[:-1])


def marginal_score(
    model: NoiseConditionalScore,
    schedule: NoiseSchedule,
    x: Tensor,
    t: Tensor | float,
    trace: str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor | None]:
    r""":math:`\nabla_x \log p_t(x)` and, if ``trace`` names a method (``"exact"``,
    ``"autograd"``, ``"hutchinson"``), its divergence; else ``None``."""
    # evaluate the schedule at the (scalar) time, then broadcast with stride 0 so that the
    # model computes its noise embedding once for the whole batch
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    a, sigma = schedule.alpha(t), schedule.noise_level(t)
    if t.dim() == 0:
        a, sigma = a.expand(x.shape[:-1]), sigma.expand(x.shape[:-1])
    if trace is None:
        return model._score(x / a[..., None], sigma) / a[..., None], None
    s, tr = model._score_and_trace(x / a[..., None], sigma, trace, generator)
    return s / a[..., None], tr / a**2


def _times(schedule: NoiseSchedule, steps: int, x: Tensor) -> Tensor:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return torch.linspace(1.0, schedule.t_min, steps + 1, dtype=x.dtype, device=x.device)


def _randn(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


@torch.no_grad()
def reverse_sde(
    model: NoiseConditionalScore,
    schedule: NoiseSchedule,
    x: Tensor,
    steps: int = 500,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Euler–Maruyama on the reverse SDE from :math:`t = 1` (``x``, prior samples) to
    :math:`t_{\min}`, ``steps`` uniform steps; the last step adds no noise."""
    return predictor_corrector(model, schedule, x, steps, 0, generator=generator)


@torch.no_grad()
def predictor_corrector(
    model: NoiseConditionalScore,
    schedule: NoiseSchedule,
    x: Tensor,
    steps: int = 500,
    corrector_steps: int = 1,
    snr: float = 0.16,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Reverse-SDE predictor with ``corrector_steps`` Langevin corrector steps per time,
    each of size :math:`2 (r \|z\| / \|\nabla \log p_t\|)^2` for the signal-to-noise ratio
    :math:`r` = ``snr`` (Song et al., 2021, Alg. 4–5); with ``corrector_steps=0`` it is
    :func:`reverse_sde`."""
    if (
        isinstance(corrector_steps, bool)
        or not isinstance(corrector_steps, int)
        or corrector_steps < 0
    ):
        raise ValueError(f"corrector_steps must be a nonnegative integer, got {corrector_steps!r}")
    ts = _times(schedule, steps, x)
    for i in range(steps):
        t, dt = ts[i], ts[i + 1] - ts[i]  # dt < 0
        for _ in range(corrector_steps):
            s, _ = marginal_score(model, schedule, x, t)
            z = _randn(x, generator)
            eps = 2 * (snr * z.norm(dim=-1).mean() / s.norm(dim=-1).mean().clamp_min(1e-12)) ** 2
            x = x + eps * s + (2 * eps).sqrt() * z
        s, _ = marginal_score(model, schedule, x, t)
        g2 = schedule.g2(t)
        x = x + (schedule.drift_coef(t) * x - g2 * s) * dt
        if i < steps - 1:
            x = x + (g2 * -dt).sqrt() * _randn(x, generator)
    return x


def _flow(model, schedule, trace=None, generator=None, counter=None):
    def rhs(t, state):
        if counter is not None:
            counter[0] += 1
        x = state[0] if trace is not None else state
        s, tr = marginal_score(model, schedule, x, t, trace, generator)
        g2, f = schedule.g2(t), schedule.drift_coef(t)
        v = f * x - 0.5 * g2 * s
        if trace is None:
            return v
        return v, f * x.shape[-1] - 0.5 * g2 * tr

    return rhs


@torch.no_grad()
def probability_flow(
    model: NoiseConditionalScore,
    schedule: NoiseSchedule,
    x: Tensor,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
) -> Tensor:
    r"""Integrates the probability-flow ODE from :math:`t = 1` to :math:`t_{\min}` with
    ``torchdiffeq`` (adaptive ``dopri5`` by default): a deterministic sampler."""
    ts = torch.tensor([1.0, schedule.t_min], dtype=x.dtype, device=x.device)
    return odeint(_flow(model, schedule), x, ts, rtol=rtol, atol=atol, method=method)[-1]


@torch.no_grad()
def langevin(
    model: NoiseConditionalScore,
    x: Tensor,
    sigma: float,
    step: float,
    n_steps: int,
    metropolis: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, float]:
    r"""Langevin dynamics targeting :math:`p_\sigma \propto e^{\psi(\cdot, \sigma)}`:
    :math:`x' = x + h s(x) + \sqrt{2h}\,z`, accepted with the Metropolis–Hastings ratio of
    the potential when ``metropolis`` (MALA), always otherwise (ULA).

    Returns:
        The final samples and the mean acceptance rate (1 for ULA).
    """
    if metropolis and not model.conservative:
        raise ValueError(
            f"MALA needs a conservative model with a potential; {type(model).__name__} has none"
        )
    sig = _full(x, sigma)
    s, logp = model._score_and_potential(x, sig) if metropolis else (model._score(x, sig), None)
    accepted, total = 0.0, 0
    for _ in range(n_steps):
        prop = x + step * s + math.sqrt(2 * step) * _randn(x, generator)
        if not metropolis:
            x, s = prop, model._score(prop, sig)
            continue
        s_prop, logp_prop = model._score_and_potential(prop, sig)
        fwd = ((prop - x - step * s) ** 2).sum(-1)
        bwd = ((x - prop - step * s_prop) ** 2).sum(-1)
        log_ratio = logp_prop - logp + (fwd - bwd) / (4 * step)
        u = torch.rand(x.shape[:-1], generator=generator, dtype=x.dtype).to(x.device)
        acc = u.log() < log_ratio
        x = torch.where(acc[..., None], prop, x)
        s = torch.where(acc[..., None], s_prop, s)
        logp = torch.where(acc, logp_prop, logp)
        accepted += float(acc.float().mean())
        total += 1
    return x, (accepted / total if total else 1.0)


@torch.no_grad()
def annealed_langevin(
    model: NoiseConditionalScore,
    x: Tensor,
    sigmas: Tensor,
    steps_per_level: int = 20,
    eps: float = 1e-4,
    metropolis: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, float]:
    r"""Annealed Langevin dynamics (NCSN, Song & Ermon 2019, Alg. 1) over the decreasing
    noise levels ``sigmas``, step :math:`h_i = \epsilon \sigma_i^2 / \sigma_L^2` at level
    :math:`i`; with ``metropolis``, each step is MALA-adjusted at its level.

    Returns:
        The samples and the mean acceptance rate over all levels (1 without Metropolis).
    """
    rates = []
    last = float(sigmas[-1])
    for sigma in sigmas.tolist():
        h = eps * (sigma / last) ** 2
        x, rate = langevin(model, x, sigma, h, steps_per_level, metropolis, generator)
        rates.append(rate)
    return x, sum(rates) / len(rates)


def ode_log_prob(
    model: NoiseConditionalScore,
    schedule: NoiseSchedule,
    x: Tensor,
    trace: str = "exact",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
    prior_std: float | None = None,
    generator: torch.Generator | None = None,
    options: dict | None = None,
) -> tuple[Tensor, int]:
    r""":math:`\log p_{t_{\min}}(x)` by the probability-flow ODE (``torchdiffeq``).

    Arguments:
        model: The score model (its own coordinates).
        schedule: The noise schedule it was trained with.
        x: Points, shape ``(B, d)``.
        trace: ``"exact"`` (closed form where the model has it), ``"autograd"`` or
            ``"hutchinson"`` (one fixed Rademacher probe per point per evaluation).
        rtol, atol: The ODE tolerances.
        method: The ``torchdiffeq`` method.
        prior_std: The standard deviation of the Gaussian at :math:`t = 1` (default
            ``schedule.prior_std(1.0)``: the data are standardized).
        options: Solver options for ``torchdiffeq`` (e.g. ``{"step_size": 0.02}`` with a
            fixed-step ``method="rk4"``).

    Returns:
        The log-densities, shape ``(B,)``, and the number of function evaluations.
    """
    check_choice("trace", trace, ("exact", "autograd", "hutchinson"))
    check_positive_number("rtol", rtol)
    check_positive_number("atol", atol)
    std = schedule.prior_std(1.0) if prior_std is None else prior_std
    counter = [0]
    ts = torch.tensor([schedule.t_min, 1.0], dtype=x.dtype, device=x.device)
    state = (x, torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device))
    with torch.no_grad():
        rhs = _flow(model, schedule, trace, generator, counter)
        x1, integral = (
            s[-1]
            for s in odeint(rhs, state, ts, rtol=rtol, atol=atol, method=method, options=options)
        )
    d = x.shape[-1]
    prior = -0.5 * (x1**2).sum(-1) / std**2 - d * math.log(std) - 0.5 * d * math.log(2 * math.pi)
    return prior + integral, counter[0]


def check_box(bounds: Any) -> tuple[float, float, float, float]:
    r"""Returns ``bounds`` as four floats; a ``ValueError`` unless it is a box
    ``(x_min, x_max, y_min, y_max)`` of finite numbers with ``x_min < x_max`` and
    ``y_min < y_max``."""
    try:
        box = tuple(float(b) for b in bounds)
    except (TypeError, ValueError) as e:
        raise TypeError(f"bounds must be four numbers (x_min, x_max, y_min, y_max): {e}") from e
    if len(box) != 4 or not all(math.isfinite(b) for b in box):
        raise ValueError(
            f"bounds must be four finite numbers (x_min, x_max, y_min, y_max), got {bounds}"
        )
    if not (box[1] > box[0] and box[3] > box[2]):
        raise ValueError(f"bounds must be (x_min, x_max, y_min, y_max) increasing, got {bounds}")
    return box


@torch.no_grad()
def grid_log_prob(
    model: NoiseConditionalScore,
    x: Tensor,
    sigma: float,
    bounds: tuple[float, float, float, float],
    resolution: int = 512,
) -> Tensor:
    r""":math:`\log p_\sigma(x) = \psi(x, \sigma) - \log \int e^{\psi}` with the integral a
    midpoint sum on a ``resolution``² grid over ``bounds = (x_min, x_max, y_min, y_max)``
    (two dimensions, conservative models only): a cross-check of :func:`ode_log_prob`
    that needs no ODE. Mass outside the box is ignored, so choose it to cover the data."""
    if model.dim != 2:
        raise ValueError(f"grid_log_prob is two-dimensional; the model has dim={model.dim}")
    if not model.conservative:
        raise ValueError(f"{type(model).__name__} has no potential to normalize")
    x0, x1, y0, y1 = check_box(bounds)
    check_positive_int(resolution=resolution)
    gx = torch.linspace(x0, x1, resolution + 1, dtype=x.dtype, device=x.device)
    gy = torch.linspace(y0, y1, resolution + 1, dtype=x.dtype, device=x.device)
    cx, cy = (gx[1:] + gx[:-1]) / 2, (gy[1:] + gy[:-1]) / 2
    grid = torch.stack(torch.meshgrid(cx, cy, indexing="ij"), -1).reshape(-1, 2)
    psi = torch.cat([model._potential(g, _full(g, sigma)) for g in grid.split(65536)])
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    log_z = torch.logsumexp(psi, 0) + cell.log()
    return model._potential(x, _full(x, sigma)) - log_z
