r"""Activations with derivative and antiderivative, and convex group activations.

Elementwise activations :math:`\sigma` (subclasses of :class:`Activation`) act on the
last axis of their input and know their derivative :math:`\sigma'` and an
antiderivative :math:`S` (:math:`S' = \sigma`): that is what makes the potential,
the Jacobian and its trace of a ridge network closed form. Parameterized
activations hold one set of parameters per hidden unit.

Group activations (subclasses of :class:`GroupActivation`) are convex functions
:math:`\phi : \mathbb{R}^h \to \mathbb{R}` applied to ``G`` groups of ``h`` units at
once (input ``(*, G, h)``); they return :math:`\nabla \phi` and the Hessian in the
structured form :math:`\nabla^2\phi = \operatorname{diag}(D) + U \operatorname{diag}(s) U^\top`
with a few columns in :math:`U`.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), eq. (7), Thm 4, Thm 7, Cor 12.1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..calculus import gauss_legendre

__all__ = [
    "Activation",
    "Identity",
    "Tanh",
    "Sigmoid",
    "Softplus",
    "WTanh",
    "SigmoidMixture",
    "LinearSpline",
    "GroupActivation",
    "Softmax",
    "WSoftmax",
    "LogCoshSquare",
    "log_cosh",
    "softplus_integral",
    "inverse_softplus",
    "elementwise_activation",
    "group_activation",
]


def inverse_softplus(y: float) -> float:
    r"""The :math:`x` with :math:`\operatorname{softplus}(x) = y > 0`."""
    return y + math.log(-math.expm1(-y))


def log_cosh(t: Tensor) -> Tensor:
    r""":math:`\log\cosh t`, stable for large :math:`|t|` (no overflow at :math:`10^4`)."""
    a = t.abs()
    return a + F.softplus(-2 * a) - math.log(2.0)


_PI2_6 = math.pi**2 / 6


def _li_series(t: Tensor, terms: int = 40) -> Tensor:
    # sum_k (-1)^{k+1} e^{kt} / k^2 = -Li2(-e^t), accurate for t <= -1 (e^t <= 0.37)
    k = torch.arange(1, terms + 1, dtype=t.dtype, device=t.device)
    sign = 1.0 - 2.0 * ((k - 1) % 2)
    return (sign / k**2 * torch.exp(t[..., None] * k)).sum(-1)


def _softplus_integral_value(t: Tensor) -> Tensor:
    # F(t) = int_{-inf}^t softplus(s) ds = -Li2(-e^t), by three stable branches.
    lo = t.clamp(max=-1.0)
    neg = _li_series(lo)
    mid_t = t.clamp(-1.0, 1.0)
    nodes, weights = gauss_legendre(24, dtype=t.dtype, device=t.device)
    pts = -1.0 + (mid_t[..., None] + 1.0) * nodes
    f_m1 = _li_series(torch.full((), -1.0, dtype=t.dtype, device=t.device))
    mid = f_m1 + (mid_t + 1.0) * (F.softplus(pts) * weights).sum(-1)
    hi_t = t.clamp(min=1.0)
    hi = _PI2_6 + hi_t**2 / 2 - _li_series(-hi_t)
    return torch.where(t <= -1.0, neg, torch.where(t >= 1.0, hi, mid))


class _SoftplusIntegral(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(t: Tensor) -> Tensor:
        return _softplus_integral_value(t)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (t,) = ctx.saved_tensors
        return grad * F.softplus(t)


def softplus_integral(t: Tensor) -> Tensor:
    r"""The antiderivative :math:`\int_{-\infty}^t \operatorname{softplus} = -\mathrm{Li}_2(-e^t)`.

    Evaluated to about machine precision by a series (:math:`t \le -1`), a 24-node
    Gauss–Legendre rule (:math:`|t| < 1`) and the dilogarithm reflection
    :math:`-\mathrm{Li}_2(-e^t) = \pi^2/6 + t^2/2 + \mathrm{Li}_2(-e^{-t})` (:math:`t \ge 1`).
    Its gradient is exactly :math:`\operatorname{softplus}(t)` (twice differentiable).
    """
    return _SoftplusIntegral.apply(t)


class Activation(nn.Module):
    r"""An elementwise activation :math:`\sigma` with :math:`\sigma'` and :math:`S` (:math:`S' = \sigma`).

    Attributes:
        monotone: Whether :math:`\sigma` is nondecreasing for every parameter value.
    """

    monotone: bool = True

    def forward(self, t: Tensor) -> Tensor:
        r"""Returns :math:`\sigma(t)`."""
        return self.value_and_derivative(t)[0]

    def derivative(self, t: Tensor) -> Tensor:
        r"""Returns :math:`\sigma'(t)`."""
        return self.value_and_derivative(t)[1]

    def value_and_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns :math:`(\sigma(t), \sigma'(t))` in one pass."""
        raise NotImplementedError

    def antiderivative(self, t: Tensor) -> Tensor:
        r"""Returns :math:`S(t)` with :math:`S' = \sigma`."""
        raise NotImplementedError

    def derivative_bound(self) -> Tensor:
        r"""An upper bound on :math:`\sup_t |\sigma'(t)|` (scalar or one per unit)."""
        raise NotImplementedError


