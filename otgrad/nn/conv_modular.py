r"""The convolutional modular mGradNet (mGradNet-M on images): channels grouped into modules.

The multi-convolution :math:`W` has :math:`M h` output channels, read as :math:`M` modules of
:math:`h` channels; at every pixel :math:`p` module :math:`m` applies a convex group
activation :math:`\phi_m : \mathbb{R}^h \to \mathbb{R}` (the scaled log-sum-exp, or its
two-sided weighted form) to its :math:`h` channels:

.. math:: \psi(x) = \sum_{m, p} a_m \, \phi_m\big((W_m x)_p + b_m\big), \qquad
          f(x) = \nabla\psi(x) = \sum_m a_m W_m^\top \nabla\phi_m(W_m x + b_m).

Each term is a convex function of a linear map of :math:`x`, so with :math:`a_m \ge 0`
:math:`f` is the gradient of a convex potential (Thm 12, Cor 12.1: a convolution is a linear
map) with the symmetric PSD Jacobian :math:`J = W^\top \operatorname{blockdiag}(a_m \nabla^2
\phi_m) W`. Unlike the single-layer and cascaded networks, the channels of a module interact
(a softmax across them), which a coordinatewise :math:`g` cannot express. The Hessians of
these activations are bounded (:math:`\beta_m / 2` for the log-sum-exp), so
:math:`\|J\| \le \max_m a_m \sup\|\nabla^2\phi_m\| \cdot \|W\|^2` for any image: the
reconstruction step size of :func:`~otgrad.inverse.reconstruct` and its convergence
guarantee carry over.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), eqs. (43)–(44), Thm 12, Cor 12.1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._validation import check_positive_int
from ..io import config_from_signature, register
from .activations import Softmax, group_activation, inverse_softplus
from .base import positive, unconstrain
from .conv import ImageGradientNetwork, MultiConv2d

__all__ = ["ConvGradNetM"]

# the group activations with a bounded Hessian (a Lipschitz bound for the solvers)
_BOUNDED = ("softmax", "wsoftmax")


@register("ConvGradNetM")
class ConvGradNetM(ImageGradientNetwork):
    r"""A convolutional mGradNet-M :math:`f(x) = \sum_m a_m W_m^\top \nabla\phi_m(W_m x + b_m)`.

    Arguments:
        channels: The channels of the multi-convolution :math:`W` (image channels first); the
            last, :math:`M h`, is split into ``modules`` groups of :math:`h`.
        modules: The number :math:`M` of modules.
        kernel_size: The kernel size of each convolution factor.
        monotone: Whether :math:`a_m \ge 0` (an mGradNet, :math:`J \succeq 0`); otherwise the
            :math:`a_m` are real (a GradNet, Thm 12).
        activation: ``"softmax"`` (:math:`\beta^{-1}\operatorname{LSE}(\beta z)`, learnable
            :math:`\beta`) or ``"wsoftmax"``.
        beta: The initial :math:`\beta_m` of softmax modules.
        normalize: Whether :math:`W` is divided by an estimate of its operator norm.

    Example:
        >>> net = ConvGradNetM((1, 4, 8), modules=2, kernel_size=3).double()
        >>> x = torch.rand(2, 1, 5, 5, dtype=torch.float64)
        >>> J = net.jacobian(x)  # (2, 25, 25)
        >>> bool(torch.allclose(J, J.mT)), bool(torch.linalg.eigvalsh(J).min() > -1e-12)
        (True, True)
    """

    def __init__(
        self,
        channels: Sequence[int] = (1, 8, 32),
        modules: int = 8,
        kernel_size: int = 7,
        monotone: bool = True,
        activation: str = "softmax",
        beta: float = 1.0,
        normalize: bool = True,
    ):
        super().__init__()
        check_positive_int(modules=modules)
        if activation not in _BOUNDED:
            raise ValueError(f"activation must be one of {_BOUNDED}, got {activation!r}")
        self.conv = MultiConv2d(channels, kernel_size)
        self.in_channels, self.hidden = self.conv.channels[0], self.conv.channels[-1]
        if self.hidden % modules:
            raise ValueError(f"channels[-1]={self.hidden} is not a multiple of modules={modules}")
        self.channels, self.kernel_size, self.num_modules = (
            list(self.conv.channels),
            kernel_size,
            modules,
        )
        self.monotone, self.activation, self.beta = bool(monotone), activation, float(beta)
        self.normalize = bool(normalize)
        self.act = group_activation(activation, modules)
        if isinstance(self.act, Softmax):
            with torch.no_grad():
                self.act.raw_beta.fill_(inverse_softplus(self.beta))
        self.bias = nn.Parameter(torch.zeros(modules, self.hidden // modules))
        self.raw_a = nn.Parameter(unconstrain(torch.ones(modules), self.monotone))

    _config_attributes = {"modules": "num_modules"}  # nn.Module.modules is a method

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments (used by :mod:`otgrad.io`)."""
        return config_from_signature(self)

    def a(self) -> Tensor:
        r"""The module scales :math:`a_m`."""
        return positive(self.raw_a, self.monotone)

    def _groups(self, u: Tensor) -> Tensor:
        # (B, M h, H, W) -> (B, H, W, M, h), plus the module biases
        return u.unflatten(1, (self.num_modules, -1)).permute(0, 3, 4, 1, 2) + self.bias

    def _channels(self, z: Tensor) -> Tensor:
        # (B, H, W, M, h) -> (B, M h, H, W)
        return z.permute(0, 3, 4, 1, 2).flatten(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        r"""Returns :math:`f(x)`, shape of ``x`` ``(B, C, H, W)``."""
        return self.gradient_and_potential(self._check(x), potential=False)[0]

    def gradient_and_potential(
        self, x: Tensor, potential: bool = True, kernel: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        r"""Returns :math:`f(x)` and (if asked) :math:`\psi(x)`, shape ``(B,)``, from one
        :math:`Wx` (no input checks: the solvers' path)."""
        k = self.kernel() if kernel is None else kernel
        # the modules in the images' layout (B, M, h, H, W): no moved axes on this path
        z = self.conv(x, k).unflatten(1, (self.num_modules, -1)) + self.bias[..., None, None]
        a = self.a().reshape(-1, 1, 1, 1)
        out = self.conv.transpose((a * self.act.gradient(z, dim=2)).flatten(1, 2), k)
        if not potential:
            return out, None
        value = self.act.potential(z.movedim(2, -1).movedim(1, -2))  # (B, H, W, M)
        return out, (self.a() * value).sum((1, 2, 3))

    def potential(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\psi(x)`, shape ``(B,)``."""
        return self.gradient_and_potential(self._check(x))[1]

    def jvp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Returns :math:`J(x) v = W^\top \operatorname{blockdiag}(a_m \nabla^2\phi_m) W v`."""
        x, v = self._check(x), self._check(v, "v")
        if v.shape != x.shape:
            raise ValueError(f"v must have the shape of x {tuple(x.shape)}, got {tuple(v.shape)}")
        k = self.kernel()
        _, (D, U, s) = self.act.gradient_and_hessian(self._groups(self.conv(x, k)))
        w = self.conv(v, k).unflatten(1, (self.num_modules, -1)).permute(0, 3, 4, 1, 2)
        hw = D * w + (U * (s * (U * w[..., None]).sum(-2))[..., None, :]).sum(-1)
        return self.conv.transpose(self._channels(self.a()[:, None] * hw), k)

    def jacobian(self, x: Tensor) -> Tensor:
        r"""The dense Jacobian, shape ``(B, n, n)`` with :math:`n = CHW` (small images), from
        :meth:`jvp` column by column."""
        x = self._check(x)
        n = x[0].numel()
        if n > 4096:
            raise ValueError(f"jacobian is for small images (at most 4096 values), got {n}")
        eye = torch.eye(n, dtype=x.dtype, device=x.device).reshape(n, *x.shape[1:])
        cols = [self.jvp(x[b : b + 1].expand(n, *x.shape[1:]), eye) for b in range(x.shape[0])]
        return torch.stack([c.reshape(n, n).mT for c in cols])

    def lipschitz_bound(self) -> float:
        r""":math:`\max_m |a_m| \sup\|\nabla^2\phi_m\| \cdot \|W\|^2`, a bound on :math:`\sup_x\|J(x)\|`."""
        with torch.no_grad():
            slope = float((self.a().abs() * self.act.hessian_bound()).max())
        return slope * self.operator_norm() ** 2

    def extra_repr(self) -> str:
        return (
            f"channels={self.conv.channels}, modules={self.num_modules}, "
            f"kernel_size={self.conv.kernel_size}, monotone={self.monotone}"
        )
