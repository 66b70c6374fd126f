r"""Combinators: new (m)GradNets from existing ones.

* :class:`Sum` — linear combinations of GradNets are GradNets (Cor 2.1); conical
  (nonnegative) combinations of mGradNets are mGradNets (Cor 3.1).
* :class:`ConicalSum` — a learnable conical combination (Cor 3.1).
* :class:`StronglyConvex` — :math:`f(x) + \mu x` is the gradient of a :math:`\mu`-strongly
  convex function (Prop 3.1).
* :class:`LipschitzShift` — :math:`g(x) + L x` is an mGradNet when :math:`g` is an
  :math:`L`-Lipschitz GradNet (Prop 3.2); :math:`L` is the network's own bound,
  recomputed (differentiably) at every call.
* :class:`Difference` — the difference of two mGradNets is a GradNet, universal for
  gradients of functions with bounded Hessian (Thm 5).
* :class:`TransformedRidgeSum` — :math:`f(x) = s(\psi_g(x)) \, g(x)`, eq. (35) (Thm 9;
  monotone version Thm 10).

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Cor 2.1, 3.1, Prop 3.1, 3.2,
      Thm 5, 9, 10.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import calculus
from .._validation import check_positive_number
from ..io import register
from .activations import SigmoidMixture
from .base import GradientNetwork, unconstrain
from .structure import StructuredJacobian

__all__ = [
    "Sum",
    "ConicalSum",
    "StronglyConvex",
    "LipschitzShift",
    "Difference",
    "TransformedRidgeSum",
]


def _check_net(net: object, name: str, dim: int | None = None) -> GradientNetwork:
    if not isinstance(net, GradientNetwork):
        raise TypeError(f"{name} must be a GradientNetwork, got {type(net).__name__}")
    if dim is not None and net.dim != dim:
        raise ValueError(f"{name} has dim {net.dim}, expected {dim}")
    return net


def _check_nets(nets: Sequence[GradientNetwork]) -> list[GradientNetwork]:
    nets = list(nets)
    if not nets:
        raise ValueError("nets must hold at least one network")
    for i, n in enumerate(nets):
        _check_net(n, f"nets[{i}]", nets[0].dim if i else None)
    return nets


class _Combination(GradientNetwork):
    """A weighted sum :math:`\\sum_k c_k f_k`, coefficients from :meth:`_coefficients`."""

    nets: nn.ModuleList

    @abc.abstractmethod
    def _coefficients(self) -> Tensor:
        r"""The coefficients :math:`c_k`, shape ``(K,)``."""

    def _evaluate(self, x, jacobian):
        c = self._coefficients()
        parts = [net._evaluate(x, jacobian) for net in self.nets]
        out = sum(ck * fk for ck, (fk, _) in zip(c, parts, strict=True))
        if not jacobian or any(sk is None for _, sk in parts):
            return out, None
        structure = parts[0][1].scaled(c[0])
        for ck, (_, sk) in zip(c[1:], parts[1:], strict=True):
            structure = structure + sk.scaled(ck)
        return out, structure

    def _dense_jacobian(self, x):
        c = self._coefficients()
        return sum(ck * n._dense_jacobian(x) for ck, n in zip(c, self.nets, strict=True))

    def _potential(self, x):
        c = self._coefficients()
        return sum(ck * n._potential(x) for ck, n in zip(c, self.nets, strict=True))

    def _lipschitz(self):
        c = self._coefficients().abs()
        return sum(ck * n._lipschitz() for ck, n in zip(c, self.nets, strict=True))


@register("Sum")
class Sum(_Combination):
    r"""A fixed linear combination :math:`f = \sum_k c_k f_k` (Cor 2.1, 3.1).

    Monotone when every :math:`f_k` is monotone and every :math:`c_k \ge 0`.

    Arguments:
        nets: The networks, all of the same ``dim``.
        weights: The coefficients :math:`c_k` (default all ones).

    Example:
        >>> from otgrad.nn import GradNetC, GradNetM
        >>> net = Sum([GradNetC(2, 8), GradNetM(2, 8)], weights=[0.5, 0.5])
        >>> net.monotone
        True
    """

    def __init__(self, nets: Sequence[GradientNetwork], weights: Sequence[float] | None = None):
        nets = _check_nets(nets)
        super().__init__(nets[0].dim)
        self.nets = nn.ModuleList(nets)
        if weights is None:
            weights = [1.0] * len(nets)
        weights = [float(w) for w in weights]
        if len(weights) != len(nets):
            raise ValueError(f"weights must have {len(nets)} entries, got {len(weights)}")
        if not all(math.isfinite(w) for w in weights):
            raise ValueError("weights must be finite")
        self.weights = weights
        self.register_buffer("coefficients", torch.tensor(weights))
        self.monotone = all(n.monotone for n in nets) and all(w >= 0 for w in weights)

    def _coefficients(self) -> Tensor:
        return self.coefficients


@register("ConicalSum")
class ConicalSum(_Combination):
    r"""A learnable conical combination :math:`\sum_k \operatorname{softplus}(\rho_k) f_k` (Cor 3.1).

    Monotone when every :math:`f_k` is monotone.

    Arguments:
        nets: The networks, all of the same ``dim``.
    """

    def __init__(self, nets: Sequence[GradientNetwork]):
        nets = _check_nets(nets)
        super().__init__(nets[0].dim)
        self.nets = nn.ModuleList(nets)
        self.raw_weights = nn.Parameter(
            unconstrain(torch.full((len(nets),), 1.0 / len(nets)), True)
        )
        self.monotone = all(n.monotone for n in nets)

    def weights(self) -> Tensor:
        r"""The learned coefficients :math:`\operatorname{softplus}(\rho_k)`."""
        return F.softplus(self.raw_weights)

    def _coefficients(self) -> Tensor:
        return self.weights()


@register("StronglyConvex")
class StronglyConvex(GradientNetwork):
    r"""The :math:`\mu`-strongly convex shift :math:`f(x) + \mu x` of an mGradNet (Prop 3.1).

    Its Jacobian is :math:`J_f + \mu I \succeq \mu I`: always invertible, so
    :meth:`logdet` and :meth:`inverse` are well defined everywhere.

    Arguments:
        net: A monotone network (``net.monotone`` must be ``True``).
        mu: The strong-convexity modulus :math:`\mu > 0`.

    Example:
        >>> from otgrad.nn import GradNetC
        >>> net = StronglyConvex(GradNetC(2, 8), mu=0.1)
        >>> x = torch.randn(4, 2)
        >>> torch.allclose(net.inverse(net(x)), x, atol=1e-4)
        True
    """

    monotone = True

    def __init__(self, net: GradientNetwork, mu: float):
        _check_net(net, "net")
        super().__init__(net.dim)
        if not net.monotone:
            raise ValueError(
                f"net must be monotone (an mGradNet) for StronglyConvex; {type(net).__name__} "
                "has monotone=False (use LipschitzShift to make a GradNet monotone)"
            )
        self.net = net
        self.mu = check_positive_number("mu", mu)

    @property
    def strong_convexity(self) -> float:
        r"""The modulus :math:`\mu`."""
        return self.mu

    def _evaluate(self, x, jacobian):
        f, s = self.net._evaluate(x, jacobian)
        out = f + self.mu * x
        if s is None:
            return out, None
        return out, s + StructuredJacobian(self.dim, identity=self.mu)

    def _dense_jacobian(self, x):
        jac = self.net._dense_jacobian(x)
        return jac + self.mu * torch.eye(self.dim, dtype=jac.dtype, device=jac.device)

    def _potential(self, x):
        return self.net._potential(x) + self.mu * (x * x).sum(-1) / 2

    def _lipschitz(self):
        return self.net._lipschitz() + self.mu


@register("LipschitzShift")
class LipschitzShift(GradientNetwork):
    r"""The mGradNet :math:`g(x) + L x` of an :math:`L`-Lipschitz GradNet :math:`g` (Prop 3.2).

    :math:`L` is ``net.lipschitz_bound()`` computed from the current parameters at every
    call (differentiably), so the result is monotone for every parameter value.

    Arguments:
        net: A GradNet with a finite Lipschitz bound.
    """

    monotone = True

    def __init__(self, net: GradientNetwork):
        _check_net(net, "net")
        super().__init__(net.dim)
        try:
            bound = net.lipschitz_bound()
        except NotImplementedError as e:
            raise ValueError(f"net must have a Lipschitz bound for LipschitzShift: {e}") from e
        if not math.isfinite(bound):
            raise ValueError(
                f"net must be globally Lipschitz for LipschitzShift, bound is {bound}"
            )
        self.net = net

    def _evaluate(self, x, jacobian):
        lip = self.net._lipschitz()
        f, s = self.net._evaluate(x, jacobian)
        out = f + lip * x
        if s is None:
            return out, None
        return out, s + StructuredJacobian(self.dim, identity=lip)

    def _dense_jacobian(self, x):
        jac = self.net._dense_jacobian(x)
        return jac + self.net._lipschitz() * torch.eye(
            self.dim, dtype=jac.dtype, device=jac.device
        )

    def _potential(self, x):
        return self.net._potential(x) + self.net._lipschitz() * (x * x).sum(-1) / 2

    def _lipschitz(self):
        return 2 * self.net._lipschitz()


@register("Difference")
class Difference(_Combination):
    r"""The GradNet :math:`f_+ - f_-` of two mGradNets (Thm 5).

    Universal for gradients of functions with bounded Hessian (a convex minus a
    convex function), and never monotone by construction.

    Arguments:
        plus: A monotone network :math:`f_+`.
        minus: A monotone network :math:`f_-` of the same ``dim``.
    """

    monotone = False

    def __init__(self, plus: GradientNetwork, minus: GradientNetwork):
        _check_net(plus, "plus")
        _check_net(minus, "minus", plus.dim)
        for name, n in (("plus", plus), ("minus", minus)):
            if not n.monotone:
                raise ValueError(f"{name} must be monotone (an mGradNet) for Difference")
        super().__init__(plus.dim)
        self.nets = nn.ModuleList([plus, minus])
        self.register_buffer("coefficients", torch.tensor([1.0, -1.0]))

    def config(self) -> dict[str, Any]:
        return {"plus": self.nets[0], "minus": self.nets[1]}

    def _coefficients(self) -> Tensor:
        return self.coefficients


@register("TransformedRidgeSum")
class TransformedRidgeSum(GradientNetwork):
    r"""A transformed sum of ridges, eq. (35): :math:`f(x) = s(\psi_g(x)) \, g(x)`.

    :math:`g` is a GradNet with known potential :math:`\psi_g` (typically a
    :class:`~otgrad.nn.SingleLayerGradNet` with an elementwise activation) and
    :math:`s` a learned scalar network. :math:`f = \nabla S(\psi_g)` with :math:`S' = s`;
    its Jacobian :math:`s J_g + s' g g^\top` is symmetric (Thm 9). With
    ``monotone=True``, :math:`g` must be an mGradNet and
    :math:`s = \operatorname{softplus}(m)` with :math:`m` nondecreasing, so :math:`s \ge 0`,
    :math:`s' \ge 0` and :math:`f` is an mGradNet (Thm 10).

    The potential :math:`S(\psi_g(x))` uses a Gauss–Legendre quadrature of :math:`s` on
    :math:`[0, \psi_g(x)]`.

    Arguments:
        g: The inner GradNet.
        monotone: Whether to build the monotone version.
        components: The number of sigmoids in the scalar network.
    """

    def __init__(self, g: GradientNetwork, monotone: bool = True, components: int = 8):
        _check_net(g, "g")
        super().__init__(g.dim)
        self.monotone = bool(monotone)
        if self.monotone and not g.monotone:
            raise ValueError("g must be monotone (an mGradNet) for a monotone TransformedRidgeSum")
        self.g = g
        self.scalar = SigmoidMixture(1, components=components, monotone=self.monotone)
        self.shift = nn.Parameter(torch.zeros(1))
        self.components = components

    def _s(self, t: Tensor, derivative: bool = False) -> tuple[Tensor, Tensor | None]:
        m, dm = self.scalar.value_and_derivative(t[..., None])
        m, dm = m[..., 0] + self.shift, dm[..., 0]
        if self.monotone:
            return F.softplus(m), (torch.sigmoid(m) * dm if derivative else None)
        return m, (dm if derivative else None)

    def _evaluate(self, x, jacobian):
        psi = self.g._potential(x)
        gx, sg = self.g._evaluate(x, jacobian)
        s, ds = self._s(psi, derivative=jacobian)
        out = s[..., None] * gx
        if not jacobian or sg is None:
            return out, None
        return out, sg.scaled(s) + StructuredJacobian(
            self.dim, outer=[(gx[..., None], ds[..., None])]
        )

    def _dense_jacobian(self, x):
        psi = self.g._potential(x)
        gx = self.g._forward(x)
        s, ds = self._s(psi, derivative=True)
        jac = self.g._dense_jacobian(x)
        return s[..., None, None] * jac + ds[..., None, None] * gx[..., :, None] * gx[..., None, :]

    def _potential(self, x):
        psi = self.g._potential(x)
        return calculus.integrate_0_to(lambda t: self._s(t)[0], psi, self.quadrature_nodes)

    def _lipschitz(self):
        return torch.tensor(math.inf)