class _Fixed(Activation):
    r"""A parameter-free activation, given by four class attributes: ``_function``
    :math:`\sigma`, ``_slope`` :math:`(t, \sigma(t)) \mapsto \sigma'(t)`, ``_primitive``
    :math:`S` and ``_bound`` :math:`\sup|\sigma'|`."""

    _function: Callable[[Tensor], Tensor]
    _slope: Callable[[Tensor, Tensor], Tensor]
    _primitive: Callable[[Tensor], Tensor]
    _bound: float

    def forward(self, t: Tensor) -> Tensor:
        return type(self)._function(t)

    def value_and_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        y = type(self)._function(t)
        return y, type(self)._slope(t, y)

    def antiderivative(self, t: Tensor) -> Tensor:
        return type(self)._primitive(t)

    def derivative_bound(self) -> Tensor:
        return torch.tensor(self._bound)


class Identity(_Fixed):
    r"""The identity :math:`\sigma(t) = t`, :math:`S(t) = t^2/2`: eq. (7) becomes a linear
    map :math:`W^\top \operatorname{diag}(\alpha) W x + c` (a PSD one when :math:`\alpha \ge 0`)."""

    _function = staticmethod(lambda t: t)
    _slope = staticmethod(lambda t, y: torch.ones_like(t))
    _primitive = staticmethod(lambda t: t * t / 2)
    _bound = 1.0


class Tanh(_Fixed):
    r""":math:`\tanh`, with :math:`S = \log\cosh`; :math:`0 < \sigma' \le 1`."""

    _function = staticmethod(torch.tanh)
    _slope = staticmethod(lambda t, y: 1 - y * y)
    _primitive = staticmethod(log_cosh)
    _bound = 1.0


class Sigmoid(_Fixed):
    r"""The logistic sigmoid, with :math:`S = \operatorname{softplus}`; :math:`0 < \sigma' \le 1/4`."""

    _function = staticmethod(torch.sigmoid)
    _slope = staticmethod(lambda t, y: y * (1 - y))
    _primitive = staticmethod(F.softplus)
    _bound = 0.25


class Softplus(_Fixed):
    r""":math:`\log(1 + e^t)`, with :math:`S = -\mathrm{Li}_2(-e^t)` (:func:`softplus_integral`)."""

    _function = staticmethod(F.softplus)
    _slope = staticmethod(lambda t, y: torch.sigmoid(t))
    _primitive = staticmethod(softplus_integral)
    _bound = 1.0


