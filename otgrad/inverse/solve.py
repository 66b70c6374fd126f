r"""Reconstruction by (accelerated) gradient descent on a convex objective.

:func:`reconstruct` minimizes :math:`F(x) = \frac12\|Ax - y\|^2 + R(x)` for a smooth convex
regularizer (a :class:`~otgrad.inverse.ConvexRegularizer`) with the step :math:`1/L`,
:math:`L = \|A\|^2 + L_R` from the operator's norm and the network's Lipschitz bound. The
plain variant decreases :math:`F` at every step (descent lemma); the accelerated one is
FISTA with adaptive (gradient) restart, which converges at the optimal rate and, being
restarted, without the oscillations of plain momentum.

References:
    | A Fast Iterative Shrinkage-Thresholding Algorithm (Beck, Teboulle, 2009).
    | Adaptive Restart for Accelerated Gradient Schemes (O'Donoghue, Candès, 2015).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._validation import check_positive_int, check_positive_number
from .operators import LinearOperator, operator_norm_squared

__all__ = ["Reconstruction", "reconstruct", "data_fidelity"]


@dataclass
class Reconstruction:
    r"""The result of :func:`reconstruct`.

    Attributes:
        x: The reconstruction, shape ``(B, 1, H, W)``.
        objective: :math:`F(x_k)` per iteration, each of shape ``(B,)`` (empty if not recorded).
        change: The largest relative change :math:`\|x_{k+1} - x_k\| / \|x_k\|` per iteration.
        iterations: The number of iterations run.
        converged: Whether the relative change fell below ``tol``.
        step: The step size :math:`1/L` used.
    """

    x: Tensor
    objective: list[Tensor] = field(default_factory=list)
    change: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    step: float = 0.0


def data_fidelity(
    x: Tensor, y: Tensor, operator: LinearOperator, gradient: bool = True
) -> tuple[Tensor, Tensor | None]:
    r"""Returns :math:`\frac12\|Ax - y\|^2` per image ``(B,)`` and its gradient :math:`A^\top(Ax - y)`
    (``None`` without ``gradient``: no adjoint is applied)."""
    r = operator.A(x) - y
    return 0.5 * (r**2).flatten(1).sum(1), (operator.A_adjoint(r) if gradient else None)


def relative_change(new: Tensor, old: Tensor) -> float:
    r"""The largest :math:`\|x_{new} - x_{old}\| / \|x_{new}\|` over the batch (first axis)."""
    diff = (new - old).flatten(1).norm(dim=1)
    return float((diff / new.flatten(1).norm(dim=1).clamp_min(1e-12)).max())


def reconstruct(
    y: Tensor,
    operator: LinearOperator,
    regularizer: Any,
    *,
    x0: Tensor | None = None,
    max_iter: int = 1000,
    tol: float = 1e-5,
    accelerated: bool = True,
    restart: bool = True,
    bounds: tuple[float, float] | None = None,
    record: bool = False,
    callback: Callable[[int, Tensor], None] | None = None,
) -> Reconstruction:
    r"""Minimizes :math:`\frac12\|Ax - y\|^2 + R(x)` by gradient descent with step :math:`1/L`.

    Arguments:
        y: The measurements (the shape ``operator.A`` returns for a ``(B, 1, H, W)`` image).
        operator: The forward operator: ``A`` and ``A_adjoint`` (an otgrad operator, or a
            deepinv physics), and ``norm_squared`` if it has one (else power iteration).
        regularizer: A fitted :class:`~otgrad.inverse.ConvexRegularizer` or a
            :class:`~otgrad.inverse.RegularizerNetwork` (``value_and_grad``, ``value`` for the
            recorded objective, ``lipschitz_bound``).
        x0: The initial image, shape ``(B, 1, H, W)`` (default :math:`A^\top y / \|A\|^2`: the
            measurements themselves for denoising, blur and inpainting, a backprojection
            brought to the image's scale for tomography).
        max_iter: The maximal number of iterations.
        tol: Stop when every image's relative change falls below ``tol``.
        accelerated: FISTA momentum (``True``) or plain gradient descent (``False``).
        restart: Adaptive gradient restart of the momentum (FISTA only).
        bounds: Project onto the box ``[lo, hi]`` after each step (projected gradient: the
            objective is then the constrained one).
        record: Record :math:`F(x_k)` at every iteration (one more network pass for the
            value per iteration, so off by default).
        callback: Called as ``callback(k, x_k)`` after each iteration.

    Returns:
        A :class:`Reconstruction`.

    Example:
        >>> from otgrad.inverse import Denoising, RegularizerNetwork
        >>> from otgrad.nn import ConvGradNet
        >>> reg = RegularizerNetwork(ConvGradNet((1, 4, 8), kernel_size=3), lmbda=0.5)
        >>> y = torch.rand(2, 1, 16, 16)
        >>> out = reconstruct(y, Denoising(), reg, tol=1e-6)
        >>> out.converged, out.x.shape
        (True, torch.Size([2, 1, 16, 16]))
    """
    _check_arguments(y, operator, regularizer, max_iter, tol, bounds)
    with torch.no_grad():
        x, step = _start(y, operator, regularizer, x0)
        out = Reconstruction(x=x, step=step)

        def project(z: Tensor) -> Tensor:
            return z if bounds is None else z.clamp(bounds[0], bounds[1])

        def objective(z: Tensor) -> Tensor:  # values only: no gradient pass, no adjoint
            return data_fidelity(z, y, operator, gradient=False)[0] + regularizer.value(z)

        x = project(x)
        z, t = x, torch.ones(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)
        if record:
            out.objective.append(objective(x))
        for k in range(max_iter):
            _, g_reg = regularizer.value_and_grad(z, value=False)
            x_new = project(z - step * (data_fidelity(z, y, operator)[1] + g_reg))
            z, t = _momentum(x, x_new, z, t, accelerated, restart)
            change = relative_change(x_new, x)
            x = x_new
            out.change.append(change)
            out.iterations = k + 1
            if record:
                out.objective.append(objective(x))
            if callback is not None:
                callback(k, x)
            if change < tol:
                out.converged = True
                break
        out.x = x
    return out


def _check_arguments(
    y: Any, operator: Any, regularizer: Any, max_iter: Any, tol: Any, bounds: Any
) -> None:
    if not all(callable(getattr(operator, m, None)) for m in ("A", "A_adjoint")):
        raise TypeError(
            f"operator must have A and A_adjoint (an otgrad operator or a deepinv physics), "
            f"got {type(operator).__name__}"
        )
    if not isinstance(y, Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.numel() == 0:
        raise ValueError(f"y is empty (shape {tuple(y.shape)})")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("y contains NaN or infinite values")
    if not all(callable(getattr(regularizer, m, None)) for m in _REGULARIZER_METHODS):
        raise TypeError(
            "regularizer must be a ConvexRegularizer or RegularizerNetwork (with "
            f"{', '.join(_REGULARIZER_METHODS)}), got {type(regularizer).__name__}"
        )
    check_positive_int(max_iter=max_iter)
    check_positive_number("tol", tol)
    if bounds is not None:
        lo, hi = bounds
        if not (math.isfinite(lo) or math.isfinite(hi)) or not lo < hi:
            raise ValueError(f"bounds must be (lower, upper) with lower < upper, got {bounds!r}")


_REGULARIZER_METHODS = ("value_and_grad", "value", "lipschitz_bound")


def _start(
    y: Tensor, operator: LinearOperator, regularizer: Any, x0: Tensor | None
) -> tuple[Tensor, float]:
    r"""The initial image and the step :math:`1/L`."""
    ref = operator.A_adjoint(y)
    if callable(getattr(operator, "norm_squared", None)):
        norm_a = operator.norm_squared(tuple(ref.shape))
    else:  # another library's operator (a deepinv physics): power iteration in y's dtype
        norm_a = operator_norm_squared(operator, tuple(ref.shape), dtype=y.dtype, device=y.device)
    if x0 is None:
        x = ref / max(norm_a, 1e-12)
    elif x0.shape != ref.shape:
        raise ValueError(
            f"x0 must have the image shape {tuple(ref.shape)} of A^T y, got {tuple(x0.shape)}"
        )
    else:
        x = x0.clone()
    return x, 1.0 / (norm_a + regularizer.lipschitz_bound())


def _momentum(
    x: Tensor, x_new: Tensor, z: Tensor, t: Tensor, accelerated: bool, restart: bool
) -> tuple[Tensor, Tensor]:
    r"""FISTA's next extrapolated point and momentum, restarted where it points uphill."""
    if not accelerated:
        return x_new, t
    diff = x_new - x
    if restart:  # restart where the momentum points uphill
        uphill = ((z - x_new) * diff).flatten(1).sum(1) > 0
        t = torch.where(uphill[:, None, None, None], torch.ones_like(t), t)
    t_new = (1 + torch.sqrt(1 + 4 * t**2)) / 2
    return x_new + (t - 1) / t_new * diff, t_new
