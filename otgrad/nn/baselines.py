r"""Baselines that parameterize a potential and take its gradient by automatic differentiation.

These share the :class:`~otgrad.nn.GradientNetwork` interface so that studies can
compare them with gradient networks on equal terms. Their forward pass is
``torch.func.grad`` of the potential; training through it differentiates the
network twice (double backward), which is what gradient networks avoid.

References:
    | Input Convex Neural Networks (Amos, Xu, Kolter, ICML 2017).
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_positive_int
from ..calculus import gauss_legendre
from ..io import register
from .activations import LinearSpline
from .base import GradientNetwork
from .single import SingleLayerGradNet
from .structure import RidgeTerm, StructuredJacobian

__all__ = ["ICNN", "MLPPotential", "CRR", "RR", "ICGN"]


class _PotentialNetwork(GradientNetwork):
    r"""A network of a scalar potential whose field is its gradient by ``torch.func.grad``."""

    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__(dim)
        check_positive_int(hidden=hidden, layers=layers)
        self.hidden, self.layers = hidden, layers

    @abc.abstractmethod
    def _scalar_potential(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\psi(x)`, shape ``(*)``."""

    def _potential(self, x):
        return self._scalar_potential(x)

    def _evaluate(self, x, jacobian):
        flat = x.reshape(-1, self.dim)

        def single(xi: Tensor) -> Tensor:
            return self._scalar_potential(xi[None])[0]

        return torch.func.vmap(torch.func.grad(single))(flat).reshape(x.shape), None


@register("ICNN")
class ICNN(_PotentialNetwork):
    r"""An input convex neural network (Amos et al. 2017); ``forward`` is its input gradient.

    .. math:: z_1 = \sigma(A_0 x + b_0), \quad z_{k+1} = \sigma(W_k z_k + A_k x + b_k), \quad
              \psi(x) = w^\top z_K + a^\top x + \beta

    with :math:`W_k, w \ge 0` (softplus reparameterization) and :math:`\sigma` the softplus
    (convex, nondecreasing): :math:`\psi` is convex for every parameter value, so
    ``forward`` is monotone.

    Arguments:
        dim: The input dimension.
        hidden: The width of each hidden layer.
        layers: The number of hidden layers.
    """

    monotone = True

    def __init__(self, dim: int, hidden: int, layers: int = 2):
        super().__init__(dim, hidden, layers)
        self.inputs = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(layers))
        self.raw_hidden = nn.ParameterList(
            nn.Parameter(torch.randn(hidden, hidden) / hidden - 2.0) for _ in range(layers - 1)
        )
        self.raw_out = nn.Parameter(torch.randn(hidden) / hidden - 1.0)
        self.linear = nn.Linear(dim, 1)

    def _scalar_potential(self, x):
        z = F.softplus(self.inputs[0](x))
        for lin, raw in zip(self.inputs[1:], self.raw_hidden, strict=True):
            z = F.softplus(z @ F.softplus(raw).mT + lin(x))
        return z @ F.softplus(self.raw_out) + self.linear(x)[..., 0]


@register("MLPPotential")
class MLPPotential(_PotentialNetwork):
    r"""An unconstrained MLP potential :math:`\psi` (tanh layers); ``forward`` is
    :math:`\nabla\psi` (a GradNet). Arguments as :class:`ICNN`."""

    monotone = False

    def __init__(self, dim: int, hidden: int, layers: int = 2):
        super().__init__(dim, hidden, layers)
        sizes = [dim] + [hidden] * layers
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.out = nn.Linear(hidden, 1)

    def _scalar_potential(self, x):
        for lin in self.hidden_layers:
            x = torch.tanh(lin(x))
        return self.out(x)[..., 0]


@register("CRR")
class CRR(SingleLayerGradNet):
    r"""The convex ridge regularizer's gradient (CRR-NN): :math:`\sum_i w_i \sigma_i(w_i^\top x + b_i) + c`.

    A single-layer mGradNet (Prop 3.3) whose activations are learnable nondecreasing
    linear splines (:class:`~otgrad.nn.LinearSpline`): :math:`J = W^\top \operatorname{diag}(\sigma'(Wx+b)) W`
    is symmetric PSD for every parameter value. ``ridges=10, knots=7`` at :math:`d = 2`
    gives the paper's 102-parameter baseline.

    Arguments:
        dim: The input dimension.
        ridges: The number of ridges (hidden units).
        knots: The number of spline knots per ridge.

    References:
        | A Neural-Network-Based Convex Regularizer for Inverse Problems (Goujon, Neumayer,
          Bohra, Ducotterd, Unser, IEEE TCI 2023).
    """

    def __init__(self, dim: int, ridges: int = 10, knots: int = 7):
        self._init(dim, ridges, knots, True)

    def _init(self, dim: int, ridges: int, knots: int, monotone: bool) -> None:
        check_positive_int(ridges=ridges)
        SingleLayerGradNet.__init__(self, dim, ridges, monotone, "linear", output_scale=False)
        self.act = LinearSpline(ridges, knots=knots, monotone=monotone)
        self.ridges, self.knots = ridges, knots