class WTanh(Activation):
    r"""The learnable weighted tanh of the authors' code, one pair of weights per unit.

    .. math:: \sigma(t) = a \tanh t + b \, (t - \tanh t), \qquad
              S(t) = a \log\cosh t + b \, (t^2/2 - \log\cosh t).

    With ``monotone=True``, :math:`a, b = \operatorname{softplus}(\cdot) \ge 0` and
    :math:`\sigma' = a \operatorname{sech}^2 t + b \tanh^2 t \ge 0`.

    Arguments:
        features: The number of units :math:`h`.
        monotone: Whether to constrain :math:`a, b \ge 0`.
    """

    def __init__(self, features: int, monotone: bool = True):
        super().__init__()
        self.monotone = monotone
        init_a, init_b = 1.0, 0.1
        if monotone:
            init_a, init_b = inverse_softplus(init_a), inverse_softplus(init_b)
        self.raw_a = nn.Parameter(torch.full((features,), init_a))
        self.raw_b = nn.Parameter(torch.full((features,), init_b))

    def _weights(self) -> tuple[Tensor, Tensor]:
        if self.monotone:
            return F.softplus(self.raw_a), F.softplus(self.raw_b)
        return self.raw_a, self.raw_b

    def forward(self, t: Tensor) -> Tensor:
        a, b = self._weights()
        y = torch.tanh(t)
        return torch.addcmul(b * t, a - b, y)  # a tanh t + b (t - tanh t)

    def value_and_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        a, b = self._weights()
        y = torch.tanh(t)
        y2 = y * y
        return a * y + b * (t - y), a * (1 - y2) + b * y2

    def antiderivative(self, t: Tensor) -> Tensor:
        a, b = self._weights()
        lc = log_cosh(t)
        return a * lc + b * (t * t / 2 - lc)

    def derivative_bound(self) -> Tensor:
        a, b = self._weights()
        return torch.maximum(a.abs(), b.abs())


class SigmoidMixture(Activation):
    r"""A learned scalar activation per unit: a combination of shifted sigmoids (Thm 7).

    .. math:: \sigma_i(t) = \sum_{k=1}^K a_{ik} \, s(c_{ik} t + e_{ik}), \quad
              S_i(t) = \sum_k \frac{a_{ik}}{c_{ik}}
              \big(\operatorname{softplus}(c_{ik} t + e_{ik}) - \operatorname{softplus}(e_{ik})\big)

    with :math:`s` the logistic sigmoid and slopes :math:`c_{ik} = \operatorname{softplus}(\cdot) > 0`.
    With ``monotone=True``, :math:`a_{ik} \ge 0` too, so :math:`\sigma_i` is nondecreasing
    and these are universal approximators of nondecreasing scalar functions (Thm 7);
    otherwise :math:`a_{ik}` is real (Cor 2.3 / Thm 6).

    Arguments:
        features: The number of units :math:`h`.
        components: The number of sigmoids :math:`K` per unit.
        monotone: Whether to constrain :math:`a_{ik} \ge 0`.
    """

    def __init__(self, features: int, components: int = 8, monotone: bool = True):
        super().__init__()
        self.monotone = monotone
        e = torch.linspace(-3.0, 3.0, components).expand(features, components).clone()
        slope0 = (torch.sigmoid(e[0]) * torch.sigmoid(-e[0])).sum()
        a0 = float(1.0 / slope0)  # sigma'(0) = 1 at init
        self.raw_a = nn.Parameter(
            torch.full((features, components), inverse_softplus(a0) if monotone else a0)
        )
        self.raw_c = nn.Parameter(torch.full((features, components), inverse_softplus(1.0)))
        self.e = nn.Parameter(e)

    def _weights(self) -> tuple[Tensor, Tensor]:
        a = F.softplus(self.raw_a) if self.monotone else self.raw_a
        return a, F.softplus(self.raw_c)

    def forward(self, t: Tensor) -> Tensor:
        a, c = self._weights()
        return (a * torch.sigmoid(t[..., None] * c + self.e)).sum(-1)

    def value_and_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        a, c = self._weights()
        s = torch.sigmoid(t[..., None] * c + self.e)
        return (a * s).sum(-1), (a * c * s * (1 - s)).sum(-1)

    def antiderivative(self, t: Tensor) -> Tensor:
        a, c = self._weights()
        sp = F.softplus(t[..., None] * c + self.e) - F.softplus(self.e)
        return (a / c * sp).sum(-1)

    def derivative_bound(self) -> Tensor:
        a, c = self._weights()
        return (a.abs() * c).sum(-1) / 4


