r"""Modular gradient networks: GradNet-M and mGradNet-M, eqs. (43)–(44).

.. math:: f(x) = \sum_{m=1}^M a_m \, W_m^\top \nabla\phi_m(W_m x + b_m) + c,
          \qquad \phi_m = \tau_m \circ \sigma_m,

each module being the gradient of :math:`x \mapsto a_m \phi_m(W_m x + b_m)`, so the
sum is a GradNet for real :math:`a_m` (Thm 12) and an mGradNet when every
:math:`\phi_m` is convex and :math:`a_m \ge 0` (Cor 12.1). Module kinds:

* ``"softmax"``: :math:`\sigma_m = \beta_m^{-1}\operatorname{LSE}(\beta_m z)`, :math:`\tau_m` the
  identity, a learnable :math:`\beta_m > 0` (the paper's experiment);
* ``"wsoftmax"``: :math:`\phi_m = A_m \operatorname{LSE}(z) + B_m \operatorname{LSE}(-z)`
  (the authors' code, PolyMax study);
* ``"logcosh"``: :math:`\sigma_m = \sum_i \log\cosh z_i` and :math:`\tau_m(u) = u^2/2`
  (the 2023 monotone-gradient-network paper).

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Sec. 6.2, Thm 12, Cor 12.1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import check_positive_int, check_positive_number
from ..io import register
from .activations import GroupActivation, Softmax, group_activation, inverse_softplus
from .base import GradientNetwork, orthogonal_weight, positive, start_near_identity, unconstrain
from .structure import RidgeTerm, StructuredJacobian

__all__ = ["GradNetM", "group_ridge"]


def group_ridge(
    x: Tensor, W: Tensor, b: Tensor, act: GroupActivation, a: Tensor, jacobian: bool
) -> tuple[Tensor, RidgeTerm | None]:
    r"""Evaluates :math:`\sum_m a_m W_m^\top \nabla\phi_m(W_m x + b_m)` and its ridge term.

    Arguments:
        x: Inputs, shape ``(*, d)``.
        W: Module weights, shape ``(M, h, d)``.
        b: Module biases, shape ``(M, h)``.
        act: The group activation :math:`\phi` (``groups=M``).
        a: Module scales, shape ``(M,)``.
        jacobian: Whether to return the Jacobian's ridge term.

    Returns:
        The output ``(*, d)`` and the :class:`~otgrad.nn.structure.RidgeTerm` (or ``None``).
    """
    M, h, d = W.shape
    wf = W.reshape(M * h, d)
    z = (x @ wf.mT).unflatten(-1, (M, h)) + b
    grad, hess = act.gradient_and_hessian(z, hessian=jacobian)
    out = (a[:, None] * grad).flatten(-2) @ wf
    if not jacobian:
        return out, None
    D, U, s = hess
    return out, RidgeTerm(W, a[:, None] * D, U, a[:, None] * s)


@register("GradNetM")
class GradNetM(GradientNetwork):
    r"""The modular gradient network GradNet-M / mGradNet-M, eqs. (43)–(44).

    Arguments:
        dim: The input dimension :math:`d`.
        hidden: The width :math:`h` of each module.
        modules: The number of modules :math:`M`.
        monotone: If ``True``, :math:`a_m = \operatorname{softplus}(\cdot) \ge 0` and the
            network is an mGradNet (Cor 12.1); otherwise :math:`a_m` is real (Thm 12).
        activation: The module kind: ``"softmax"``, ``"wsoftmax"`` or ``"logcosh"``.
        beta: The initial inverse temperature :math:`\beta_m` of softmax modules. It sets
            how sharp the modules are at the scale of the data: 1 suits standardized data;
            data on the unit square (the paper's fields) want about 5.

    Initialization: each :math:`W_m` has orthonormal columns, biases
    :math:`b_m \sim \mathcal{U}(-1, 1)`, softmax inverse temperatures :math:`\beta_m` =
    ``beta``, and the :math:`a_m` are scaled so that :math:`\operatorname{tr} J(0) = d`
    (close to the identity for standardized data). The sharpness at the start matters: on
    the paper's convex field (unit square, 200 epochs, seeds 0 and 1) the test MSE was
    about −42 dB with ``beta=1`` and about −54 dB with ``beta=5``. Non-monotone networks
    start with alternating signs of :math:`a_m`, outside the convex family.

    Example:
        >>> net = GradNetM(2, 7, modules=4)  # the paper's 94-parameter mGradNet-M
        >>> sum(p.numel() for p in net.parameters())
        94
        >>> net(torch.rand(5, 2)).shape
        torch.Size([5, 2])

    References:
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Thm 12, Cor 12.1.

    """

    _config_attributes = {"modules": "num_modules"}  # nn.Module.modules is a method

    def __init__(
        self,
        dim: int,
        hidden: int,
        modules: int = 4,
        monotone: bool = True,
        activation: str = "softmax",
        *,
        beta: float = 1.0,
    ):
        super().__init__(dim)
        check_positive_int(hidden=hidden, modules=modules)
        self.hidden, self.num_modules, self.activation = hidden, modules, activation
        self.monotone = bool(monotone)
        self.beta = check_positive_number("beta", beta)
        self.act = group_activation(activation, modules)
        if isinstance(self.act, Softmax):
            with torch.no_grad():
                self.act.raw_beta.fill_(inverse_softplus(float(beta)))
        self.weight = nn.Parameter(orthogonal_weight(modules, hidden, dim))
        self.bias = nn.Parameter(torch.rand(modules, hidden) * 2 - 1)
        self.raw_a = nn.Parameter(unconstrain(torch.ones(modules), self.monotone))
        self.out_bias = nn.Parameter(torch.zeros(dim))
        start_near_identity(self, self.raw_a)

    def a(self) -> Tensor:
        r"""The module weights :math:`a_m`."""
        return positive(self.raw_a, self.monotone)

    def _evaluate(self, x, jacobian):
        out, term = group_ridge(x, self.weight, self.bias, self.act, self.a(), jacobian)
        out = out + self.out_bias
        return out, (StructuredJacobian(self.dim, [term]) if jacobian else None)

    def _potential(self, x):
        M, h, d = self.weight.shape
        z = (x @ self.weight.reshape(M * h, d).mT).unflatten(-1, (M, h)) + self.bias
        return (self.a() * self.act.potential(z)).sum(-1) + x @ self.out_bias

    def _lipschitz(self):
        norms = torch.linalg.matrix_norm(self.weight, ord=2) ** 2
        return (self.a().abs() * self.act.hessian_bound().to(norms) * norms).sum()
