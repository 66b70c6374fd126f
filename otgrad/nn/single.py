r"""Single-hidden-layer gradient networks, eq. (7).

.. math:: f(x) = W^\top \big(\alpha \odot \sigma(W x + b)\big) + c

is the gradient of :math:`\psi(x) = \sum_i \alpha_i S(w_i^\top x + b_i) + c^\top x`
(:math:`S' = \sigma`) for any elementwise :math:`\sigma` (Prop 2.1), and of a convex
potential when :math:`\sigma` is nondecreasing and :math:`\alpha \ge 0` (Prop 3.3).
The activation may itself be a learned scalar network (Cor 2.3, Thm 6; monotone:
Thm 7, Cor 8.1). With the softmax group activation,
:math:`f(x) = a \, W^\top \operatorname{softmax}(\beta(Wx + b)) + c` and
:math:`\psi = a \beta^{-1} \operatorname{LSE}(\beta(Wx + b)) + c^\top x` (Thm 4).

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), eq. (7), Prop 2.1, 3.3, Thm 4, 6, 7.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import check_positive_int
from ..io import register
from .activations import _ELEMENTWISE, _GROUP, elementwise_activation, group_activation
from .base import GradientNetwork, orthogonal_weight, positive, start_near_identity, unconstrain
from .modular import group_ridge
from .structure import RidgeTerm, StructuredJacobian

__all__ = ["SingleLayerGradNet"]


@register("SingleLayerGradNet")
class SingleLayerGradNet(GradientNetwork):
    r"""The single-hidden-layer GradNet / mGradNet of eq. (7).

    Arguments:
        dim: The input dimension :math:`d`.
        hidden: The width :math:`h`.
        monotone: If ``True``, the output scales :math:`\alpha \ge 0` (softplus) and
            learnable activations are nondecreasing: an mGradNet (Prop 3.3).
            Otherwise :math:`\alpha` is real: a GradNet (Prop 2.1).
        activation: Elementwise ``"linear"``, ``"tanh"``, ``"sigmoid"``, ``"softplus"``,
            ``"wtanh"``, ``"learned"`` (a learned scalar network per unit, Thm 6/7),
            ``"spline"`` (a learned linear spline per unit), or the group activation
            ``"softmax"`` (Thm 4).
        output_scale: Whether to learn the output scales :math:`\alpha` (otherwise
            :math:`\alpha = 1`, e.g. when the activation carries its own scale).

    Example:
        >>> net = SingleLayerGradNet(3, 16, activation="softplus")
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(net.jacobian(x), net.jacobian(x).mT)
        True

    Initialization: :math:`W` with orthonormal columns, :math:`b \sim \mathcal{U}(-1, 1)`
    and the output scale set so that :math:`\operatorname{tr} J(0) = d`.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        monotone: bool = True,
        activation: str = "tanh",
        output_scale: bool = True,
    ):
        super().__init__(dim)
        check_positive_int(hidden=hidden)
        if activation not in _ELEMENTWISE and activation not in _GROUP:
            raise ValueError(
                f"activation must be one of {sorted(_ELEMENTWISE) + ['softmax']}, got {activation!r}"
            )
        if activation in _GROUP and activation != "softmax":
            raise ValueError(f"activation {activation!r} is for GradNetM; use 'softmax' here")
        self.hidden, self.activation, self.output_scale = hidden, activation, bool(output_scale)
        self.monotone = bool(monotone)
        self.group = activation in _GROUP
        self.weight = nn.Parameter(orthogonal_weight(hidden, dim))
        self.bias = nn.Parameter(torch.rand(hidden) * 2 - 1)
        if self.group:
            self.act = group_activation(activation, 1)
        else:
            self.act = elementwise_activation(activation, hidden, self.monotone)
        ones = torch.ones(1 if self.group else hidden)
        if output_scale:
            self.raw_alpha = nn.Parameter(unconstrain(ones, self.monotone))
        else:
            self.register_buffer("raw_alpha", unconstrain(ones, self.monotone))
        self.out_bias = nn.Parameter(torch.zeros(dim))
        if output_scale:
            start_near_identity(self, self.raw_alpha)

    def alpha(self) -> Tensor:
        r"""The output scales :math:`\alpha`."""
        return positive(self.raw_alpha, self.monotone)

    def _evaluate(self, x, jacobian):
        if self.group:
            out, term = group_ridge(
                x, self.weight[None], self.bias[None], self.act, self.alpha(), jacobian
            )
        else:
            alpha = self.alpha()
            u = x @ self.weight.mT + self.bias
            if jacobian:
                s, ds = self.act.value_and_derivative(u)
                term = RidgeTerm(self.weight[None], (alpha * ds)[..., None, :])
            else:
                s = self.act(u)
            out = (alpha * s) @ self.weight
        out = out + self.out_bias
        return out, (StructuredJacobian(self.dim, [term]) if jacobian else None)

    def _potential(self, x):
        u = x @ self.weight.mT + self.bias
        if self.group:
            value = self.alpha() * self.act.potential(u[..., None, :])[..., 0]
        else:
            value = (self.alpha() * self.act.antiderivative(u)).sum(-1)
        return value + x @ self.out_bias

    def _lipschitz(self):
        if self.group:
            norm = torch.linalg.matrix_norm(self.weight, ord=2) ** 2
            return self.alpha().abs()[0] * self.act.hessian_bound()[0] * norm
        bound = self.alpha().abs() * self.act.derivative_bound().to(self.weight)
        return torch.linalg.matrix_norm(bound.sqrt()[:, None] * self.weight, ord=2) ** 2