def _lookup(table: Tensor, idx: Tensor) -> Tensor:
    r"""``table.take(idx)`` by ``gather``, whose backward is a ``scatter_add`` (about five
    times faster on CPU than ``take``'s accumulating ``put_``)."""
    return table.reshape(-1).gather(0, idx.reshape(-1)).view(idx.shape)


class LinearSpline(Activation):
    r"""A learnable linear spline per unit, as in convex ridge regularizers (CRR-NN).

    ``knots`` equispaced knots :math:`t_0 < \dots < t_{K-1}` on :math:`[-\text{span}, \text{span}]`
    with values :math:`c_0, \dots, c_{K-1}`; linear in between and constant outside:

    .. math:: \sigma(t) = c_0 + \sum_{j=0}^{K-2} s_j \operatorname{clip}(t - t_j, 0, \Delta),
              \qquad s_j = (c_{j+1} - c_j) / \Delta, \quad \Delta = t_{j+1} - t_j,

    so :math:`\sigma' = s_j` on :math:`(t_j, t_{j+1})` and the antiderivative is piecewise
    quadratic in closed form. With ``monotone=True`` the values are a cumulative sum of
    softplus increments (:math:`s_j \ge 0`): :math:`\sigma` is nondecreasing. Initialized
    to the identity on the knots.

    Arguments:
        features: The number of units :math:`h`.
        knots: The number of knots :math:`K \ge 2` (:math:`K` parameters per unit).
        monotone: Whether to constrain the spline to be nondecreasing.
        span: The knots lie on :math:`[-\text{span}, \text{span}]`.

    References:
        | Learning Weakly Convex Regularizers for Convergent Image-Reconstruction
          Algorithms / A Neural-Network-Based Convex Regularizer for Inverse Problems
          (Goujon, Neumayer, Bohra, Ducotterd, Unser, 2023).
    """

    def __init__(self, features: int, knots: int = 7, monotone: bool = True, span: float = 2.0):
        super().__init__()
        if isinstance(knots, bool) or not isinstance(knots, int) or knots < 2:
            raise ValueError(f"knots must be an integer >= 2, got {knots!r}")
        self.monotone = monotone
        self.register_buffer("knots", torch.linspace(-span, span, knots))
        delta = 2 * span / (knots - 1)
        if monotone:
            first = torch.full((features, 1), -span)
            inc = torch.full((features, knots - 1), inverse_softplus(delta))
            self.raw = nn.Parameter(torch.cat([first, inc], dim=-1))
        else:
            self.raw = nn.Parameter(self.knots.expand(features, knots).clone())

    def values(self) -> Tensor:
        r"""The spline values at the knots, shape ``(h, K)``."""
        if self.monotone:
            inc = F.softplus(self.raw[:, 1:])
            return torch.cat([self.raw[:, :1], self.raw[:, :1] + inc.cumsum(-1)], dim=-1)
        return self.raw

    def _locate(self, t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # the segment j of each input (equispaced knots: O(1) per value, no (*, h, K) tensor),
        # the flat indices of c_j per unit, the clipped offset r in [0, delta] and t - t_j
        K = self.knots.numel()
        t0, delta = self.knots[0], self.knots[1] - self.knots[0]
        j = torch.floor((t.detach() - t0) / delta).clamp(0, K - 2).long()
        unit = torch.arange(t.shape[-1], device=t.device) * K
        rel = t - (t0 + j.to(t.dtype) * delta)
        return j + unit, rel.clamp(0, delta), rel, delta

    def forward(self, t: Tensor) -> Tensor:
        c = self.values()
        idx, r, _, delta = self._locate(t)
        lo, hi = _lookup(c, idx), _lookup(c, idx + 1)
        return lo + (hi - lo) / delta * r

    def value_and_derivative(self, t: Tensor) -> tuple[Tensor, Tensor]:
        c = self.values()
        idx, r, rel, delta = self._locate(t)
        lo, hi = _lookup(c, idx), _lookup(c, idx + 1)
        slope = (hi - lo) / delta
        inside = (rel > 0) & (rel < delta)
        return lo + slope * r, slope * inside

    def antiderivative(self, t: Tensor) -> Tensor:
        # F(t) = c_0 t + sum_i s_i ramp_i(t), ramp_i = r_i^2 / 2 + delta (t - t_i - delta)_+;
        # segments i < j contribute (c_j - c_0) t - B_j with B_j = sum_{i<j} s_i delta (t_i + delta / 2)
        c = self.values()
        delta = self.knots[1] - self.knots[0]
        slopes = (c[:, 1:] - c[:, :-1]) / delta
        B = torch.cumsum(slopes * delta * (self.knots[:-1] + delta / 2), -1)
        B = torch.cat([torch.zeros_like(B[:, :1]), B], -1)  # (h, K)
        idx, r, rel, _ = self._locate(t)
        c0 = c[:, 0]
        s_j = (_lookup(c, idx + 1) - _lookup(c, idx)) / delta
        ramp = r * r / 2 + delta * (rel - delta).clamp_min(0)
        return c0 * t + (_lookup(c, idx) - c0) * t - _lookup(B, idx) + s_j * ramp

    def derivative_bound(self) -> Tensor:
        c = self.values()
        return ((c[:, 1:] - c[:, :-1]).abs() / (self.knots[1] - self.knots[0])).amax(-1)

    def channels_first(
        self,
        u: Tensor,
        scale: Tensor | None = None,
        shift: Tensor | None = None,
        gain: Tensor | None = None,
    ) -> Tensor:
        r""":math:`\text{gain}_c\, \sigma_c(\text{scale}_c\, u + \text{shift}_c)` for ``u`` of
        shape ``(B, h, *)`` (units on axis 1, the images' layout); ``scale``, ``shift`` and
        ``gain`` ``(h,)`` default to one, zero and one.

        One affine map to knot coordinates, the segment by ``floor`` and the value from the
        segment's start and rise (the gain scales the knot values): no moved axis and no
        copy. Without gradients the temporaries are reused in place (four times faster than
        :meth:`forward` on a moved axis); with gradients the backward is written by hand (the
        slope per value, kept by the forward, and one ``scatter_add`` per table). Equal to
        :meth:`forward` up to rounding.
        """
        c = self.values() if gain is None else self.values() * gain[:, None]
        t0, delta = self.knots[0], self.knots[1] - self.knots[0]  # tensors: no device sync
        if torch.is_grad_enabled():
            return _ChannelsFirstSpline.apply(u, c, scale, shift, t0, delta)
        with torch.no_grad():
            return _spline_at(_knot_coordinates(u, c, scale, shift, t0, delta), c)[0]


def _knot_coordinates(
    u: Tensor, c: Tensor, scale: Tensor | None, shift: Tensor | None, t0: Tensor, delta: Tensor
) -> Tensor:
    # (scale_c u + shift_c - t_0) / delta in one addcmul (units on axis 1)
    view = (c.shape[0],) + (1,) * (u.dim() - 2)
    a = (torch.ones_like(c[:, 0]) if scale is None else scale) / delta
    b = ((torch.zeros_like(c[:, 0]) if shift is None else shift) - t0) / delta
    return torch.addcmul(b.reshape(view), u, a.reshape(view))


def _spline_at(s: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    # the spline of values c (h, K) at knot coordinates s (units on axis 1, overwritten):
    # the segment's start plus its rise times the offset. Also returns the segments, the
    # offsets and the rises (the backward's)
    idx, frac = _segments(s, c.shape[1])
    start, rise = c[:, :-1].contiguous(), (c[:, 1:] - c[:, :-1]).contiguous()
    r = _lookup(rise, idx)
    return torch.addcmul(_lookup(start, idx), r, frac), idx, frac, r


def _segments(s: Tensor, knots: int) -> tuple[Tensor, Tensor]:
    # s: knot coordinates (t - t_0) / delta, units on axis 1, overwritten. Returns the flat
    # segment index j + unit * (K - 1) and the clipped offset in [0, 1]
    view = (s.shape[1],) + (1,) * (s.dim() - 2)
    j = s.floor().clamp_(0, knots - 2)
    frac = s.sub_(j).clamp_(0, 1)
    unit = torch.arange(s.shape[1], device=s.device) * (knots - 1)
    return j.to(torch.int64).add_(unit.reshape(view)), frac


class _ChannelsFirstSpline(torch.autograd.Function):
    # sigma_c(scale_c u + shift_c) for u of shape (B, h, *), values c (h, K) at knots
    # t_0 + k delta. The forward keeps the slope and the segments, so that the backward is
    # a few products and one scatter_add per table (the values' starts and rises)
    @staticmethod
    def forward(ctx: Any, u, c, scale, shift, t0, delta):  # type: ignore[override]
        h, K = c.shape
        view = (h,) + (1,) * (u.dim() - 2)
        s = _knot_coordinates(u, c, scale, shift, t0, delta)
        inside = (s > 0).logical_and_(s < K - 1)  # off the knot range the spline is constant
        out, idx, frac, r = _spline_at(s, c)
        slope = r.mul_(inside).div_(delta)  # d sigma / d t at t = scale u + shift
        ctx.save_for_backward(slope, idx, frac, u if ctx.needs_input_grad[2] else None, scale)
        ctx.view, ctx.knots = view, K
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        slope, idx, frac, u, scale = ctx.saved_tensors
        need_u, need_c, need_scale, need_shift = ctx.needs_input_grad[:4]
        gu = gc = gscale = gshift = None
        gt = grad * slope
        dims = [0, *range(2, grad.dim())]
        if need_u:
            gu = gt if scale is None else gt * scale.reshape(ctx.view)
        if need_c:
            # out = start_j + rise_j frac with start_j = c_j, rise_j = c_{j+1} - c_j
            h, flat = ctx.view[0], idx.reshape(-1)
            table = grad.new_zeros(2, h * (ctx.knots - 1))
            table[0].scatter_add_(0, flat, grad.reshape(-1))
            table[1].scatter_add_(0, flat, (grad * frac).reshape(-1))
            g_start, g_rise = table.view(2, h, ctx.knots - 1)
            gc = grad.new_zeros(h, ctx.knots)
            gc[:, :-1] += g_start - g_rise
            gc[:, 1:] += g_rise
        if need_scale:
            gscale = (gt * u).sum(dims)
        if need_shift:
            gshift = gt.sum(dims)
        return gu, gc, gscale, gshift, None, None


def _group_view(z: Tensor, dim: int) -> tuple[int, ...]:
    # the shape that broadcasts per-group parameters (groups,) over z, the groups on the
    # axis before dim
    return (-1,) + (1,) * (z.dim() - dim % z.dim())


class GroupActivation(nn.Module):
    r"""A convex :math:`\phi : \mathbb{R}^h \to \mathbb{R}` applied to ``groups`` groups at once.

    Input ``z`` has shape ``(*, groups, h)``. Parameters are per group.
    """

    def __init__(self, groups: int = 1):
        super().__init__()
        self.groups = groups

    def potential(self, z: Tensor) -> Tensor:
        r"""Returns :math:`\phi(z)`, shape ``(*, groups)``."""
        raise NotImplementedError

    def forward(self, z: Tensor) -> Tensor:
        r"""Returns :math:`\nabla\phi(z)`, shape ``(*, groups, h)``."""
        return self.gradient_and_hessian(z, hessian=False)[0]

    def gradient(self, z: Tensor, dim: int = -1) -> Tensor:
        r"""Returns :math:`\nabla\phi(z)` with each group's :math:`h` entries on axis ``dim``
        and the groups on the axis before it (e.g. ``(B, groups, h, H, W)`` with ``dim=2``:
        images' layout, no moved axes when a subclass overrides this). Shape of ``z``."""
        dim = dim % z.dim()
        if dim == z.dim() - 1:
            return self(z)
        return self(z.movedim((dim - 1, dim), (-2, -1))).movedim((-2, -1), (dim - 1, dim))

    def gradient_and_hessian(
        self, z: Tensor, hessian: bool = True
    ) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor] | None]:
        r"""Returns :math:`\nabla\phi(z)` and, if asked, :math:`(D, U, s)` with
        :math:`\nabla^2\phi = \operatorname{diag}(D) + U \operatorname{diag}(s) U^\top`;
        shapes ``(*, G, h)``, ``(*, G, h, r)``, ``(*, G, r)``."""
        raise NotImplementedError

    def hessian_bound(self) -> Tensor:
        r"""An upper bound on :math:`\sup_z \|\nabla^2 \phi(z)\|_2`, one per group."""
        raise NotImplementedError


