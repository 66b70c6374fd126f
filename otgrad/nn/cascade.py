r"""Cascaded gradient networks: GradNet-C and mGradNet-C, eqs. (38)–(40).

One weight matrix :math:`W` is shared by all layers, with per-layer vectors
:math:`\alpha_l, \beta_l, b_l \in \mathbb{R}^h`:

.. math::
    z_1 = \beta_1 \odot (W x + b_1), \quad
    z_l = \alpha_{l-1} \odot \sigma_{l-1}(z_{l-1}) + \beta_l \odot (W x + b_l), \quad
    f(x) = W^\top \big(\alpha_L \odot \sigma_L(z_L)\big) + c.

Each hidden coordinate depends on :math:`x` only through :math:`u_i = (Wx)_i`, so
:math:`f(x) = W^\top g(Wx) + c` with :math:`g` coordinatewise and
:math:`J(x) = W^\top \operatorname{diag}(g'(Wx)) W`: symmetric (Thm 11), and PSD when
every :math:`\sigma_l` is nondecreasing and :math:`\alpha_l, \beta_l \ge 0` (Cor 11.1).
:math:`g'` is carried through the layers by the chain rule in the same pass.
The potential :math:`\psi(x) = \sum_i G_i(u_i) + c^\top x`, :math:`G_i' = g_i`, is a
one-dimensional integral per hidden unit, computed by Gauss–Legendre quadrature.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Sec. 6.1, Thm 11, Cor 11.1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .. import calculus
from .._validation import check_positive_int
from ..io import register
from .activations import Activation, elementwise_activation
from .base import GradientNetwork, orthogonal_weight, positive, start_near_identity, unconstrain
from .structure import RidgeTerm, StructuredJacobian

__all__ = ["GradNetC", "cascade_map", "cascade_slope_bound"]


def cascade_map(
    u: Tensor,
    acts: Sequence[Activation],
    alpha: Tensor,
    beta: Tensor,
    bias: Tensor,
    derivative: bool = False,
    scale_output: bool = True,
) -> tuple[Tensor, Tensor | None]:
    r"""The coordinatewise cascade :math:`g(u)` of eq. (39) and, if asked, :math:`g'(u)`.

    .. math:: z_1 = \beta_1 \odot (u + b_1), \quad
              z_l = \alpha_{l-1} \odot \sigma_{l-1}(z_{l-1}) + \beta_l \odot (u + b_l), \quad
              g(u) = \alpha_L \odot \sigma_L(z_L),

    with :math:`g'` carried through the layers by the chain rule in the same pass. Every
    hidden unit (last axis of ``u``) has its own scales; :math:`g` is nondecreasing when
    the activations are and :math:`\alpha, \beta \ge 0` (Cor 11.1).

    Arguments:
        u: The pre-activations :math:`u = Wx`, shape ``(*, h)``.
        acts: The :math:`L` activations.
        alpha, beta, bias: The per-layer vectors, shape ``(L, h)`` each.
        derivative: Whether to return :math:`g'(u)` too.
        scale_output: With ``False`` the last scale :math:`\alpha_L` is left out.

    Returns:
        :math:`g(u)` and :math:`g'(u)` (or ``None``), shape of ``u`` each.
    """
    shift = beta * bias
    s = ds = dz = None
    for l, act in enumerate(acts):
        z = torch.addcmul(shift[l], u, beta[l])  # beta_l * (u + b_l)
        if l > 0:
            z = torch.addcmul(z, alpha[l - 1], s)
        if derivative:
            dz = beta[0] if l == 0 else torch.addcmul(beta[l], alpha[l - 1] * ds, dz)
            s, ds = act.value_and_derivative(z)
        else:
            s = act(z)
    gp = ds * dz if derivative else None
    if scale_output:
        s = alpha[-1] * s
        gp = alpha[-1] * gp if derivative else None
    return s, gp


def cascade_slope_bound(acts: Sequence[Activation], alpha: Tensor, beta: Tensor) -> Tensor:
    r"""An upper bound on :math:`|g'|` per hidden unit for :func:`cascade_map`, shape ``(h,)``."""
    alpha, beta = alpha.abs(), beta.abs()
    bound = beta[0]
    for l in range(1, len(acts)):
        bound = alpha[l - 1] * acts[l - 1].derivative_bound().to(alpha) * bound + beta[l]
    return alpha[-1] * acts[-1].derivative_bound().to(alpha) * bound


@register("GradNetC")
class GradNetC(GradientNetwork):
    r"""The cascaded gradient network GradNet-C / mGradNet-C, eqs. (38)–(40).

    Arguments:
        dim: The input dimension :math:`d`.
        hidden: The width :math:`h` of the shared weight :math:`W \in \mathbb{R}^{h \times d}`.
        layers: The number of layers :math:`L`.
        monotone: If ``True``, :math:`\alpha_l, \beta_l = \operatorname{softplus}(\cdot) \ge 0`
            and learnable activations are nondecreasing: an mGradNet (Cor 11.1).
            Otherwise they are real: a GradNet (Thm 11).
        activation: ``"tanh"``, ``"sigmoid"``, ``"softplus"``, ``"wtanh"`` or ``"learned"``;
            learnable activations get their own parameters in each layer.

    Example:
        >>> net = GradNetC(2, 7, layers=4)  # the paper's 100-parameter mGradNet-C
        >>> sum(p.numel() for p in net.parameters())
        100
        >>> float(net.jacobian(torch.rand(3, 2)).det().min()) > 0
        True

    Initialization: :math:`W` with orthonormal columns, :math:`b_l \sim \mathcal{U}(-1, 1)`,
    :math:`\alpha_l = \beta_l = 1`, then :math:`\alpha_L` rescaled so that
    :math:`\operatorname{tr} J(0) = d` (close to the identity map when :math:`h \ge d`).

    The potential uses :attr:`~otgrad.nn.GradientNetwork.quadrature_nodes` (64) Gauss–Legendre nodes per hidden
    unit on :math:`[0, u_i]`, :math:`u = Wx`, in one batched evaluation of the hidden
    map. Its accuracy depends on the length of that interval; measured relative error
    of :math:`\nabla\psi` against ``forward`` (float64, ``benchmarks/core_speed.py``):
    about :math:`10^{-15}` for :math:`\|x\| \sim 1`, :math:`10^{-11}` at 3,
    :math:`10^{-7}` at 10 and :math:`10^{-4}` at 100. Raise ``quadrature_nodes`` for
    far inputs (128 nodes: :math:`10^{-12}` at 10). These figures hold for smooth
    activations; with ``"spline"`` the hidden map has kinks and the quadrature error
    decays only algebraically (about :math:`10^{-3}`).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        layers: int = 4,
        monotone: bool = True,
        activation: str = "tanh",
    ):
        super().__init__(dim)
        check_positive_int(hidden=hidden, layers=layers)
        self.hidden, self.layers, self.activation = hidden, layers, activation
        self.monotone = bool(monotone)
        self.acts = nn.ModuleList(
            elementwise_activation(activation, hidden, self.monotone) for _ in range(layers)
        )
        self.weight = nn.Parameter(orthogonal_weight(hidden, dim))
        self.bias = nn.Parameter(torch.rand(layers, hidden) * 2 - 1)
        ones = unconstrain(torch.ones(layers, hidden), self.monotone)
        self.raw_alpha = nn.Parameter(ones.clone())
        self.raw_beta = nn.Parameter(ones.clone())
        self.out_bias = nn.Parameter(torch.zeros(dim))
        start_near_identity(self, self.raw_alpha, last=True)

    def alpha(self) -> Tensor:
        r"""The scales :math:`\alpha_1, \dots, \alpha_L`, shape ``(L, h)``."""
        return positive(self.raw_alpha, self.monotone)

    def beta(self) -> Tensor:
        r"""The scales :math:`\beta_1, \dots, \beta_L`, shape ``(L, h)``."""
        return positive(self.raw_beta, self.monotone)

    def hidden_map(
        self, u: Tensor, derivative: bool = False, scale_output: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        r"""The coordinatewise map :math:`g(u)` and, if asked, :math:`g'(u)`; ``u`` is ``(*, h)``.

        With ``scale_output=False`` the last scale :math:`\alpha_L` is left out of both.
        """
        return cascade_map(
            u, self.acts, self.alpha(), self.beta(), self.bias, derivative, scale_output
        )

    def _evaluate(self, x, jacobian):
        s, sp = self.hidden_map(x @ self.weight.mT, derivative=jacobian, scale_output=False)
        alpha = self.alpha()[-1]
        # W^T (alpha_L * s) + c, as one matrix product with the scale folded into W
        out = torch.addmm(self.out_bias, s.reshape(-1, self.hidden), alpha[:, None] * self.weight)
        out = out.reshape(*s.shape[:-1], self.dim)
        if not jacobian:
            return out, None
        term = RidgeTerm(self.weight[None], (alpha * sp)[..., None, :])
        return out, StructuredJacobian(self.dim, [term])

    def _potential(self, x):
        u = x @ self.weight.mT
        G = calculus.integrate_0_to(lambda t: self.hidden_map(t)[0], u, self.quadrature_nodes)
        return G.sum(-1) + x @ self.out_bias

    def _lipschitz(self):
        bound = cascade_slope_bound(self.acts, self.alpha(), self.beta())
        return torch.linalg.matrix_norm(bound.sqrt()[:, None] * self.weight, ord=2) ** 2
