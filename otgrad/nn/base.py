r"""The :class:`GradientNetwork` interface and its automatic-differentiation fallbacks.

A gradient network (GradNet) is a network :math:`f_\theta : \mathbb{R}^d \to \mathbb{R}^d`
that is the gradient of a scalar potential, :math:`f = \nabla\psi`; a monotone one
(mGradNet) is the gradient of a convex potential. The public methods validate their
input and return the field and its calculus: potential, Jacobian, Jacobian-vector
product, trace, log-determinant, a Lipschitz bound and the inverse map. Subclasses
implement one abstract hook, :meth:`GradientNetwork._evaluate` (the field and, when known,
a :class:`~otgrad.nn.structure.StructuredJacobian` in one pass), and may add
:meth:`GradientNetwork._potential` and :meth:`GradientNetwork._lipschitz`; without them
the base class falls back to ``torch.func`` and to a line-integral quadrature. The docs
page "Writing a new architecture" walks through an example.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Def. 1–2, Thm 2–3.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .. import calculus
from .._validation import (
    check_input,
    check_positive_int,
    set_validation,
    traced,
    validation,
)
from ..io import config_from_signature
from .structure import StructuredJacobian

__all__ = [
    "GradientNetwork",
    "set_validation",
    "validation",
    "check_input",
    "orthogonal_weight",
    "alternating_signs",
    "positive",
    "unconstrain",
    "start_near_identity",
]


class GradientNetwork(nn.Module, metaclass=abc.ABCMeta):
    r"""Base class of networks that are the gradient of a scalar potential.

    Inputs have shape ``(*, dim)`` (usually ``(batch, dim)``). Every method returns
    values for each input point.

    Attributes:
        dim: The input (and output) dimension :math:`d`.
        monotone: Whether the network is an mGradNet (gradient of a convex function)
            for every value of its parameters.
        quadrature_nodes: The number of Gauss–Legendre nodes of quadrature potentials (64).

    Subclass API:
        A subclass calls ``super().__init__(dim)``, stores every constructor argument under
        its own name (so that :meth:`config` rebuilds it; see
        :func:`otgrad.io.config_from_signature`), sets ``monotone``, and implements:

        - :meth:`_evaluate` (required; a subclass without it raises ``TypeError`` when
          constructed): the field and, if asked and known, its structured Jacobian;
        - :meth:`_potential` (optional): the potential in closed form, else a
          Gauss–Legendre line integral of the field;
        - :meth:`_lipschitz` (optional): a differentiable upper bound on
          :math:`\sup_x \|J(x)\|_2`, else :meth:`lipschitz_bound` raises
          ``NotImplementedError``.

        Every public method (Jacobian, JVP, trace, log-determinant, inverse) then works,
        in closed form when :meth:`_evaluate` returns a structure and by ``torch.func``
        otherwise. Register the class with :func:`otgrad.io.register` to save and load it.
    """

    monotone: bool = False
    quadrature_nodes: int = 64

    def __init__(self, dim: int):
        super().__init__()
        check_positive_int(dim=dim)
        self.dim = dim

    # ------------------------------------------------------------------ subclass API
    @abc.abstractmethod
    def _evaluate(self, x: Tensor, jacobian: bool) -> tuple[Tensor, StructuredJacobian | None]:
        r"""Returns :math:`f(x)` and, if ``jacobian`` and known in closed form, its structure.

        Arguments:
            x: Inputs, shape ``(*, d)``, already checked: this is the path used inside
                solvers and ``torch.func`` transforms, so it must not check values.
            jacobian: Whether the caller needs the Jacobian's structure.

        Returns:
            :math:`f(x)`, shape ``(*, d)``, and a
            :class:`~otgrad.nn.structure.StructuredJacobian` (or ``None``: the base class
            then differentiates :math:`f` with ``torch.func`` where a Jacobian is needed).
        """

    def _potential(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\psi(x)`, shape ``(*)`` (default: a line integral of the field)."""
        return calculus.line_integral_potential(self._forward, x, self.quadrature_nodes)

    def _lipschitz(self) -> Tensor:
        r"""Returns an upper bound on :math:`\sup_x \|J(x)\|_2` as a differentiable tensor."""
        raise NotImplementedError(
            f"{type(self).__name__} has no Lipschitz bound; it is not globally Lipschitz "
            "or no bound is implemented"
        )

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments that rebuild this network (used by :mod:`otgrad.io`),
        read from the attributes named after them (:func:`~otgrad.io.config_from_signature`)."""
        return config_from_signature(self)

    def _forward(self, x: Tensor) -> Tensor:
        return self._evaluate(x, False)[0]

    # ------------------------------------------------------------------ helpers
    def _param_meta(self) -> tuple[torch.dtype | None, torch.device | None]:
        p = next(self.parameters(), None)
        return (None, None) if p is None else (p.dtype, p.device)

    def _check(self, x: Any, name: str = "x") -> Tensor:
        dtype, device = self._param_meta()
        return check_input(x, name, self.dim, dtype, device)

    def _structure(self, x: Tensor) -> tuple[Tensor, StructuredJacobian | None]:
        return self._evaluate(x, True)

    def _autograd_jacobian(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, self.dim)

        def single(xi: Tensor) -> Tensor:
            return self._forward(xi[None])[0]

        jac = torch.func.vmap(torch.func.jacrev(single))(flat)
        return jac.reshape(*x.shape, self.dim)

    def _dense_jacobian(self, x: Tensor) -> Tensor:
        _, s = self._structure(x)
        return s.dense() if s is not None else self._autograd_jacobian(x)

    # ------------------------------------------------------------------ public API
    def forward(self, x: Tensor) -> Tensor:
        r"""Returns the gradient field :math:`f(x) = \nabla\psi(x)`, shape ``(*, d)``."""
        return self._forward(self._check(x))

    def potential(self, x: Tensor) -> Tensor:
        r"""Returns the potential :math:`\psi(x)`, shape ``(*)``.

        Defined up to an additive constant that is fixed per network (it does not
        depend on ``x``). Closed form where the architecture allows; otherwise a
        Gauss–Legendre quadrature with :attr:`~otgrad.nn.GradientNetwork.quadrature_nodes` nodes.
        """
        return self._potential(self._check(x))

    def jacobian(self, x: Tensor) -> Tensor:
        r"""Returns the Jacobian :math:`J(x) = \nabla^2\psi(x)`, shape ``(*, d, d)``."""
        return self._dense_jacobian(self._check(x))

    def jvp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Returns the Jacobian-vector product :math:`J(x) v`, shape ``(*, d)``."""
        x = self._check(x)
        v = self._check(v, "v")
        if v.shape != x.shape:
            raise ValueError(f"v must have the shape of x {tuple(x.shape)}, got {tuple(v.shape)}")
        _, s = self._structure(x)
        if s is not None:
            return s.matvec(v)
        return torch.func.jvp(self._forward, (x,), (v,))[1]

    def jacobian_trace(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\operatorname{tr} J(x)` (the divergence of the field), shape ``(*)``."""
        x = self._check(x)
        _, s = self._structure(x)
        if s is not None:
            return s.trace()
        return self._autograd_jacobian(x).diagonal(dim1=-2, dim2=-1).sum(-1)

    @calculus.full_precision
    def logdet(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\log\det J(x)`, shape ``(*)``.

        When :math:`J = \mu I + F C F^\top` with :math:`\mu > 0` and fewer than :math:`d`
        columns in :math:`F` (e.g. a narrow network wrapped in
        :class:`~otgrad.nn.StronglyConvex`), by the matrix determinant lemma on
        :math:`R \times R` matrices, without forming :math:`J`
        (:meth:`~otgrad.nn.structure.StructuredJacobian.logdet`); otherwise by a Cholesky
        factorization of :math:`J`.

        Raises:
            ValueError: If the network is not monotone (its Jacobian need not be PSD),
                or if :math:`J(x)` is singular at some point (wrap the network in
                :class:`~otgrad.nn.StronglyConvex` to bound it away from singular).
        """
        if not self.monotone:
            raise ValueError(
                f"logdet needs a monotone network (an mGradNet); {type(self).__name__} "
                "has monotone=False, so its Jacobian need not be positive definite"
            )
        x = self._check(x)
        _, s = self._structure(x)
        if s is not None:
            value, ok = s.logdet()
        else:
            chol, info = torch.linalg.cholesky_ex(self._dense_jacobian(x))
            value, ok = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1), info == 0
        if not traced(x) and not bool(ok.all()):
            raise ValueError(
                f"the Jacobian is singular (not positive definite) at {int((~ok).sum())} "
                "of the points; wrap the network in StronglyConvex(net, mu) to make it "
                "positive definite"
            )
        return value

    def lipschitz_bound(self) -> float:
        r"""Returns an upper bound on :math:`\sup_x \|J(x)\|_2` (``inf`` if unbounded).

        Raises:
            NotImplementedError: If the architecture has no bound (e.g. the autograd baselines).
        """
        return float(self._lipschitz().detach())

    def inverse(
        self,
        y: Tensor,
        tol: float = 1e-6,
        *,
        x0: Tensor | None = None,
        max_iter: int = 100,
        method: str = "auto",
        strict: bool = True,
        history: list[int] | None = None,
    ) -> Tensor:
        r"""Solves :math:`f(x) = y` for a monotone (ideally strongly monotone) network.

        Damped Newton with the closed-form Jacobian for :math:`d \le 16`, matrix-free
        Newton–CG with the closed-form Jacobian-vector product beyond (see
        :func:`otgrad.calculus.invert`). No gradient flows through the solve.

        Arguments:
            y: The targets, shape ``(*, d)``.
            tol: The relative residual tolerance :math:`\|f(x) - y\| / (1 + \|y\|)`.
            x0: A warm start, shape of ``y`` (default ``y``).
            max_iter: The maximal number of Newton iterations.
            method: ``"auto"``, ``"newton"`` or ``"newton-cg"``.
            strict: With ``False``, return the last iterate instead of raising when the
                tolerance is missed (inner solves that are warm-started again later).
            history: A list that receives the number of points still iterating at each
                Newton iteration (see :func:`otgrad.calculus.invert`).

        Returns:
            :math:`x = f^{-1}(y)`, shape ``(*, d)``.

        Raises:
            ValueError: If the network is not monotone.
            otgrad.calculus.InverseError: If ``strict`` and the tolerance is not reached.
        """
        if not self.monotone:
            raise ValueError(
                f"inverse needs a monotone network (an mGradNet); {type(self).__name__} has "
                "monotone=False, so f(x) = y may have several or no solutions"
            )
        y = self._check(y, "y")
        if x0 is not None:
            x0 = self._check(x0, "x0")
            if x0.shape != y.shape:
                raise ValueError(
                    f"x0 must have the shape of y {tuple(y.shape)}, got {tuple(x0.shape)}"
                )
            x0 = x0.reshape(-1, self.dim)
        flat = y.reshape(-1, self.dim)
        x = calculus.invert(
            self._forward,
            flat,
            jacobian=self._dense_jacobian,
            jvp=lambda x, v: self._jvp_unchecked(x, v),
            linearize=self._linearize,
            evaluate=self._structure,
            x0=x0,
            tol=tol,
            max_iter=max_iter,
            method=method,
            strict=strict,
            history=history,
        )
        return x.reshape(y.shape)

    def _linearize(self, x: Tensor) -> Callable[[Tensor], Tensor]:
        _, s = self._structure(x)
        if s is not None:
            return s.matvec
        return lambda v: torch.func.jvp(self._forward, (x,), (v,))[1]

    def _jvp_unchecked(self, x: Tensor, v: Tensor) -> Tensor:
        _, s = self._structure(x)
        if s is not None:
            return s.matvec(v)
        return torch.func.jvp(self._forward, (x,), (v,))[1]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, monotone={self.monotone}"


def orthogonal_weight(*shape: int) -> Tensor:
    r"""A ``(*, h, d)`` weight whose trailing matrices have orthonormal columns (:math:`h \ge d`)
    or rows (:math:`h < d`), so that :math:`W^\top W` is the identity or a projection."""
    w = torch.empty(shape)
    for m in w.reshape(-1, shape[-2], shape[-1]):
        nn.init.orthogonal_(m)
    return w


def alternating_signs(n: int) -> Tensor:
    r"""``[1, -1, 1, -1, ...]`` of length ``n``: the initial output signs of non-monotone
    networks, which then do not start as gradients of convex functions."""
    return 1.0 - 2.0 * (torch.arange(n) % 2)


def positive(raw: Tensor, constrained: bool) -> Tensor:
    r"""``softplus(raw)`` when ``constrained`` (a nonnegativity constraint), else ``raw``."""
    return torch.nn.functional.softplus(raw) if constrained else raw


def unconstrain(value: Tensor, constrained: bool) -> Tensor:
    r"""The inverse of :func:`positive`: the raw parameter that gives ``value``."""
    if not constrained:
        return value
    return value + torch.log(-torch.expm1(-value))


@torch.no_grad()
def start_near_identity(net: GradientNetwork, raw: Tensor, last: bool = False) -> None:
    r"""Scales a network's output scales so that :math:`\operatorname{tr} J(0) = d`.

    The scales are stored in ``raw`` (through :func:`positive` when the network is monotone);
    with ``last`` only the last row is scaled (the cascade's :math:`\alpha_L`). Networks
    that are not monotone then get alternating signs, so that they start outside the convex
    family. With :math:`h \ge d` orthonormal rows the map starts close to the identity.
    """
    tr = float(net._evaluate(torch.zeros(1, net.dim, dtype=raw.dtype), True)[1].trace()[0])
    value = positive(raw, net.monotone)
    part = value[-1] if last else value
    part *= net.dim / tr if tr > 0 else 1.0
    if not net.monotone:
        part *= alternating_signs(part.shape[-1]).to(part)
    raw.copy_(unconstrain(value, net.monotone))