class Softmax(GroupActivation):
    r"""Scaled log-sum-exp :math:`\phi(z) = \beta^{-1}\operatorname{LSE}(\beta z)`, gradient softmax.

    :math:`\nabla\phi = p = \operatorname{softmax}(\beta z)`,
    :math:`\nabla^2\phi = \beta(\operatorname{diag} p - p p^\top) \preceq (\beta/2) I`,
    with a learnable :math:`\beta = \operatorname{softplus}(\cdot) > 0` per group (Thm 4).
    """

    def __init__(self, groups: int = 1, beta: float = 1.0):
        super().__init__(groups)
        self.raw_beta = nn.Parameter(torch.full((groups,), inverse_softplus(beta)))

    def beta(self) -> Tensor:
        return F.softplus(self.raw_beta)

    def potential(self, z: Tensor) -> Tensor:
        beta = self.beta()
        return torch.logsumexp(beta[:, None] * z, dim=-1) / beta

    def gradient(self, z: Tensor, dim: int = -1) -> Tensor:
        return torch.softmax(self.beta().reshape(_group_view(z, dim)) * z, dim=dim)

    def gradient_and_hessian(self, z, hessian=True):
        beta = self.beta()
        p = torch.softmax(beta[:, None] * z, dim=-1)
        if not hessian:
            return p, None
        b = beta.expand(z.shape[:-1])
        return p, (b[..., None] * p, p[..., None], -b[..., None])

    def hessian_bound(self) -> Tensor:
        return self.beta() / 2


