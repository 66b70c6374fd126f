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
traces, log-determinants and dense Jacobians without automatic differentiation.

Log-determinant. Write :math:`J = \mu I_d + F C F^\top` with
:math:`F = [W_1^\top, \dots, W_M^\top, V] \in \mathbb{R}^{d \times R}` (the directions
:math:`W_m^\top U_m` lie in the span of :math:`W_m^\top`, so they add no columns) and
:math:`C = \operatorname{blockdiag}(H_1, \dots, H_M, \operatorname{diag}(c))`,
:math:`H_m = \operatorname{diag}(D_m) + U_m \operatorname{diag}(s_m) U_m^\top`. When
:math:`R < d`, the matrix determinant lemma (Sylvester's identity) gives

.. math:: \log\det J = (d - R) \log\mu + \log\det(\mu I_R + G C),
          \qquad G = F^\top F,

an :math:`R \times R` determinant per point instead of a :math:`d \times d` one; the
block :math:`W W^\top` of :math:`G` does not depend on the point and is formed once.
:math:`G C` is not symmetric and :math:`C` may be indefinite (softmax modules have
:math:`s < 0`), so the determinant is taken by an LU factorization with partial pivoting
(:func:`torch.linalg.slogdet`). For diagonal :math:`C \succ 0`,
:math:`\mu I + G C = (\mu C^{-1} + G) C` is a symmetric positive definite matrix with
scaled columns; column scaling changes neither the pivots of partial pivoting nor the
relative perturbation of the determinant, so the LU behaves as on that symmetric
positive definite matrix, much like a Cholesky factorization of
:math:`\mu I + C^{1/2} G C^{1/2}` but without the square root (whose derivative is
infinite where :math:`C` vanishes, e.g. saturated activations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["RidgeTerm", "StructuredJacobian", "dense_logdet"]

LOGDET_METHODS = ("auto", "lowrank", "dense")


def dense_logdet(jac: Tensor) -> tuple[Tensor, Tensor]:
    r"""The log-determinant of symmetric matrices by a Cholesky factorization.

    Arguments:
        jac: Symmetric matrices, shape ``(*, d, d)``.

    Returns:
        :math:`\log\det` ``jac``, shape ``(*)``, and whether each matrix is positive
        definite (its Cholesky factorization succeeded), a boolean tensor of shape ``(*)``.
        The value is meaningless where the matrix is not positive definite.
    """
    chol, info = torch.linalg.cholesky_ex(jac)
    return 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1), info == 0


def _rows(t: Tensor, idx: Tensor, base: int) -> Tensor:
    r"""``t[idx]`` if ``t`` has a batch dimension before its ``base`` own ones (and it is
    not a broadcast one of size 1), else ``t``."""
    return t[idx] if t.dim() > base and t.shape[0] != 1 else t


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

    def rows(self, idx: Tensor) -> RidgeTerm:
        r"""The term at the points ``idx`` of a batch of shape ``(n,)`` (weights shared)."""
        return RidgeTerm(
            self.W,
            _rows(self.D, idx, 2),
            None if self.U is None else _rows(self.U, idx, 3),
            None if self.s is None else _rows(self.s, idx, 2),
        )

    @property
    def width(self) -> int:
        r"""The number :math:`M h` of hidden units."""
        return self.W.shape[0] * self.W.shape[1]

    def hidden_matmul(self, a: Tensor) -> Tensor:
        r"""Right-multiplies by the hidden-space curvature
        :math:`H = \operatorname{blockdiag}_m(\operatorname{diag}(D_m) + U_m \operatorname{diag}(s_m) U_m^\top)`.

        Arguments:
            a: Matrices whose columns index the hidden units, shape ``(*, n, M h)``.

        Returns:
            :math:`a H`, shape ``(*, n, M h)`` (batch dimensions broadcast with :math:`D`).
        """
        M, h, _ = self.W.shape
        a = a.unflatten(-1, (M, h))  # (*, n, M, h)
        out = a * self.D[..., None, :, :]
        if self.U is not None:
            am = a.transpose(-3, -2)  # (*, M, n, h)
            proj = (am @ self.U) * self.s[..., :, None, :]  # (*, M, n, r)
            out = out + (proj @ self.U.mT).transpose(-3, -2)
        return out.flatten(-2)

    def matvec(self, v: Tensor) -> Tensor:
        M, h, d = self.W.shape
        wv = (v @ self.W.reshape(M * h, d).mT).unflatten(-1, (M, h))  # (*, M, h)
        t = self.D * wv
        if self.U is not None and self.U.shape[-1] == 1:  # one direction per module
            u = self.U[..., 0]  # (*, M, h)
            t = t + u * (self.s * (u * wv).sum(-1, keepdim=True))
        elif self.U is not None:
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

    def rows(self, idx: Tensor) -> StructuredJacobian:
        r"""The Jacobian at the points ``idx`` of a batch of shape ``(n,)``: the structure
        of ``x[idx]`` without evaluating the network again.

        Example:
            >>> W = torch.randn(1, 3, 4)
            >>> s = StructuredJacobian(4, [RidgeTerm(W, torch.rand(6, 1, 3))], identity=0.1)
            >>> idx, v = torch.tensor([4, 1]), torch.randn(6, 4)
            >>> torch.allclose(s.rows(idx).matvec(v[idx]), s.matvec(v)[idx])
            True
        """
        mu = self.identity
        return StructuredJacobian(
            self.dim,
            [t.rows(idx) for t in self.terms],
            _rows(mu, idx, 0) if isinstance(mu, Tensor) else mu,
            [(_rows(v, idx, 2), _rows(c, idx, 1)) for v, c in self.outer],
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

    def rank_bound(self) -> int:
        r"""The number :math:`R` of columns of :math:`F` in :math:`J = \mu I + F C F^\top`:
        :math:`\sum M h` over the ridge terms plus the ranks of the outer terms, an upper
        bound on the rank of :math:`J - \mu I`."""
        return sum(t.width for t in self.terms) + sum(v.shape[-1] for v, _ in self.outer)

    def logdet(self, method: str = "auto") -> tuple[Tensor, Tensor]:
        r"""Returns :math:`\log\det J` and whether :math:`J` is positive definite.

        With ``method="auto"``, the determinant lemma of the module documentation is used
        when :math:`R` (:meth:`rank_bound`) is smaller than :math:`d` and :math:`\mu` is a
        tensor or a positive float: memory :math:`O(R^2)` and time :math:`O(R^3 + R^2 h)`
        per point, plus :math:`O(R^2 d)` once, instead of :math:`O(d^3)`. Otherwise,
        and with ``method="dense"``, a Cholesky factorization of :meth:`dense`. The
        choice depends on shapes and Python floats only, so the method composes with
        :func:`torch.func.vmap`, :func:`torch.compile` and automatic differentiation.

        On the low-rank path, :math:`J` is reported positive definite where :math:`\mu > 0`
        and :math:`\det(\mu I_R + G C) > 0`. Where :math:`\mu \le 0`, :math:`J` has the
        eigenvalue :math:`\mu` (on the complement of the span of :math:`F`), so this part
        is exact. The determinant's sign is only a necessary condition when :math:`C` is
        indefinite (an even number of negative eigenvalues goes unnoticed); the networks
        that have a log-determinant, monotone ones, have :math:`C \succeq 0` by
        construction (Thm 3), so that :math:`J \succeq \mu I`.

        Arguments:
            method: ``"auto"``, ``"lowrank"`` (the determinant lemma; needs :math:`\mu > 0`)
                or ``"dense"`` (Cholesky of the dense Jacobian).

        Returns:
            :math:`\log\det J`, shape ``(*)``, and a boolean tensor of shape ``(*)``:
            whether :math:`J` is positive definite there (where it is not, the value is
            meaningless).

        Example:
            >>> W = torch.randn(1, 2, 6, dtype=torch.float64)
            >>> D = torch.rand(5, 1, 2, dtype=torch.float64)
            >>> s = StructuredJacobian(6, [RidgeTerm(W, D)], identity=0.5)
            >>> value, ok = s.logdet()  # 2 x 2 determinants instead of 6 x 6
            >>> torch.allclose(value, torch.linalg.slogdet(s.dense())[1]), bool(ok.all())
            (True, True)
        """
        if method not in LOGDET_METHODS:
            raise ValueError(f"method must be one of {LOGDET_METHODS}, got {method!r}")
        if not self.terms and not self.outer:
            raise ValueError("empty structured Jacobian")
        mu = self.identity
        positive = isinstance(mu, Tensor) or mu > 0
        if method == "lowrank" and not positive:
            raise ValueError(f"the low-rank log-determinant needs identity > 0, got {mu!r}")
        if method == "dense" or (
            method == "auto" and not (positive and self.rank_bound() < self.dim)
        ):
            return dense_logdet(self.dense())
        return self._lowrank_logdet()

    def _lowrank_logdet(self) -> tuple[Tensor, Tensor]:
        d, R, mu = self.dim, self.rank_bound(), self.identity
        shapes = [v.shape[:-2] for v, _ in self.outer] + [c.shape[:-1] for _, c in self.outer]
        for t in self.terms:
            shapes.append(t.D.shape[:-2])
            if t.U is not None:
                shapes += [t.U.shape[:-3], t.s.shape[:-2]]
        if isinstance(mu, Tensor):
            shapes.append(mu.shape)
        batch = torch.broadcast_shapes(*shapes)
        # the Gram matrix G = F^T F of F = [W_1^T, ..., V_1, ...]; W W^T is shared by all points
        if self.terms:
            w = torch.cat([t.W.reshape(-1, d) for t in self.terms])  # (R_W, d)
            gram = w @ w.mT
        if self.outer:
            v = torch.cat([vv.expand(*batch, d, vv.shape[-1]) for vv, _ in self.outer], -1)
            gram_vv = v.mT @ v  # (*, r_V, r_V)
            if self.terms:
                gram_wv = w @ v  # (*, R_W, r_V)
                top = torch.cat([gram.expand(*batch, *gram.shape), gram_wv], -1)
                gram = torch.cat([top, torch.cat([gram_wv.mT, gram_vv], -1)], -2)
            else:
                gram = gram_vv
        # G C, one block of columns per term: C is block diagonal
        blocks, start = [], 0
        for t in self.terms:
            part = t.hidden_matmul(gram[..., start : start + t.width])
            blocks.append(part.expand(*batch, R, t.width))
            start += t.width
        for vv, c in self.outer:
            r = vv.shape[-1]
            part = gram[..., start : start + r] * c[..., None, :]
            blocks.append(part.expand(*batch, R, r))
            start += r
        gc = torch.cat(blocks, -1)
        eye = torch.eye(R, dtype=gc.dtype, device=gc.device)
        if isinstance(mu, Tensor):
            mu_b = mu[..., None, None] if mu.dim() > 0 else mu
            sign, value = torch.linalg.slogdet(gc + mu_b * eye)
            value = value + (d - R) * mu.log()
            ok = (sign > 0) & (mu > 0)
        else:
            sign, value = torch.linalg.slogdet(gc + mu * eye)
            value = value + (d - R) * math.log(mu)
            ok = sign > 0
        return value, ok & ~value.isnan()

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
