r"""Numerical routines behind the closed-form calculus of gradient networks.

Everything here works on plain callables and tensors, so the architectures in
:mod:`otgrad.nn` can use it without a circular dependency:

* Gauss–Legendre quadrature (:func:`gauss_legendre`) for potentials that have no
  elementary antiderivative (cascaded networks, learned activations, the line
  integral :func:`line_integral_potential` that recovers the potential of any
  gradient field);
* the inverse map of a strongly monotone field (:func:`invert`): damped Newton with
  the closed-form Jacobian, or matrix-free Newton–CG with the closed-form
  Jacobian-vector product;
* spectral-norm helpers (:func:`spectral_norm`, :func:`power_iteration`);
* Jacobian checks used by the tests and by users who build their own networks
  (:func:`symmetry_error`, :func:`min_eigenvalue`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._validation import check_positive_int, check_positive_number

__all__ = [
    "full_precision",
    "eager_when_compiled",
    "gauss_legendre",
    "integrate_0_to",
    "line_integral_potential",
    "invert",
    "InverseError",
    "logdet_cg",
    "spectral_norm",
    "power_iteration",
    "symmetry_error",
    "min_eigenvalue",
]


@lru_cache(maxsize=32)
def full_precision(fn: Callable) -> Callable:
    r"""Runs ``fn`` with :func:`torch.autocast` disabled (on CPU and CUDA).

    Log-determinants, Newton inverses and iterative solvers lose their accuracy in
    bfloat16 or float16, so they always run in the dtype of their inputs, even when the
    caller trains under mixed precision.

    Example:
        >>> f = full_precision(lambda a: a @ a)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     f(torch.ones(2, 2)).dtype
        torch.float32
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda"):
            with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
                return fn(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper


def eager_when_compiled(fn: Callable) -> Callable:
    r"""Runs ``fn`` eagerly inside code compiled by :func:`torch.compile` (a graph break),
    for solvers whose stopping test depends on the data.

    The same as :func:`torch.compiler.disable`, applied at the first compiled call rather
    than at import, so that importing otgrad does not load the compiler.
    """
    disabled = None

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        nonlocal disabled
        if not torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        if disabled is None:
            disabled = torch.compiler.disable(fn)
        return disabled(*args, **kwargs)

    return wrapper


def _leggauss(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def gauss_legendre(
    n: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    r"""Gauss–Legendre nodes and weights on :math:`[0, 1]`.

    An :math:`n`-node rule integrates polynomials of degree :math:`2n - 1` exactly;
    for a function analytic in a Bernstein ellipse of parameter :math:`\rho` the
    error decays like :math:`\rho^{-2n}`.

    Arguments:
        n: The number of nodes (:math:`n \geq 1`).
        dtype: The floating dtype of the result.
        device: The device of the result.

    Returns:
        The nodes :math:`t_k \in (0, 1)` and weights :math:`w_k > 0`, :math:`\sum_k w_k = 1`.

    Example:
        >>> t, w = gauss_legendre(8)
        >>> float((w * t**3).sum())  # doctest: +ELLIPSIS
        0.25...
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    xi, wi = _leggauss(n)
    t = torch.as_tensor((xi + 1.0) / 2.0, dtype=dtype, device=device)
    w = torch.as_tensor(wi / 2.0, dtype=dtype, device=device)
    return t, w


def integrate_0_to(g: Callable[[Tensor], Tensor], u: Tensor, nodes: int = 32) -> Tensor:
    r"""Integrates an elementwise function from 0 to ``u``, elementwise.

    Computes :math:`G(u) = \int_0^u g(t) \, dt = u \sum_k w_k \, g(t_k u)` with an
    ``nodes``-point Gauss–Legendre rule. ``g`` must act elementwise, with
    broadcasting: it is called once on a tensor of shape ``(nodes, *u.shape)``.

    Arguments:
        g: An elementwise function.
        u: The upper limits, any shape.
        nodes: The number of quadrature nodes.

    Returns:
        :math:`G(u)`, with the shape of ``u``.
    """
    t, w = gauss_legendre(nodes, dtype=u.dtype, device=u.device)
    shape = (nodes,) + (1,) * u.dim()
    values = g(t.view(shape) * u)
    return u * torch.tensordot(w, values, dims=1)


def line_integral_potential(f: Callable[[Tensor], Tensor], x: Tensor, nodes: int = 32) -> Tensor:
    r"""The potential of a gradient field by a line integral from the origin.

    For :math:`f = \nabla \psi`, :math:`\psi(x) - \psi(0) = \int_0^1 f(t x)^\top x \, dt`,
    evaluated with an ``nodes``-point Gauss–Legendre rule (one batched call of ``f``
    on ``nodes`` times as many points). The result is exact up to the quadrature
    error, which decays geometrically in ``nodes`` for analytic fields and scales
    with :math:`\|x\|` (the length of the path).

    Arguments:
        f: A batched gradient field, mapping ``(N, d)`` to ``(N, d)``.
        x: The points, with shape ``(*, d)``.
        nodes: The number of quadrature nodes.

    Returns:
        :math:`\psi(x) - \psi(0)`, with shape ``(*)``.
    """
    t, w = gauss_legendre(nodes, dtype=x.dtype, device=x.device)
    batch = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    points = (t[:, None, None] * flat[None]).reshape(-1, flat.shape[-1])
    values = f(points).reshape(nodes, flat.shape[0], flat.shape[-1])
    integrand = (values * flat[None]).sum(-1)  # (nodes, N)
    return torch.tensordot(w, integrand, dims=1).reshape(batch)


class InverseError(RuntimeError):
    """Raised when :func:`invert` does not reach its tolerance."""


def _batched_cg(
    matvec: Callable[[Tensor], Tensor],
    b: Tensor,
    tol: float,
    max_iter: int,
    precondition: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """(Preconditioned) conjugate gradient for a batch of SPD systems ``A_i x_i = b_i``, rows
    independent; ``precondition`` applies an SPD approximation of :math:`A_i^{-1}` to rows."""
    tiny = torch.finfo(b.dtype).tiny
    x = torch.zeros_like(b)
    r = b.clone()
    z = r if precondition is None else precondition(r)
    p = z.clone()
    rz = (r * z).sum(-1)
    bnorm = b.norm(dim=-1).clamp_min(tiny)
    for _ in range(max_iter):
        ap = matvec(p)
        pap = (p * ap).sum(-1)
        alpha = torch.where(pap > 0, rz / pap.clamp_min(tiny), 0.0)
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * ap
        if bool((r.norm(dim=-1) <= tol * bnorm).all()):
            break
        z = r if precondition is None else precondition(r)
        rz_new = (r * z).sum(-1)
        p = z + (rz_new / rz.clamp_min(tiny))[:, None] * p
        rz = rz_new
    return x


def _centroid_preconditioner(
    jacobian: Callable[[Tensor], Tensor] | None, x: Tensor
) -> Callable[[Tensor], Tensor] | None:
    r""":math:`v \mapsto J(\bar x)^{-1} v` with :math:`\bar x` the mean of the points: one
    :math:`d \times d` Jacobian and its Cholesky factor, a preconditioner for every point's
    system (``None`` without a Jacobian or where it is not positive definite)."""
    if jacobian is None:
        return None
    chol, info = torch.linalg.cholesky_ex(jacobian(x.mean(0, keepdim=True))[0])
    if int(info) != 0 or not bool(torch.isfinite(chol).all()):
        return None
    inverse = torch.cholesky_inverse(chol)
    return lambda r: r @ inverse


class _Linearizations:
    r"""The linearization of the points last evaluated with their structure (by
    ``evaluate``), so that a Newton iteration need not evaluate the network again at
    points where the previous line search already did.

    Arguments:
        n: The number of points of the solve.
        device: Where the points are.
    """

    def __init__(self, n: int, device: torch.device):
        self.lin: Any = None
        self.count = 0
        self.pos = torch.full((n,), -1, dtype=torch.long, device=device)

    def store(self, lin: Any, rows: Tensor, valid: Tensor | None = None) -> None:
        r"""Keeps ``lin``, the linearization at the points ``rows`` (valid where ``valid``)."""
        self.pos.fill_(-1)
        self.lin, self.count = lin, len(rows)
        if lin is not None:
            local = torch.arange(len(rows), device=rows.device)
            keep = slice(None) if valid is None else valid
            self.pos[rows[keep]] = local[keep]

    def operator(self, idx: Tensor) -> Callable[[Tensor], Tensor] | None:
        r"""The Jacobian-vector product at the points ``idx``, or ``None`` if one of them
        has no stored linearization."""
        if self.lin is None:
            return None
        local = self.pos[idx]
        if bool((local < 0).any()):
            return None
        if len(local) == self.count:  # every stored point, in order
            return self.lin.matvec
        return self.lin.rows(local).matvec


@eager_when_compiled  # data-dependent stopping
@full_precision
def invert(
    forward: Callable[[Tensor], Tensor],
    y: Tensor,
    *,
    jacobian: Callable[[Tensor], Tensor] | None = None,
    jvp: Callable[[Tensor, Tensor], Tensor] | None = None,
    linearize: Callable[[Tensor], Callable[[Tensor], Tensor]] | None = None,
    evaluate: Callable[[Tensor], tuple[Tensor, Any]] | None = None,
    x0: Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
    method: str = "auto",
    strict: bool = True,
    precondition: bool = True,
    history: list[int] | None = None,
) -> Tensor:
    r"""Solves :math:`f(x) = y` for a strongly monotone gradient field :math:`f = \nabla\psi`.

    The solution minimizes the strongly convex :math:`\psi(x) - \langle x, y\rangle`;
    we take Newton steps on that problem with the closed-form Jacobian
    (``method="newton"``, a batched Cholesky solve, for small :math:`d`) or with
    conjugate gradients on the Jacobian-vector product (``method="newton-cg"``,
    matrix-free, for large :math:`d`, preconditioned by the inverse Jacobian at the mean
    of the starting points when a Jacobian is available). Plain Newton diverges from far starts, so every
    step is damped by a per-sample backtracking line search on the merit
    :math:`\tfrac12\|f(x) - y\|^2`, for which the Newton direction is a descent
    direction whenever :math:`J` is positive definite.

    Samples stop individually once :math:`\|f(x) - y\| \le \text{tol} \cdot (1 + \|y\|)`
    (``tol`` is raised to 64 machine epsilons of the dtype, the rounding floor).

    Arguments:
        forward: The batched field :math:`f`, ``(N, d) -> (N, d)``.
        y: The targets, with shape ``(N, d)``.
        jacobian: ``x -> (N, d, d)``, the Jacobian (needed by ``"newton"``).
        jvp: ``(x, v) -> J(x) v`` (needed by ``"newton-cg"`` unless ``linearize``).
        linearize: ``x -> (v -> J(x) v)``: builds the Jacobian operator at ``x`` once per
            Newton iteration (e.g. from a closed-form structure), reused by every
            conjugate-gradient iteration; preferred over ``jvp`` by ``"newton-cg"``.
        evaluate: ``x -> (f(x), L)`` with ``L`` the linearization at ``x`` (an object with
            ``matvec(v)`` and ``rows(idx)``, e.g. a
            :class:`~otgrad.nn.structure.StructuredJacobian`, or ``None``). With it,
            ``"newton-cg"`` evaluates the starting points and each line search's full
            step this way, and the next Newton iteration reuses the linearization at the
            points that took it (one network evaluation per iteration instead of two).
        x0: A starting point (warm start), by default ``y``.
        tol: The relative residual tolerance.
        max_iter: The maximal number of Newton iterations.
        method: ``"newton"``, ``"newton-cg"`` or ``"auto"`` (Newton up to :math:`d = 16`
            when a Jacobian is available).
        strict: Raise :class:`InverseError` when some sample misses the tolerance;
            with ``False`` the last iterate is returned instead (for inner solves that
            are warm-started again at the next step, e.g. the semi-dual OT loss).
        precondition: For ``"newton-cg"`` with a ``jacobian``: precondition the conjugate
            gradients by :math:`J(\bar x)^{-1}`, :math:`\bar x` the mean of the starting
            points (one :math:`d \times d` Cholesky factorization per call; at
            :math:`d = 128` it cut the conjugate-gradient iterations of the W2 benchmark's
            semi-dual fit about fivefold).
        history: A list to which the number of points still iterating is appended at
            every Newton iteration (its length is the number of iterations, its sum the
            work in point-iterations).

    Returns:
        The solution :math:`x`, detached, with the shape of ``y``.

    Raises:
        InverseError: If ``strict`` and some sample does not reach the tolerance; the
            message gives the worst residual.
    """
    method = _invert_method(y, jacobian, jvp, linearize, method, max_iter)
    check_positive_number("tol", tol)
    tol = max(float(tol), 64 * torch.finfo(y.dtype).eps)
    with torch.no_grad():
        y = y.detach()
        x = y.clone() if x0 is None else x0.detach().clone().to(y)
        if x.shape != y.shape:
            raise ValueError(f"x0 must have shape {tuple(y.shape)}, got {tuple(x.shape)}")
        scale = 1.0 + y.norm(dim=-1)
        cache = _Linearizations(len(y), y.device) if method == "newton-cg" else None
        if cache is not None and evaluate is not None:
            fx, lin = evaluate(x)
            cache.store(lin, torch.arange(len(y), device=y.device))
        else:
            fx = forward(x)
        r = fx - y
        merit = 0.5 * (r * r).sum(-1)
        active = r.norm(dim=-1) > tol * scale
        pre = None
        if method == "newton-cg" and precondition and bool(active.any()):
            pre = _centroid_preconditioner(jacobian, x[active])
        for _ in range(max_iter):
            if not bool(active.any()):
                break
            idx = active.nonzero().squeeze(-1)
            if history is not None:
                history.append(len(idx))
            xa, ra = x[idx], r[idx]
            if method == "newton":
                step = _newton_step(jacobian(xa), ra)
            else:
                # Inexact Newton (Eisenstat–Walker forcing term): solve the linear system
                # only as accurately as the current residual warrants.
                rel = float((ra.norm(dim=-1) / scale[idx]).max())
                forcing = max(min(0.1, math.sqrt(rel)), 1e-2 * tol)
                op = cache.operator(idx) or _operator(xa, linearize, jvp)
                step = -_batched_cg(op, ra, forcing, 2 * y.shape[-1] + 10, pre)
            first = None if cache is None else evaluate
            x[idx], r[idx], merit[idx], lin, ok = _line_search(
                forward, y[idx], xa, ra, merit[idx], step, first
            )
            if cache is not None:
                cache.store(lin, idx, ok)
            active[idx] = r[idx].norm(dim=-1) > tol * scale[idx]
        res = (r.norm(dim=-1) / scale).nan_to_num(nan=math.inf)
        if strict and bool((res > tol).any()):
            raise InverseError(
                f"inverse did not converge: {int((res > tol).sum())} of {y.shape[0]} samples "
                f"have relative residual above tol={tol:.1e} (worst {float(res.max()):.3e}) "
                f"after {max_iter} iterations; is the network strongly monotone?"
            )
    return x


def _operator(xa: Tensor, linearize, jvp) -> Callable[[Tensor], Tensor]:
    r"""The Jacobian-vector product at the points ``xa``."""
    return linearize(xa) if linearize is not None else (lambda v: jvp(xa, v))


def _invert_method(y, jacobian, jvp, linearize, method: str, max_iter: Any) -> str:
    if y.dim() != 2:
        raise ValueError(f"y must have shape (N, d), got {tuple(y.shape)}")
    check_positive_int(max_iter=max_iter)
    if method == "auto":
        method = "newton" if (jacobian is not None and y.shape[-1] <= 16) else "newton-cg"
    if method not in ("newton", "newton-cg"):
        raise ValueError(f"method must be 'newton', 'newton-cg' or 'auto', got {method!r}")
    if method == "newton" and jacobian is None:
        raise ValueError("method='newton' needs a jacobian")
    if method == "newton-cg" and jvp is None and linearize is None:
        raise ValueError("method='newton-cg' needs a jvp or linearize")
    return method


def _newton_step(jac: Tensor, r: Tensor) -> Tensor:
    r"""The Newton step :math:`-J^{-1} r` by Cholesky; a gradient step on the merit where
    :math:`J` is numerically singular."""
    eps = torch.finfo(jac.dtype).eps
    # A tiny ridge keeps Cholesky alive at nearly singular points.
    ridge = 16 * eps * jac.diagonal(dim1=-2, dim2=-1).abs().amax(-1).clamp_min(1.0)
    eye = torch.eye(jac.shape[-1], dtype=jac.dtype, device=jac.device)
    chol, info = torch.linalg.cholesky_ex(jac + ridge[:, None, None] * eye)
    step = -torch.cholesky_solve(r[..., None], chol)[..., 0]
    bad = info > 0
    if bool(bad.any()):  # fall back to a gradient step on the merit
        step[bad] = -r[bad]
    return step


def _line_search(
    forward: Callable[[Tensor], Tensor],
    y: Tensor,
    x: Tensor,
    r: Tensor,
    merit: Tensor,
    step: Tensor,
    evaluate: Callable[[Tensor], tuple[Tensor, Any]] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Any, Tensor]:
    r"""Per-sample backtracking (Armijo on the merit :math:`\tfrac12\|f(x) - y\|^2`) along
    ``step``; the full step is evaluated by ``evaluate`` when given.

    Returns:
        The new points, residuals and merits, the linearization at the full step (from
        ``evaluate``, else ``None``) and where the full step was taken.
    """
    t = torch.ones_like(merit)
    done = torch.zeros_like(merit, dtype=torch.bool)
    xn, rn, mn = x.clone(), r.clone(), merit.clone()
    lin, full = None, done
    for k in range(40):
        trial = x + t[:, None] * step
        if k == 0 and evaluate is not None:
            ft, lin = evaluate(trial)
        else:
            ft = forward(trial)
        rt = ft - y
        mt = 0.5 * (rt * rt).sum(-1)
        ok = (~done) & torch.isfinite(mt) & (mt <= (1 - 1e-4 * t) * merit)
        xn[ok], rn[ok], mn[ok] = trial[ok], rt[ok], mt[ok]
        done |= ok
        if k == 0:
            full = ok.clone()
        if bool(done.all()):
            break
        t = torch.where(done, t, t / 2)
    stalled = ~done
    if bool(stalled.any()):  # accept the full step: rounding prevents a decrease
        trial = x[stalled] + step[stalled]
        xn[stalled] = trial
        rn[stalled] = forward(trial) - y[stalled]
        mn[stalled] = 0.5 * (rn[stalled] ** 2).sum(-1)
        full = full | stalled
    return xn, rn, mn, lin, full


@full_precision
def logdet_cg(
    matvec: Callable[[Tensor], Tensor], probes: Tensor, tol: float = 1e-4, max_iter: int = 50
) -> tuple[Tensor, Tensor]:
    r"""Stochastic :math:`\log\det A` of SPD operators: one conjugate-gradient run per probe.

    For each row :math:`v` of ``probes`` (Rademacher or Gaussian, so that
    :math:`\mathbb{E}[v v^\top] = I`), conjugate gradients solve :math:`A w = v`. The same
    run yields the Lanczos tridiagonal matrix :math:`T` of :math:`(A, v)` (from the CG step
    sizes), and the Gauss quadrature :math:`\|v\|^2 e_1^\top \log(T) e_1` estimates
    :math:`v^\top \log(A) v`, whose mean is :math:`\log\det A` (stochastic Lanczos
    quadrature). The solution :math:`w` gives CP-Flow's gradient estimator: for an
    operator that depends differentiably on parameters,
    :math:`\nabla \log\det A = \mathbb{E}[w^\top (\nabla A) v]`, the gradient of the
    surrogate :math:`\operatorname{sg}(w)^\top A v` (one differentiable product, no
    second-order autograd).

    Arguments:
        matvec: The batched operator :math:`v \mapsto A_i v_i`, ``(N, d) -> (N, d)``; it is
            called without gradient tracking.
        probes: The probe vectors, shape ``(N, d)``.
        tol: The relative residual at which a row's iteration stops.
        max_iter: The maximal number of iterations (the Lanczos steps); with
            :math:`d` steps the quadrature is exact for each probe.

    Returns:
        The estimates of :math:`v^\top \log(A) v`, shape ``(N,)``, and the solutions
        :math:`w = A^{-1} v`, shape ``(N, d)``; both detached.

    Example:
        >>> a = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
        >>> v = torch.ones(1, 3, dtype=torch.float64)
        >>> est, w = logdet_cg(lambda u: u @ a, v, max_iter=3)
        >>> round(float(est), 6), round(math.log(8.0), 6)
        (2.079442, 2.079442)

    References:
        | Convex Potential Flows (Huang et al., 2021), Sec. 4 (the gradient estimator).
        | Fast estimation of tr(f(A)) via stochastic Lanczos quadrature (Ubaru et al., 2017).
    """
    if probes.dim() != 2:
        raise ValueError(f"probes must have shape (N, d), got {tuple(probes.shape)}")
    check = max_iter if isinstance(max_iter, int) and not isinstance(max_iter, bool) else 0
    if check < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    tiny = torch.finfo(probes.dtype).tiny
    with torch.no_grad():
        v = probes.detach()
        w = torch.zeros_like(v)
        r = v.clone()
        p = r.clone()
        rs = (r * r).sum(-1)
        vv = rs.clone()
        active = torch.ones_like(rs, dtype=torch.bool)
        alphas, betas, steps = [], [], []
        for _ in range(max_iter):
            ap = matvec(p)
            alpha = rs / (p * ap).sum(-1).clamp_min(tiny)
            w = w + (active * alpha)[:, None] * p
            r = r - alpha[:, None] * ap
            rs_new = (r * r).sum(-1)
            beta = rs_new / rs.clamp_min(tiny)
            alphas.append(alpha)
            betas.append(beta)
            steps.append(active.clone())
            active = active & (rs_new.sqrt() > tol * vv.sqrt())
            if not bool(active.any()):
                break
            p = r + beta[:, None] * p
            rs = rs_new
        # The Lanczos matrix of each row; steps after a row converged become decoupled unit
        # diagonal entries, which carry no quadrature weight.
        a, b, on = torch.stack(alphas, -1), torch.stack(betas, -1), torch.stack(steps, -1)
        diag = 1.0 / a
        diag[:, 1:] += b[:, :-1] / a[:, :-1]
        off = b[:, :-1].clamp_min(0).sqrt() / a[:, :-1]
        diag = torch.where(on, diag, torch.ones_like(diag))
        off = torch.where(on[:, 1:], off, torch.zeros_like(off))
        t = torch.diag_embed(diag) + torch.diag_embed(off, 1) + torch.diag_embed(off, -1)
        theta, vecs = torch.linalg.eigh(t)
        weights = vecs[:, 0, :] ** 2
        est = vv * (weights * theta.clamp_min(tiny).log()).sum(-1)
        est = torch.where(vv > 0, est, torch.zeros_like(est))  # a zero probe: v^T log(A) v = 0
    return est, w


def spectral_norm(matrix: Tensor) -> Tensor:
    r"""The spectral norm :math:`\|A\|_2` of a matrix, exactly (SVD), differentiably."""
    return torch.linalg.matrix_norm(matrix, ord=2)


def power_iteration(
    matvec: Callable[[Tensor], Tensor],
    shape: tuple[int, ...],
    *,
    iterations: int = 100,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> float:
    r"""Estimates the largest eigenvalue of a symmetric PSD operator by power iteration.

    The estimate is a *lower* bound that converges to :math:`\lambda_{\max}`; use
    :func:`spectral_norm` where an exact value is affordable.

    Arguments:
        matvec: The operator :math:`v \mapsto A v` on tensors of shape ``shape``.
        shape: The shape of the operator's input.
        iterations: The number of iterations.

    Returns:
        The Rayleigh quotient after the last iteration.
    """
    v = torch.randn(shape, dtype=dtype, device=device, generator=generator)
    v = v / v.norm()
    lam = 0.0
    with torch.no_grad():
        for _ in range(iterations):
            w = matvec(v)
            lam = float((v * w).sum())
            n = w.norm()
            if float(n) == 0.0:
                return 0.0
            v = w / n
    return lam


def symmetry_error(jac: Tensor) -> Tensor:
    r"""The largest :math:`|J - J^\top|` entry per sample, relative to :math:`\max(1, |J|)`."""
    diff = (jac - jac.transpose(-1, -2)).abs().flatten(-2).amax(-1)
    return diff / jac.abs().flatten(-2).amax(-1).clamp_min(1.0)


def min_eigenvalue(jac: Tensor) -> Tensor:
    r"""The smallest eigenvalue of the symmetric part of each Jacobian."""
    return torch.linalg.eigvalsh(0.5 * (jac + jac.transpose(-1, -2)))[..., 0]