class WSoftmax(GroupActivation):
    r"""The weighted softmax of the authors' code: :math:`\phi(z) = A \operatorname{LSE}(z) + B \operatorname{LSE}(-z)`.

    :math:`\nabla\phi = A \operatorname{softmax}(z) - B \operatorname{softmax}(-z)` with
    :math:`A, B = \operatorname{softplus}(\cdot) \ge 0` per group: convex, Hessian
    :math:`A(\operatorname{diag} p - pp^\top) + B(\operatorname{diag} q - qq^\top) \preceq (A+B)/2 \, I`.
    """

    def __init__(self, groups: int = 1):
        super().__init__(groups)
        self.raw_a = nn.Parameter(torch.full((groups,), inverse_softplus(1.0)))
        self.raw_b = nn.Parameter(torch.full((groups,), inverse_softplus(1.0)))

    def potential(self, z: Tensor) -> Tensor:
        a, b = F.softplus(self.raw_a), F.softplus(self.raw_b)
        return a * torch.logsumexp(z, dim=-1) + b * torch.logsumexp(-z, dim=-1)

    def gradient(self, z: Tensor, dim: int = -1) -> Tensor:
        view = _group_view(z, dim)
        a, b = F.softplus(self.raw_a).reshape(view), F.softplus(self.raw_b).reshape(view)
        return a * torch.softmax(z, dim=dim) - b * torch.softmax(-z, dim=dim)

    def gradient_and_hessian(self, z, hessian=True):
        a, b = F.softplus(self.raw_a)[:, None], F.softplus(self.raw_b)[:, None]
        p, q = torch.softmax(z, dim=-1), torch.softmax(-z, dim=-1)
        grad = a * p - b * q
        if not hessian:
            return grad, None
        coef = torch.stack([a[:, 0], b[:, 0]], dim=-1).expand(*z.shape[:-1], 2)
        return grad, (a * p + b * q, torch.stack([p, q], dim=-1), -coef)

    def hessian_bound(self) -> Tensor:
        return (F.softplus(self.raw_a) + F.softplus(self.raw_b)) / 2


