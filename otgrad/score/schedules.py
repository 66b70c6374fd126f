r"""Noise schedules of score-based diffusion: variance exploding (VE) and preserving (VP).

A schedule is the forward SDE :math:`dx = f(t) x \, dt + g(t) \, dw` on :math:`t \in
[t_{\min}, 1]` with marginals :math:`x_t = \alpha_t x_0 + \sigma_t \varepsilon`. Every
model in :mod:`otgrad.score` is conditioned on the *VE-equivalent* noise level
:math:`\tilde\sigma_t = \sigma_t / \alpha_t` (Karras et al., 2022): :math:`x_t / \alpha_t =
x_0 + \tilde\sigma_t \varepsilon`, so one model :math:`s(x, \tilde\sigma)` of the noised
data serves both schedules through

.. math:: \nabla_x \log p_t(x) = \alpha_t^{-1} \, s(x / \alpha_t, \tilde\sigma_t),

still the gradient of :math:`\psi(x / \alpha_t, \tilde\sigma_t)` in :math:`x`.

References:
    | Score-Based Generative Modeling through Stochastic Differential Equations
      (Song et al., 2021), eqs. (30)–(34).
    | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., 2022).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_positive_number

__all__ = ["NoiseSchedule", "VESchedule", "VPSchedule", "make_schedule"]


class NoiseSchedule:
    r"""The forward SDE of a diffusion model, in the time :math:`t \in [t_{\min}, 1]`.

    Subclasses give :meth:`alpha`, :meth:`sigma` (of the marginal :math:`x_t = \alpha_t
    x_0 + \sigma_t \varepsilon`), :meth:`drift_coef` :math:`f(t)` (the drift is
    :math:`f(t) x`) and :meth:`g2` :math:`g(t)^2`. Times are tensors; results broadcast.
    """

    t_min: float = 0.0
    name: str = ""

    def alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def sigma(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def drift_coef(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def g2(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def noise_level(self, t: Tensor) -> Tensor:
        r"""The VE-equivalent noise level :math:`\tilde\sigma_t = \sigma_t / \alpha_t`."""
        return self.sigma(t) / self.alpha(t)

    def prior_std(self, data_std: float = 1.0) -> float:
        r"""The standard deviation of the Gaussian the reverse process starts from at
        :math:`t = 1`, for data of per-coordinate standard deviation ``data_std``."""
        t = torch.tensor(1.0, dtype=torch.float64)
        a, s = float(self.alpha(t)), float(self.sigma(t))
        return math.sqrt(a**2 * data_std**2 + s**2)

    def sample_time(self, n: int, generator: torch.Generator | None = None, **kw) -> Tensor:
        r"""Training times :math:`t \sim \mathcal{U}(t_{\min}, 1)`, shape ``(n,)``."""
        u = torch.rand(n, generator=generator, **kw)
        return self.t_min + (1 - self.t_min) * u

    def config(self) -> dict:
        raise NotImplementedError


class VESchedule(NoiseSchedule):
    r"""Variance exploding: :math:`\sigma_t = \sigma_{\min} (\sigma_{\max}/\sigma_{\min})^t`,
    :math:`\alpha_t = 1`, :math:`f = 0`, :math:`g^2 = 2 \sigma_t^2 \log(\sigma_{\max}/\sigma_{\min})`.

    Uniform training times are log-uniform noise levels, and the usual :math:`\sigma^2`
    weighting of denoising score matching is then proportional to :math:`g^2`, the
    weighting that makes the loss a bound on the negative log-likelihood (Song et al., 2021b).

    Arguments:
        sigma_min: The smallest noise level (at :math:`t = 0`).
        sigma_max: The largest (at :math:`t = 1`); several data standard deviations.

    Example:
        >>> t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
        >>> [round(s, 4) for s in VESchedule(0.01, 20.0).noise_level(t).tolist()]
        [0.01, 0.4472, 20.0]
    """

    name = "ve"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 20.0):
        self.sigma_min = check_positive_number("sigma_min", sigma_min)
        self.sigma_max = check_positive_number("sigma_max", sigma_max)
        if not self.sigma_max > self.sigma_min:
            raise ValueError(f"sigma_max ({sigma_max}) must exceed sigma_min ({sigma_min})")
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def alpha(self, t):
        return torch.ones_like(t)

    def sigma(self, t):
        return self.sigma_min * torch.exp(t * self._log_ratio)

    def drift_coef(self, t):
        return torch.zeros_like(t)

    def g2(self, t):
        return 2 * self._log_ratio * self.sigma(t) ** 2

    def config(self):
        return {"kind": "ve", "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class VPSchedule(NoiseSchedule):
    r"""Variance preserving: :math:`\beta(t) = \beta_{\min} + t(\beta_{\max} - \beta_{\min})`,
    :math:`\alpha_t = e^{-\frac12\int_0^t \beta}`, :math:`\sigma_t^2 = 1 - \alpha_t^2`,
    :math:`f = -\beta/2`, :math:`g^2 = \beta`, on :math:`t \in [t_{\min}, 1]`.

    Arguments:
        beta_min: :math:`\beta(0)`.
        beta_max: :math:`\beta(1)`.
        t_min: The smallest time (the noise level :math:`\tilde\sigma` must stay positive).
    """

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3):
        self.beta_min = check_positive_number("beta_min", beta_min)
        self.beta_max = check_positive_number("beta_max", beta_max)
        self.t_min = check_positive_number("t_min", t_min)
        if not self.beta_max > self.beta_min:
            raise ValueError(f"beta_max ({beta_max}) must exceed beta_min ({beta_min})")
        if self.t_min >= 1:
            raise ValueError(f"t_min must be below 1, got {t_min}")

    def _integral(self, t):
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2

    def alpha(self, t):
        return torch.exp(-0.5 * self._integral(t))

    def sigma(self, t):
        return torch.sqrt(-torch.expm1(-self._integral(t)))

    def noise_level(self, t):
        return torch.sqrt(torch.expm1(self._integral(t)))

    def drift_coef(self, t):
        return -0.5 * (self.beta_min + t * (self.beta_max - self.beta_min))

    def g2(self, t):
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def config(self):
        return {
            "kind": "vp",
            "beta_min": self.beta_min,
            "beta_max": self.beta_max,
            "t_min": self.t_min,
        }


def make_schedule(spec: str | dict | NoiseSchedule) -> NoiseSchedule:
    r"""A schedule from ``"ve"``, ``"vp"``, a :meth:`NoiseSchedule.config` dict or an instance."""
    if isinstance(spec, NoiseSchedule):
        return spec
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, dict) or spec.get("kind") not in ("ve", "vp"):
        raise ValueError(f"schedule must be 've', 'vp' or a NoiseSchedule, got {spec!r}")
    kw = {k: v for k, v in spec.items() if k != "kind"}
    return VESchedule(**kw) if spec["kind"] == "ve" else VPSchedule(**kw)
