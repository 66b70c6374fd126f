r"""Baselines that parameterize a potential and take its gradient by automatic differentiation.

These share the :class:`~otgrad.nn.GradientNetwork` interface so that studies can
compare them with gradient networks on equal terms. Their forward pass is
``torch.func.grad`` of the potential; training through it differentiates the
network twice (double backward), which is what gradient networks avoid.

References:
    | Input Convex Neural Networks (Amos, Xu, Kolter, ICML 2017).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import GradientNetwork, check_positive_int

__all__ = ["ICNN", "MLPPotential"]


class _PotentialNetwork(GradientNetwork):
    def _scalar_potential(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _potential(self, x):
        return self._scalar_potential(x)

    def _forward(self, x):
        flat = x.reshape(-1, self.dim)

        def single(xi: Tensor) -> Tensor:
            return self._scalar_potential(xi[None])[0]

        return torch.func.vmap(torch.func.grad(single))(flat).reshape(x.shape)


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
        super().__init__(dim)
        check_positive_int(hidden=hidden, layers=layers)
        self.inputs = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(layers))
        self.raw_hidden = nn.ParameterList(
            nn.Parameter(torch.randn(hidden, hidden) / hidden - 2.0) for _ in range(layers - 1)
        )
        self.raw_out = nn.Parameter(torch.randn(hidden) / hidden - 1.0)
        self.linear = nn.Linear(dim, 1)
        self._config = dict(dim=dim, hidden=hidden, layers=layers)

    def _scalar_potential(self, x):
        z = F.softplus(self.inputs[0](x))
        for lin, raw in zip(self.inputs[1:], self.raw_hidden, strict=True):
            z = F.softplus(z @ F.softplus(raw).mT + lin(x))
        return z @ F.softplus(self.raw_out) + self.linear(x)[..., 0]


class MLPPotential(_PotentialNetwork):
    r"""An unconstrained MLP potential :math:`\psi`; ``forward`` is :math:`\nabla\psi` (a GradNet).

    Arguments:
        dim: The input dimension.
        hidden: The width of each hidden layer.
        layers: The number of hidden layers.
    """

    monotone = False

    def __init__(self, dim: int, hidden: int, layers: int = 2):
        super().__init__(dim)
        check_positive_int(hidden=hidden, layers=layers)
        sizes = [dim] + [hidden] * layers
        self.hidden_layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.out = nn.Linear(hidden, 1)
        self._config = dict(dim=dim, hidden=hidden, layers=layers)

    def _scalar_potential(self, x):
        for lin in self.hidden_layers:
            x = torch.tanh(lin(x))
        return self.out(x)[..., 0]
