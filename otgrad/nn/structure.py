r"""Structured Jacobians of gradient networks.

Every closed-form network in :mod:`otgrad.nn` has a Jacobian of the form

.. math:: J(x) = \sum_{\text{terms}} \sum_{m} W_m^\top \big(\operatorname{diag}(D_m)
          + U_m \operatorname{diag}(s_m) U_m^\top\big) W_m
          \;+\; \mu I \;+\; V \operatorname{diag}(c) V^\top

where the :math:`W_m \in \mathbb{R}^{h \times d}` are weight matrices, :math:`D_m` the
curvature of the activation on each hidden unit (for elementwise activations
:math:`g'(Wx)`), :math:`U_m` a few hidden-space directions (softmax and log-cosh
modules), :math:`\mu I` a multiple of the identity (strong convexity) and
:math:`V` a few input-space directions (transformed ridge sums). Symmetry is
manifest in this form (Thm 2); with :math:`D, s, c, \mu` giving PSD blocks it is
PSD (Thm 3). :class:`StructuredJacobian` turns it into Jacobian-vector products,
traces and dense Jacobians without automatic differentiation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["RidgeTerm", "StructuredJacobian"]


@dataclass
class RidgeTerm:
    r""":math:`\sum_m W_m^\top (\operatorname{diag}(D_m) + U_m \operatorname{diag}(s_m) U_m^\top) W_m`.

    Attributes:
        W: Weights, shape ``(M, h, d)``.
        D: Diagonal curvature, shape ``(*, M, h)``.
        U: Low-rank directions, shape ``(*, M, h, r)``, or ``None``.
        s: Low-rank coefficients, shape ``(*, M, r)``, or ``None``.
    """

    W: Tensor
    D: Tensor
    U: Tensor | None = None
    s: Tensor | None = None

    def scaled(self, c: Tensor | float) -> RidgeTerm:
        if isinstance(c, Tensor) and c.dim() > 0:
            c = c[..., None, None]
        return RidgeTerm(self.W, self.D * c, self.U, None if self.s is None else self.s * c)

    def matvec(self, v: Tensor) -> Tensor:
        M, h, d = self.W.shape
        wv = (v @ self.W.reshape(M * h, d).mT).unflatten(-1, (M, h))  # (*, M, h)
        t = self.D * wv
        if self.U is not None:
            proj = (self.U * wv[..., None]).sum(-2)  # (*, M, r)
            t = t + (self.U * (self.s * proj)[..., None, :]).sum(-1)
        return t.flatten(-2) @ self.W.reshape(M * h, d)

    def trace(self) -> Tensor:
        out = (self.D * (self.W**2).sum(-1)).sum((-1, -2))
        if self.U is not None:
            v = torch.einsum("mhd,...mhr->...mdr", self.W, self.U)
            out = out + (self.s * (v**2).sum(-2)).sum((-1, -2))
        return out

    def dense(self) -> Tensor:
        M, h, d = self.W.shape
        w = self.W.reshape(M * h, d)
        dflat = self.D.flatten(-2)  # (*, M h)
        batch = dflat.shape[:-1]
        dflat = dflat.reshape(-1, M * h)
        if M * h * d * d <= 1 << 22:
            # small: one GEMM against the outer products w_i w_i^T, shape (M h, d^2)
            outer = (w[:, :, None] * w[:, None, :]).reshape(M * h, d * d)
            jac = (dflat @ outer).reshape(*batch, d, d)
        else:
            # large: batched W^T diag(D) W, the batch chunked so that the (chunk, d, M h)
            # intermediate stays below ~32 MB
            chunk = max(1, (1 << 23) // (d * M * h))
            parts = [(w.mT * dc[:, None, :]) @ w for dc in dflat.split(chunk)]
            jac = (parts[0] if len(parts) == 1 else torch.cat(parts)).reshape(*batch, d, d)
        if self.U is not None:
            v = torch.einsum("mhd,...mhr->...dmr", self.W, self.U).flatten(-2)  # (*, d, M r)
            jac = jac + (v * self.s.flatten(-2)[..., None, :]) @ v.mT
        return jac


@dataclass
class StructuredJacobian:
    r"""A Jacobian kept in structured form; see the module documentation.

    Attributes:
        dim: The input dimension :math:`d`.
        terms: The ridge terms.
        identity: The coefficient :math:`\mu` of :math:`I` (a float or a ``(*,)`` tensor).
        outer: Input-space low-rank terms ``(V, c)``, shapes ``(*, d, r)`` and ``(*, r)``.
    """

    dim: int
    terms: list[RidgeTerm] = field(default_factory=list)
    identity: Tensor | float = 0.0
    outer: list[tuple[Tensor, Tensor]] = field(default_factory=list)

    def scaled(self, c: Tensor | float) -> StructuredJacobian:
        r"""The structure of :math:`c J` (``c`` a float or one value per sample)."""
        cb = c[..., None] if isinstance(c, Tensor) and c.dim() > 0 else c
        return StructuredJacobian(
            self.dim,
            [t.scaled(c) for t in self.terms],
            self.identity * c,
            [(v, k * cb) for v, k in self.outer],
        )

    def __add__(self, other: StructuredJacobian) -> StructuredJacobian:
        return StructuredJacobian(
            self.dim,
            self.terms + other.terms,
            self.identity + other.identity,
            self.outer + other.outer,
        )

    def _identity(self) -> Tensor | float:
        mu = self.identity
        return mu[..., None] if isinstance(mu, Tensor) and mu.dim() > 0 else mu

    def matvec(self, v: Tensor) -> Tensor:
        r"""Returns :math:`J v`, shape ``(*, d)``."""
        out = self._identity() * v
        for t in self.terms:
            out = out + t.matvec(v)
        for vv, c in self.outer:
            out = out + (vv * (c * (vv * v[..., None]).sum(-2))[..., None, :]).sum(-1)
        return out

    def trace(self) -> Tensor:
        r"""Returns :math:`\operatorname{tr} J`, shape ``(*)``."""
        out = self.identity * self.dim
        for t in self.terms:
            out = out + t.trace()
        for vv, c in self.outer:
            out = out + (c * (vv**2).sum(-2)).sum(-1)
        return out

    def dense(self) -> Tensor:
        r"""Returns :math:`J` as a ``(*, d, d)`` tensor."""
        jac = None
        for t in self.terms:
            jac = t.dense() if jac is None else jac + t.dense()
        for vv, c in self.outer:
            part = (vv * c[..., None, :]) @ vv.mT
            jac = part if jac is None else jac + part
        if jac is None:
            raise ValueError("empty structured Jacobian")
        mu = self.identity
        if isinstance(mu, Tensor) or mu != 0.0:
            eye = torch.eye(self.dim, dtype=jac.dtype, device=jac.device)
            mu = mu[..., None, None] if isinstance(mu, Tensor) and mu.dim() > 0 else mu
            jac = jac + mu * eye
        return jac