@register("RR")
class RR(CRR):
    r"""The ridge regularizer's gradient: :class:`CRR` with unconstrained splines (a GradNet, Prop 2.1).

    Arguments:
        dim: The input dimension.
        ridges: The number of ridges (hidden units).
        knots: The number of spline knots per ridge.
    """

    def __init__(self, dim: int, ridges: int = 10, knots: int = 7):
        self._init(dim, ridges, knots, False)


@register("ICGN")
class ICGN(GradientNetwork):
    r"""The input convex gradient network (ICGN) with no hidden layer.

    The Jacobian is parameterized as a Gram matrix :math:`V(x)^\top V(x)` of the Jacobian
    :math:`V(x) = \operatorname{diag}(\sigma'(Wx + b)) W` of :math:`x \mapsto \sigma(Wx + b)`
    (:math:`\sigma` the sigmoid), and the field is its path integral from the reference
    point 0, :math:`f(x) = \int_0^1 V(tx)^\top V(tx) \, x \, dt`. Every term is a ridge, so
    :math:`f(x) = W^\top G(Wx)` with :math:`G_i(u) = \int_0^u \sigma'(s + b_i)^2 \, ds`.

    * ``nodes=k`` (the method of the paper): the path integral by a ``k``-point
      Gauss–Legendre rule, :math:`G_i(u) = u \sum_k w_k \sigma'(t_k u + b_i)^2`. The Jacobian
      of the computed field, :math:`W^\top \operatorname{diag}(G'(Wx)) W`, is exactly symmetric
      (a GradNet) and PSD up to the quadrature error, so ``monotone`` is ``False``.
    * ``nodes=None``: the integral in closed form, :math:`G_i(u) = F(\sigma(u + b_i)) - F(\sigma(b_i))`
      with :math:`F(p) = p^2/2 - p^3/3` (since :math:`dp = \sigma' ds`), so
      :math:`G' = \sigma'^2 \ge 0`: an mGradNet by construction.

    ``hidden=32`` at :math:`d = 2` is the paper's 96-parameter baseline.

    Arguments:
        dim: The input dimension.
        hidden: The width of :math:`W`.
        nodes: The number of quadrature nodes, or ``None`` for the exact integral.

    References:
        | Input Convex Gradient Networks (Richter-Powell, Lorraine, Amos, NeurIPS OTML 2021).
    """

    def __init__(self, dim: int, hidden: int = 32, nodes: int | None = 16):
        super().__init__(dim)
        check_positive_int(hidden=hidden)
        if nodes is not None:
            check_positive_int(nodes=nodes)
        self.hidden, self.nodes = hidden, nodes
        self.monotone = nodes is None
        lin = nn.Linear(dim, hidden)
        self.weight = nn.Parameter(lin.weight.detach().clone())
        self.bias = nn.Parameter(lin.bias.detach().clone())

    def _evaluate(self, x, jacobian):
        u = x @ self.weight.mT
        if self.nodes is None:

            def antiderivative(p: Tensor) -> Tensor:
                return p * p * (0.5 - p / 3)

            s = torch.sigmoid(u + self.bias)
            g = antiderivative(s) - antiderivative(torch.sigmoid(self.bias))
            gp = (s * (1 - s)) ** 2 if jacobian else None
        else:
            t, w = gauss_legendre(self.nodes, dtype=x.dtype, device=x.device)
            s = torch.sigmoid(t[:, None] * u[..., None, :] + self.bias)  # (*, K, h)
            ds = s * (1 - s)
            g = u * ((ds * ds).movedim(-2, -1) @ w)
            if jacobian:
                d2s = ds * (1 - 2 * s)
                gp = ((ds * ds).movedim(-2, -1) @ w) + u * (
                    (2 * ds * d2s).movedim(-2, -1) @ (w * t)
                )
        out = g @ self.weight
        if not jacobian:
            return out, None
        return out, StructuredJacobian(self.dim, [RidgeTerm(self.weight[None], gp[..., None, :])])
