r"""Training objectives whose minimizers push the source onto the target.

Every loss is called as ``loss(net, ...)`` with a monotone
:class:`~otgrad.nn.GradientNetwork` ``net`` and minibatches, and returns a scalar tensor
to minimize. Because ``net`` is the gradient of a convex potential, any of them that
reaches :math:`\nabla\psi_\# \mu = \nu` yields *the* optimal (Brenier) map.

- :class:`SemiDual`: :math:`\mathbb{E}_\mu[\psi] + \mathbb{E}_\nu[\psi^*]` with the exact
  conjugate; unbiased, the default of :class:`~otgrad.ot.BrenierMap`.
- :func:`sinkhorn_loss`, :func:`emd_loss`, :func:`barycentric_loss`: minibatch losses built
  on POT's discrete solvers (biased by the minibatch coupling).
- :class:`MongeAmpere`: the KL divergence :math:`\mathrm{KL}(\nabla\psi_\#\mu \,\|\, \nu)` when
  the target log-density is known, with the closed-form log-det.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..nn import GradientNetwork

__all__ = ["SemiDual", "sinkhorn_loss", "emd_loss", "barycentric_loss", "MongeAmpere"]


class SemiDual:
    r"""The semi-dual Kantorovich objective with the exact convex conjugate.

    .. math:: L(\psi) = \mathbb{E}_{x\sim\mu}[\psi(x)] + \mathbb{E}_{y\sim\nu}[\psi^*(y)],
        \qquad \psi^*(y) = \langle x^*, y\rangle - \psi(x^*), \quad \nabla\psi(x^*) = y.

    Over convex :math:`\psi` its minimizer is the Brenier potential (Kantorovich duality:
    :math:`\min L = \mathbb{E}_\pi \langle x, y\rangle` for the optimal coupling). The
    conjugate point :math:`x^*` comes from the network's Newton inverse, solved without
    gradient; by the envelope theorem :math:`\partial_\theta \psi^*(y) = -\partial_\theta
    \psi(x^*)`, so one backward pass through two potential evaluations gives the exact
    gradient.

    Warm starts (amortization). With a fixed ``target`` set, each target keeps its last
    :math:`x^*` as a warm start for its next visit. With an ``amortizer`` (a model
    :math:`\hat x(y) \approx \nabla\psi^*(y)`, e.g. an mGradNet: the inverse of a monotone
    gradient is one), each solve starts, per target, from the better (smaller residual) of
    the stored point and the prediction, and the amortizer then takes one Adam step on the
    regression :math:`\|\hat x(y) - x^*\|^2` onto the solutions (Amos, 2023). The solve
    stays exact: the amortizer only shortens it. Without a fixed set (``target=None``, fresh
    target samples at every step) the prediction is the only warm start.

    Arguments:
        target: All target samples :math:`y_j`, shape ``(m, d)``; minibatches refer to
            them by index. ``None``: minibatches are target samples themselves.
        tol: The relative residual tolerance of the inner inverse.
        max_iter: The Newton iterations per step (unconverged points keep their last
            iterate and are refined at the next visit).
        x0: Initial guesses of the conjugate points, shape of ``target`` (default
            ``target``), e.g. the inverse of an initial linear map.
        amortizer: A module mapping target points ``(n, d)`` to predicted conjugate points
            ``(n, d)``, trained here (its own Adam optimizer).
        amortizer_lr: The amortizer's learning rate.

    Attributes:
        iterations: For each call, the number of points still iterating at each Newton
            iteration (:func:`otgrad.calculus.invert`'s ``history``).

    Example:
        >>> from otgrad.nn import StronglyConvex, GradNetM
        >>> net = StronglyConvex(GradNetM(2, 4), mu=0.1)
        >>> y = torch.randn(8, 2)
        >>> loss = SemiDual(y)(net, torch.randn(8, 2), torch.arange(8))
        >>> loss.shape
        torch.Size([])

    References:
        | On amortizing convex conjugates for optimal transport (Amos, ICLR 2023)
    """

    def __init__(
        self,
        target: Tensor | None,
        tol: float = 1e-5,
        max_iter: int = 20,
        x0: Tensor | None = None,
        amortizer: torch.nn.Module | None = None,
        amortizer_lr: float = 1e-3,
    ):
        if target is None and x0 is not None:
            raise ValueError("x0 (initial conjugate points) needs a fixed target set")
        self.target = target
        self.x_star = None
        if target is not None:
            self.x_star = target.clone() if x0 is None else x0.detach().clone()
        self.tol, self.max_iter = tol, max_iter
        self.amortizer = amortizer
        self._opt = None
        if amortizer is not None:
            self._opt = torch.optim.Adam(amortizer.parameters(), lr=amortizer_lr)
        self.iterations: list[list[int]] = []

    def _start(self, net: GradientNetwork, y: Tensor, idx: Tensor | None) -> Tensor:
        stored = None if idx is None else self.x_star[idx]
        if self.amortizer is None:
            return y.clone() if stored is None else stored
        with torch.no_grad():
            predicted = self.amortizer(y).to(y.dtype)
            if stored is None:
                return predicted
            better = (net(predicted) - y).norm(dim=-1) < (net(stored) - y).norm(dim=-1)
        return torch.where(better[:, None], predicted, stored)

    def _regress(self, y: Tensor, x: Tensor) -> None:
        with torch.enable_grad():
            self._opt.zero_grad(set_to_none=True)
            ((self.amortizer(y) - x) ** 2).sum(-1).mean().backward()
            self._opt.step()

    def conjugate_points(
        self, net: GradientNetwork, idx: Tensor | None, y: Tensor | None = None
    ) -> Tensor:
        r"""Returns :math:`x^* = (\nabla\psi)^{-1}(y)` for the targets ``idx`` (``y``: their
        points, gathered here if not given; without a fixed target set, ``idx`` is ``None``
        and ``y`` the points), warm-started."""
        y = self.target[idx] if y is None else y
        history: list[int] = []
        x = net.inverse(
            y, self.tol, x0=self._start(net, y, idx), max_iter=self.max_iter, strict=False,
            history=history,
        )  # fmt: skip
        self.iterations.append(history)
        if idx is not None:
            self.x_star[idx] = x
        if self.amortizer is not None:
            self._regress(y, x)
        return x

    def __call__(self, net: GradientNetwork, x: Tensor, batch: Tensor) -> Tensor:
        r"""The loss on source points ``x`` and the targets ``batch``: indices into
        ``target``, or target points when ``target`` is ``None``."""
        fixed = self.target is not None
        y = self.target[batch] if fixed else batch
        xs = self.conjugate_points(net, batch if fixed else None, y)
        return net.potential(x).mean() - net.potential(xs).mean() + (xs * y).sum(-1).mean()


def _uniform(n: int, like: Tensor) -> Tensor:
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)


def sinkhorn_loss(net: GradientNetwork, x: Tensor, y: Tensor, epsilon: float) -> Tensor:
    r"""The debiased Sinkhorn divergence :math:`S_\varepsilon(\nabla\psi_\# x, y)` (POT).

    :math:`S_\varepsilon(a, b) = OT_\varepsilon(a, b) - \tfrac12 OT_\varepsilon(a, a) -
    \tfrac12 OT_\varepsilon(b, b)` with squared Euclidean cost, solved in float64 by
    :func:`ot.solve_sample`, gradients by the envelope theorem (no backpropagation through
    the iterations).
    """
    import ot

    tx, y = net(x).double(), y.double()  # float64: the Gibbs kernel underflows in float32

    def ot_eps(a: Tensor, b: Tensor) -> Tensor:
        return ot.solve_sample(a, b, reg=epsilon, grad="envelope", max_iter=2000).value

    loss = ot_eps(tx, y) - 0.5 * ot_eps(tx, tx) - 0.5 * ot_eps(y, y).detach()
    return loss.to(x.dtype)


def emd_loss(net: GradientNetwork, x: Tensor, y: Tensor) -> Tensor:
    r"""The exact minibatch :math:`W_2^2(\nabla\psi_\# x, y)` by POT's network simplex."""
    import ot

    tx = net(x)
    return ot.emd2(_uniform(len(tx), tx), _uniform(len(y), y), ot.dist(tx, y))


def barycentric_loss(net: GradientNetwork, x: Tensor, y: Tensor) -> Tensor:
    r"""Regression of :math:`\nabla\psi(x)` onto the barycentric projection of the exact
    minibatch plan between ``x`` and ``y`` (POT's :func:`ot.emd`)."""
    import ot

    with torch.no_grad():
        plan = ot.emd(_uniform(len(x), x), _uniform(len(y), y), ot.dist(x, y))
        target = (plan @ y) * len(x)
    return ((net(x) - target) ** 2).sum(-1).mean()


class MongeAmpere:
    r"""The KL divergence :math:`\mathrm{KL}(\nabla\psi_\# \mu \,\|\, \nu)` for a known target density.

    .. math:: L(\psi) = \mathbb{E}_{x\sim\mu}\big[\log p(x) - \log\det\nabla^2\psi(x)
        - \log q(\nabla\psi(x))\big] \ge 0,

    zero exactly when the Monge–Ampère equation :math:`p(x) = q(\nabla\psi(x))
    \det\nabla^2\psi(x)` holds, i.e. when :math:`\nabla\psi` is the Brenier map. The log-det
    is the closed form of the network (a Cholesky factor of the structured Jacobian).

    Arguments:
        target_log_prob: :math:`\log q`, a differentiable map ``(n, d) -> (n,)``.
        source_log_prob: :math:`\log p` (optional: it only shifts the loss by a constant,
            but with it the loss is the KL divergence itself).
    """

    def __init__(
        self,
        target_log_prob: Callable[[Tensor], Tensor],
        source_log_prob: Callable[[Tensor], Tensor] | None = None,
    ):
        if not callable(target_log_prob):
            raise TypeError("target_log_prob must be callable: (n, d) tensor -> (n,) tensor")
        if source_log_prob is not None and not callable(source_log_prob):
            raise TypeError("source_log_prob must be callable or None")
        self.target_log_prob, self.source_log_prob = target_log_prob, source_log_prob

    def __call__(self, net: GradientNetwork, x: Tensor) -> Tensor:
        value = -net.logdet(x) - self.target_log_prob(net(x))
        if self.source_log_prob is not None:
            value = value + self.source_log_prob(x)
        return value.mean()
