r"""The :class:`GradientNetwork` interface and its automatic-differentiation fallbacks.

A gradient network (GradNet) is a network :math:`f_\theta : \mathbb{R}^d \to \mathbb{R}^d`
that is the gradient of a scalar potential, :math:`f = \nabla\psi`; a monotone one
(mGradNet) is the gradient of a convex potential. The public methods validate their
input and return the field and its calculus: potential, Jacobian, Jacobian-vector
product, trace, log-determinant, a Lipschitz bound and the inverse map. Subclasses
provide closed forms through :meth:`GradientNetwork._evaluate` (the field and a
:class:`~otgrad.nn.structure.StructuredJacobian` in one pass) and
:meth:`GradientNetwork._potential`; without them, the base class falls back to
``torch.func`` and to a line-integral quadrature.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Def. 1–2, Thm 2–3.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .. import calculus
from .structure import StructuredJacobian

__all__ = [
    "GradientNetwork",
    "set_validation",
    "validation",
    "check_input",
    "check_positive_int",
    "check_positive_number",
    "orthogonal_weight",
    "alternating_signs",
    "positive",
    "unconstrain",
]

_VALIDATE = True


def set_validation(enabled: bool) -> None:
    r"""Turns the value checks (NaN, infinity) of the public methods on or off.

    Shape, dtype and device checks always run. Value checks need a device-to-host
    synchronization; the training loop of a well-checked data set may switch them off.
    """
    global _VALIDATE
    _VALIDATE = bool(enabled)


@contextlib.contextmanager
def validation(enabled: bool) -> Iterator[None]:
    r"""A context manager that sets :func:`set_validation` and restores it on exit."""
    global _VALIDATE
    old = _VALIDATE
    _VALIDATE = bool(enabled)
    try:
        yield
    finally:
        _VALIDATE = old


def _traced(x: Tensor) -> bool:
    return torch.compiler.is_compiling() or torch._C._functorch.is_functorch_wrapped_tensor(x)


def check_positive_int(**values: Any) -> None:
    r"""Raises a ``ValueError`` naming the first argument that is not a positive integer."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def check_positive_number(name: str, value: Any) -> float:
    r"""Returns ``value`` as a float; a ``ValueError`` naming ``name`` unless it is a
    positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_input(
    x: Any,
    name: str,
    dim: int,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> Tensor:
    r"""Validates a ``(*, dim)`` floating tensor and returns it unchanged.

    Raises:
        TypeError: If ``x`` is not a tensor, not floating, or has another dtype than ``dtype``.
        ValueError: If ``x`` has no dimension, a last dimension other than ``dim``, no
            element, another device than ``device``, or (with validation on) NaN or infinity.
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (batch, {dim}), got {type(x).__name__}; "
            "convert it with torch.as_tensor(...) first"
        )
    if x.dim() == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (batch, {dim}), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)})")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the network's parameters are {dtype}; "
            f"convert one of them (e.g. {name}.to({dtype}) or net.to({x.dtype}))"
        )
    if device is not None and x.device != device:
        raise ValueError(
            f"{name} is on device {x.device} but the network is on {device}; move one of them"
        )
    if _VALIDATE and not _traced(x) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


class GradientNetwork(nn.Module):
    r"""Base class of networks that are the gradient of a scalar potential.

    Inputs have shape ``(*, dim)`` (usually ``(batch, dim)``). Every method returns
    values for each input point.

    Attributes:
        dim: The input (and output) dimension :math:`d`.
        monotone: Whether the network is an mGradNet (gradient of a convex function)
            for every value of its parameters.
        quadrature_nodes: The number of Gauss–Legendre nodes of quadrature potentials (64).
    """

    registry: ClassVar[dict[str, type[GradientNetwork]]] = {}
    monotone: bool = False
    quadrature_nodes: int = 64

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        GradientNetwork.registry[cls.__name__] = cls

    def __init__(self, dim: int):
        super().__init__()
        check_positive_int(dim=dim)
        self.dim = dim
        self._config: dict[str, Any] = {}

    # ------------------------------------------------------------------ subclass API
    def _evaluate(self, x: Tensor, jacobian: bool) -> tuple[Tensor, StructuredJacobian | None]:
        r"""Returns :math:`f(x)` and, if ``jacobian`` and known in closed form, its structure.

        No input checks: this is the path used inside solvers and transforms.
        """
        return self._forward(x), None

    def _forward(self, x: Tensor) -> Tensor:
        return self._evaluate(x, False)[0]

    def _potential(self, x: Tensor) -> Tensor:
        return calculus.line_integral_potential(self._forward, x, self.quadrature_nodes)

    def _lipschitz(self) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no Lipschitz bound; it is not globally Lipschitz "
            "or no bound is implemented"
        )

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments that rebuild this network (used by :mod:`otgrad.io`)."""
        return dict(self._config)

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
        if not _traced(x) and not bool(ok.all()):
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
            x0=x0,
            tol=tol,
            max_iter=max_iter,
            method=method,
            strict=strict,
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
