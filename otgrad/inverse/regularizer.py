r"""Learned convex regularizers :math:`R_{\lambda,\mu}(x) = \frac{\lambda}{\mu} R(\mu x)` with :math:`\nabla R` an mGradNet.

With :math:`\nabla R` monotone (an mGradNet), :math:`R` is convex and the reconstruction
objective :math:`\frac12\|Ax - y\|^2 + R_{\lambda,\mu}(x)` is convex: gradient descent with
step :math:`1/L` converges to its global minimizer. :math:`\lambda > 0` sets the strength
and :math:`\mu > 0` the scale at which the learned profile acts, as in CRR-NN; both are
learnable. The gradient is :math:`\lambda \nabla R(\mu x)`, its Lipschitz constant at most
:math:`\lambda\mu L_R`.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.3, Cor 11.1.
    | A Neural-Network-Based Convex Regularizer for Inverse Problems (Goujon et al., 2023).
"""

from __future__ import annotations

import math
import os
from importlib import resources
from typing import Any

import torch
from torch import Tensor, nn

from .. import io
from ..nn.conv import check_image

__all__ = ["ConvexRegularizer"]

_PRETRAINED = {"bsd": "crr_bsd.pt"}


@io.register("ConvexRegularizer")
class ConvexRegularizer(nn.Module):
    r"""A convex regularizer whose gradient is a monotone image GradNet.

    Arguments:
        net: A monotone image gradient network (``net(x)`` the gradient, ``net.potential(x)``
            the value, ``net.lipschitz_bound()``), e.g. :class:`~otgrad.nn.conv.ConvGradNet`.
        lmbda: The initial strength :math:`\lambda > 0`.
        mu: The initial scale :math:`\mu > 0`.

    Example:
        >>> from otgrad.nn.conv import ConvGradNet
        >>> reg = ConvexRegularizer(ConvGradNet((1, 4, 8), kernel_size=3), lmbda=2.0)
        >>> x = torch.rand(1, 1, 16, 16)
        >>> reg.grad(x).shape, reg.value(x).shape
        (torch.Size([1, 1, 16, 16]), torch.Size([1]))

    Raises:
        ValueError: If ``net`` is not monotone (the objective would not be convex).
    """

    def __init__(self, net: nn.Module, lmbda: float = 1.0, mu: float = 1.0):
        super().__init__()
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be an nn.Module, got {type(net).__name__}")
        if not getattr(net, "monotone", False):
            raise ValueError(
                f"net must be monotone (an mGradNet) for a convex regularizer; "
                f"{type(net).__name__} has monotone={getattr(net, 'monotone', None)}"
            )
        for name, v in (("lmbda", lmbda), ("mu", mu)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not v > 0
                or not math.isfinite(v)
            ):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        self.net = net
        self.log_lmbda = nn.Parameter(torch.tensor(math.log(lmbda)))
        self.log_mu = nn.Parameter(torch.tensor(math.log(mu)))
        self._init = dict(lmbda=float(lmbda), mu=float(mu))

    def config(self) -> dict[str, Any]:
        return {"net": self.net, **self._init}

    @property
    def lmbda(self) -> float:
        r"""The strength :math:`\lambda`."""
        return float(self.log_lmbda.detach().exp())

    @property
    def mu(self) -> float:
        r"""The scale :math:`\mu`."""
        return float(self.log_mu.detach().exp())

    def set_strength(self, lmbda: float, mu: float | None = None) -> ConvexRegularizer:
        r"""Sets :math:`\lambda` (and :math:`\mu`) in place; returns ``self``."""
        with torch.no_grad():
            self.log_lmbda.fill_(math.log(lmbda))
            if mu is not None:
                self.log_mu.fill_(math.log(mu))
        return self

    def _check(self, x: Any) -> Tensor:
        return check_image(
            x, "x", getattr(self.net, "in_channels", 1), self.log_mu.dtype, self.log_mu.device
        )

    def grad(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\nabla R_{\lambda,\mu}(x) = \lambda \nabla R(\mu x)`."""
        return self.value_and_grad(self._check(x), value=False)[1]

    def value(self, x: Tensor) -> Tensor:
        r"""Returns :math:`R_{\lambda,\mu}(x) = \frac{\lambda}{\mu} R(\mu x)`, shape ``(B,)``."""
        x = self._check(x)
        lam, mu = self.log_lmbda.exp(), self.log_mu.exp()
        return lam / mu * self.net.potential(mu * x)

    def value_and_grad(
        self, x: Tensor, value: bool = True, **options: Any
    ) -> tuple[Tensor | None, Tensor]:
        r"""Returns the value (or ``None``) and the gradient from one network pass (no checks).

        ``options`` go to the network's ``gradient_and_potential`` (e.g. a precomputed ``kernel``).
        """
        lam, mu = self.log_lmbda.exp(), self.log_mu.exp()
        if hasattr(self.net, "gradient_and_potential"):
            g, v = self.net.gradient_and_potential(mu * x, potential=value, **options)
        else:
            g = self.net(mu * x)
            v = self.net.potential(mu * x) if value else None
        return (lam / mu * v if value else None), lam * g

    def hvp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Returns :math:`\nabla^2 R_{\lambda,\mu}(x) v = \lambda\mu J(\mu x) v` (closed form)."""
        lam, mu = self.log_lmbda.exp(), self.log_mu.exp()
        return lam * mu * self.net.jvp(mu * self._check(x), v)

    def lipschitz_bound(self) -> float:
        r"""An upper bound :math:`\lambda\mu L_R` on the Lipschitz constant of the gradient."""
        return self.lmbda * self.mu * self.net.lipschitz_bound()

    def forward(self, x: Tensor) -> Tensor:
        return self.grad(x)

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        r"""Saves the regularizer (network, :math:`\lambda`, :math:`\mu`) with :mod:`otgrad.io`."""
        io.save(self, path, {"estimator": "ConvexRegularizer", **(metadata or {})})

    @classmethod
    def load(
        cls, path: str | os.PathLike, map_location: str | torch.device | None = "cpu"
    ) -> ConvexRegularizer:
        r"""Loads a regularizer saved by :meth:`save` (never executes code from the file)."""
        reg, meta = io.load_estimator(path, "ConvexRegularizer", map_location)
        if not isinstance(reg, cls):
            raise ValueError(f"corrupt ConvexRegularizer file {os.fspath(path)!r}")
        reg.metadata = meta
        return reg

    @classmethod
    def pretrained(cls, name: str = "bsd", sigma: float = 25) -> ConvexRegularizer:
        r"""The regularizer trained on BSD400 patches that ships with otgrad, set for noise ``sigma``.

        One network (a CRR-NN-type single-layer spline mGradNet) serves every noise level;
        :math:`\lambda` and :math:`\mu` were tuned per level on held-out training images
        (never on the test images). See ``applications/inverse/README.md``.

        Arguments:
            name: ``"bsd"`` (natural grayscale images in :math:`[0, 1]`).
            sigma: The noise level on the 0–255 scale: 5, 15 or 25.

        Example:
            >>> reg = ConvexRegularizer.pretrained("bsd", sigma=25)
            >>> reg.lipschitz_bound() > 0
            True
        """
        if name not in _PRETRAINED:
            raise ValueError(f"name must be one of {sorted(_PRETRAINED)}, got {name!r}")
        ref = resources.files("otgrad.inverse").joinpath("weights", _PRETRAINED[name])
        with resources.as_file(ref) as path:
            reg = cls.load(path)
        levels = reg.metadata.get("strengths", {})
        key = f"{float(sigma):g}"
        if key not in levels:
            raise ValueError(
                f"sigma must be one of {sorted(levels, key=float)} for {name!r}, got {sigma!r}"
            )
        lmbda, mu = levels[key]
        return reg.set_strength(lmbda, mu)

