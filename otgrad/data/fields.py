r"""Target gradient fields of the paper's experiments, with exact potentials and gradients.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), eqs. (46)–(49).
    | Convex Potential Flows / ICGN benchmark (Richter-Powell, Lorraine, Amos, 2021).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_input, check_positive_int

__all__ = ["GradientField", "ConvexField", "NonconvexField", "PolyMax", "unit_grid"]


class GradientField:
    r"""A known gradient field :math:`\nabla F` on :math:`\mathbb{R}^d` with its potential :math:`F`."""

    dim: int = 2
    convex: bool = False

    def potential(self, x: Tensor) -> Tensor:
        r"""Returns :math:`F(x)`, shape ``(*)``."""
        raise NotImplementedError

    def gradient(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\nabla F(x)`, shape ``(*, d)``."""
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return self.gradient(check_input(x, "x", self.dim))

    def sample(
        self, n: int, *, generator: torch.Generator | None = None, dtype=torch.float32
    ) -> tuple[Tensor, Tensor]:
        r"""Draws ``n`` uniform points on :math:`[0, 1]^d` and their gradients."""
        check_positive_int(n=n)
        x = torch.rand(n, self.dim, generator=generator, dtype=dtype)
        return x, self.gradient(x)


class ConvexField(GradientField):
    r"""The convex benchmark, eqs. (46)–(47):
    :math:`F = x_1^4 + x_1^2/2 + x_1 x_2/2 + 3x_2^2/2 - x_2^3/3`, convex on :math:`[0, 1]^2`."""

    convex = True

    def potential(self, x):
        x1, x2 = x[..., 0], x[..., 1]
        return x1**4 + x1**2 / 2 + x1 * x2 / 2 + 1.5 * x2**2 - x2**3 / 3

    def gradient(self, x):
        x1, x2 = x[..., 0], x[..., 1]
        return torch.stack([4 * x1**3 + x1 + x2 / 2, 3 * x2 - x2**2 + x1 / 2], dim=-1)


class NonconvexField(GradientField):
    r"""The nonconvex benchmark, eqs. (48)–(49):
    :math:`G = \sin(2\pi x_1)\cos(\pi x_2)/4 + x_1 x_2/2 - x_2^2/2`."""

    def potential(self, x):
        x1, x2 = x[..., 0], x[..., 1]
        return torch.sin(2 * math.pi * x1) * torch.cos(math.pi * x2) / 4 + x1 * x2 / 2 - x2**2 / 2

    def gradient(self, x):
        x1, x2 = x[..., 0], x[..., 1]
        g1 = math.pi / 2 * torch.cos(2 * math.pi * x1) * torch.cos(math.pi * x2) + x2 / 2
        g2 = -math.pi / 4 * torch.sin(2 * math.pi * x1) * torch.sin(math.pi * x2) + x1 / 2 - x2
        return torch.stack([g1, g2], dim=-1)


class PolyMax(GradientField):
    r"""The PolyMax field of the paper's later version, for any :math:`d \ge 2`:
    :math:`\psi(x) = \max_k (x - \tfrac12)^\top A_k (x - \tfrac12) / c` over three symmetric
    matrices :math:`A_k \in \{S, P, Q\}` with, for :math:`i, j = 1..d`,
    :math:`\alpha_{ij} = (i + j - 2)/(2d - 2)`, :math:`D_{ij} = \log(d)(1 + |i - j|)`,
    :math:`S = (2 + \sin 4\pi\alpha)/D`, :math:`P = (1 + 2\alpha)/D`, :math:`Q = (3 - 2\alpha)/D`.

    The gradient :math:`2 A_{k^*}(x - \tfrac12)/c` is piecewise linear (non-smooth where the
    maximizing quadratic changes); :math:`c` makes the mean gradient norm over 10,000
    uniform points (a fixed generator) equal to 1.

    Arguments:
        dim: The dimension :math:`d \ge 2`.
    """

    def __init__(self, dim: int):
        check_positive_int(dim=dim)
        if dim < 2:
            raise ValueError(f"dim must be at least 2 for PolyMax, got {dim}")
        self.dim = dim
        i = torch.arange(dim, dtype=torch.float64)
        alpha = (i[:, None] + i[None, :]) / (2 * dim - 2)
        D = math.log(dim) * (1 + (i[:, None] - i[None, :]).abs())
        self.A = torch.stack(
            [(2 + torch.sin(4 * math.pi * alpha)) / D, (1 + 2 * alpha) / D, (3 - 2 * alpha) / D]
        )
        self._cache: dict = {}
        self.c = 1.0
        x = torch.rand(
            10_000, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64
        )
        self.c = float(self.gradient(x).norm(dim=-1).mean())

    def _products(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = x - 0.5
        key = (x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = self.A.to(x)
        ay = torch.einsum("kij,...j->...ki", self._cache[key], y)  # (*, 3, d)
        return ay, (ay * y[..., None, :]).sum(-1)  # A_k y and the quadratics, (*, 3)

    def potential(self, x):
        return self._products(x)[1].amax(-1) / self.c

    def gradient(self, x):
        ay, q = self._products(x)
        k = q.argmax(-1)[..., None, None].expand(*ay.shape[:-2], 1, ay.shape[-1])
        return 2 * ay.gather(-2, k)[..., 0, :] / self.c


def unit_grid(n: int = 100, dtype=torch.float32) -> Tensor:
    r"""The uniform ``n × n`` test grid on :math:`[0, 1]^2`, shape ``(n², 2)`` (the paper's test set)."""
    t = torch.linspace(0, 1, n, dtype=dtype)
    g1, g2 = torch.meshgrid(t, t, indexing="xy")
    return torch.stack([g1.reshape(-1), g2.reshape(-1)], dim=-1)
