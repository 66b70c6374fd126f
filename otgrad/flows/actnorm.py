r"""Activation normalization: a learnable elementwise affine map with data-dependent start.

.. math:: y = (x - m) \odot e^{s}, \qquad \log\left|\det \frac{\partial y}{\partial x}\right| = \sum_i s_i,

initialized on the first batch it sees so that :math:`y` has zero mean and unit variance
per feature (Glow). A diagonal positive scaling is itself the gradient of the convex
quadratic :math:`\tfrac12 \sum_i e^{s_i} x_i^2 - \dots`, so a stack of ActNorms and
mGradNets stays a composition of monotone gradient maps.

References:
    | Glow: Generative Flow with Invertible 1x1 Convolutions (Kingma & Dhariwal, 2018), Sec. 3.1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._validation import check_input, check_positive_int

__all__ = ["ActNorm"]


class ActNorm(nn.Module):
    r"""Elementwise affine map :math:`y = (x - m) \odot e^{s}` with data-dependent initialization.

    Arguments:
        dim: The number of features.
        auto_init: Initialize from the first batch seen in training mode (Glow). Without
            it the map stays the identity until :meth:`initialize` is called (flows
            initialize all their layers at once, on a larger sample).

    Example:
        >>> norm = ActNorm(2)
        >>> x = 3 * torch.randn(1000, 2) + 5
        >>> y, ladj = norm(x)  # the first call initializes m and s from x
        >>> bool(y.mean(0).abs().max() < 1e-5), bool((y.std(0, unbiased=False) - 1).abs().max() < 1e-5)
        (True, True)
        >>> torch.allclose(norm.inverse(y), x, atol=1e-4)
        True
    """

    def __init__(self, dim: int, auto_init: bool = True):
        super().__init__()
        check_positive_int(dim=dim)
        self.dim, self.auto_init = dim, bool(auto_init)
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_scale = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialized", torch.tensor(False))

    def config(self) -> dict:
        return {"dim": self.dim, "auto_init": self.auto_init}

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        r"""Sets :math:`m` and :math:`s` so that ``x`` (shape ``(n, dim)``) is standardized."""
        x = check_input(x, "x", self.dim).reshape(-1, self.dim)
        if x.shape[0] < 2:
            raise ValueError(f"ActNorm needs at least 2 samples to initialize, got {x.shape[0]}")
        std = x.std(0, unbiased=False).clamp_min(1e-6)
        self.loc.copy_(x.mean(0).to(self.loc))
        self.log_scale.copy_((-std.log()).to(self.log_scale))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Returns :math:`y` and :math:`\log|\det \partial y/\partial x|` (shape ``(*)``).

        With ``auto_init``, the first call in training mode initializes the map from ``x``.
        """
        if self.auto_init and self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x - self.loc) * self.log_scale.exp()
        return y, self.log_scale.sum().expand(x.shape[:-1])

    def inverse(self, y: Tensor) -> Tensor:
        r"""Returns :math:`x = y \odot e^{-s} + m`."""
        return y * (-self.log_scale).exp() + self.loc

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