class LogCoshSquare(GroupActivation):
    r""":math:`\phi(z) = \tfrac12 \big(\sum_i \log\cosh z_i\big)^2`: :math:`\tau(u) = u^2/2` after a sum of log-cosh.

    The module of the 2023 monotone-gradient-network paper:
    :math:`\nabla\phi = \sigma(z) \tanh z` with :math:`\sigma = \sum_i \log\cosh z_i`, and
    :math:`\nabla^2\phi = \tanh z \tanh z^\top + \sigma(z) \operatorname{diag}(\operatorname{sech}^2 z) \succeq 0`.
    Not globally Lipschitz (its Hessian grows with :math:`|z|`).
    """

    def potential(self, z: Tensor) -> Tensor:
        return log_cosh(z).sum(-1) ** 2 / 2

    def gradient_and_hessian(self, z, hessian=True):
        sig = log_cosh(z).sum(-1, keepdim=True)
        t = torch.tanh(z)
        if not hessian:
            return sig * t, None
        ones = torch.ones(z.shape[:-1] + (1,), dtype=z.dtype, device=z.device)
        return sig * t, (sig * (1 - t * t), t[..., None], ones)

    def hessian_bound(self) -> Tensor:
        return torch.full((self.groups,), math.inf)


_ELEMENTWISE = {
    "linear": lambda h, monotone: Identity(),
    "tanh": lambda h, monotone: Tanh(),
    "sigmoid": lambda h, monotone: Sigmoid(),
    "softplus": lambda h, monotone: Softplus(),
    "wtanh": lambda h, monotone: WTanh(h, monotone=monotone),
    "learned": lambda h, monotone: SigmoidMixture(h, monotone=monotone),
    "spline": lambda h, monotone: LinearSpline(h, monotone=monotone),
}

_GROUP = {
    "softmax": lambda groups: Softmax(groups),
    "wsoftmax": lambda groups: WSoftmax(groups),
    "logcosh": lambda groups: LogCoshSquare(groups),
}


def elementwise_activation(name: str, features: int, monotone: bool = True) -> Activation:
    r"""Builds an elementwise activation by name: one of ``linear``, ``tanh``, ``sigmoid``,
    ``softplus``, ``wtanh``, ``learned`` (a :class:`SigmoidMixture`), ``spline`` (a :class:`LinearSpline`)."""
    if not isinstance(name, str) or name not in _ELEMENTWISE:
        raise ValueError(f"activation must be one of {sorted(_ELEMENTWISE)}, got {name!r}")
    return _ELEMENTWISE[name](features, monotone)


def group_activation(name: str, groups: int = 1) -> GroupActivation:
    r"""Builds a group activation by name: ``softmax``, ``wsoftmax`` or ``logcosh``."""
    if not isinstance(name, str) or name not in _GROUP:
        raise ValueError(f"activation must be one of {sorted(_GROUP)}, got {name!r}")
    return _GROUP[name](groups)
