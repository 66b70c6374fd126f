r"""Convex potential flows built from strongly convex mGradNets.

A convex potential flow (CP-Flow) maps data :math:`x` to a standard normal variable
:math:`z` through gradients of strongly convex potentials,

.. math:: z = T(x) = A_K \circ \nabla\psi_K \circ A_{K-1} \circ \dots \circ \nabla\psi_1 \circ A_0 (x),
          \qquad
          \log p(x) = \log \mathcal{N}(T(x); 0, I) + \sum_k \log\det \nabla^2\psi_k(\cdot)
                      + \sum_k \log\det A_k,

with :math:`A_k` :class:`~otgrad.flows.ActNorm` layers and each :math:`\nabla\psi_k` a
:class:`~otgrad.nn.StronglyConvex` mGradNet: its Jacobian :math:`\nabla^2\psi_k \succeq \mu I`
is symmetric positive definite (Prop 3.1, Cor 11.1 / 12.1), so every block is invertible
and its log-determinant is a Cholesky factorization of the closed-form Jacobian. CP-Flow
itself builds :math:`\psi` from an ICNN and needs autograd for :math:`\nabla\psi` and a
stochastic estimate of the log-determinant; here the map *is* the forward pass and the
Jacobian is known in closed form. For large dimensions a stochastic estimator
(:func:`~otgrad.calculus.logdet_cg`: CG for the gradient, Lanczos quadrature for the value)
runs on the closed-form Jacobian-vector product, with no second-order autograd.

Sampling inverts the blocks one by one: ActNorm analytically, each :math:`\nabla\psi_k` by
Newton's method on the strongly convex problem (:meth:`~otgrad.nn.GradientNetwork.inverse`).

References:
    | Convex Potential Flows: Universal Probability Distributions with Optimal Transport and
      Convex Optimization (Huang, Chen, Tsirigotis, Courville, 2021).
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.1, Cor 11.1, Cor 12.1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from .. import calculus, io
from .._validation import check_choice, check_input, check_positive_int, check_positive_number
from ..nn import GradientNetwork, GradNetC, GradNetM, SingleLayerGradNet, StronglyConvex, Sum
from .actnorm import ActNorm

__all__ = [
    "FlowNetwork",
    "FlowDistribution",
    "block_networks",
    "check_block_options",
    "check_flow_options",
    "NETS",
    "LOGDETS",
]

#: The block networks :func:`block_networks` builds by name.
NETS = ("cascade", "modular", "single")
#: The log-determinant modes.
LOGDETS = ("auto", "exact", "stochastic")
_LOG_2PI = math.log(2 * math.pi)


def block_networks(
    net: str | Sequence[GradientNetwork],
    dim: int,
    blocks: int = 4,
    hidden: int = 16,
    layers: int = 24,
    activation: str | None = None,
    beta: float = 20.0,
) -> list[GradientNetwork]:
    r"""The block networks of a flow: ``blocks`` new networks of a kind, or a checked list.

    Arguments:
        net: ``"modular"`` (mGradNet-M with softmax modules), ``"cascade"`` (mGradNet-C) or
            ``"single"`` (single-layer mGradNet), built with ``hidden`` and ``layers``; or a
            list of monotone :class:`~otgrad.nn.GradientNetwork` of dimension ``dim``
            (returned as a list, not copied).
        dim: The data dimension :math:`d`.
        blocks: The number of networks built by name.
        hidden: The hidden width of named networks.
        layers: The modules of ``"modular"`` networks, the layers of ``"cascade"`` ones.
        activation: The activation of named networks (their default when ``None``).
        beta: The initial inverse temperature of ``"modular"`` softmax modules.

    Raises:
        TypeError: If ``net`` is neither a name nor a list of gradient networks.
        ValueError: If a number is out of range, a name unknown, or a network has another
            dimension or is not monotone.
    """
    check_block_options(net, dim, blocks, hidden, layers, beta)
    if not isinstance(net, str):
        return list(net)
    if net == "cascade":
        return [
            GradNetC(dim, hidden, layers, activation=activation or "tanh") for _ in range(blocks)
        ]
    if net == "modular":
        act = activation or "softmax"
        return [GradNetM(dim, hidden, layers, activation=act, beta=beta) for _ in range(blocks)]
    return [
        SingleLayerGradNet(dim, hidden, activation=activation or "tanh") for _ in range(blocks)
    ]


def check_block_options(
    net: Any, dim: int, blocks: int, hidden: int, layers: int, beta: float
) -> None:
    r"""Checks the arguments of :func:`block_networks` without building anything."""
    check_positive_int(dim=dim, blocks=blocks, hidden=hidden, layers=layers)
    check_positive_number("beta", beta)
    if isinstance(net, str):
        check_choice("net", net, NETS)
    else:
        _checked_blocks(net, dim)


def _checked_blocks(nets: Any, dim: int) -> list[GradientNetwork]:
    if not isinstance(nets, (list, tuple, nn.ModuleList)):
        raise TypeError(
            f"net must be one of {NETS} or a list of networks, got {type(nets).__name__}"
        )
    if not nets:
        raise ValueError("net must hold at least one network")
    for i, n in enumerate(nets):
        if not isinstance(n, GradientNetwork):
            raise TypeError(f"net[{i}] must be a GradientNetwork, got {type(n).__name__}")
        if n.dim != dim:
            raise ValueError(f"net[{i}] has dim {n.dim}, expected {dim}")
        if not n.monotone:
            raise ValueError(
                f"net[{i}] ({type(n).__name__}) is not monotone: a flow block must be "
                "the gradient of a convex potential (an mGradNet)"
            )
    return list(nets)


def check_flow_options(mu: float, logdet: str, cg_iter: int, cg_tol: float) -> None:
    r"""Checks the block options of :class:`FlowNetwork` (shared with the estimator)."""
    check_positive_number("mu", mu)
    check_choice("logdet", logdet, LOGDETS)
    check_positive_int(cg_iter=cg_iter)
    check_positive_number("cg_tol", cg_tol)


@io.register("FlowNetwork")
class FlowNetwork(nn.Module):
    r"""The network of a convex potential flow: ActNorms and strongly convex mGradNet blocks.

    The map from data to the base is ``[ActNorm, StronglyConvex(net_1), ActNorm, ...,
    StronglyConvex(net_K), ActNorm]``; see the module documentation. This is the module
    that :class:`~otgrad.flows.ConvexPotentialFlow` fits (its ``flow_``); use it directly to
    embed a flow in a larger model.

    Arguments:
        dim: The data dimension :math:`d`.
        nets: The block networks, monotone :class:`~otgrad.nn.GradientNetwork` of dimension
            ``dim`` (e.g. from :func:`block_networks`); they become the flow's submodules.
        mu: The strong-convexity modulus of every block (:math:`\nabla^2\psi_k \succeq \mu I`).
        logdet: ``"exact"`` (the closed-form Jacobian's log-det: Cholesky, or the
            determinant lemma on :math:`R \times R` matrices when a block's rank bound
            :math:`R` is below :math:`d`), ``"stochastic"``
            (:func:`~otgrad.calculus.logdet_cg` on the closed-form Jacobian-vector product,
            when gradients are tracked; exact otherwise) or ``"auto"`` (exact up to
            ``d = 128`` and for blocks with :math:`R < d`).
        cg_iter: The conjugate-gradient (Lanczos) steps of the stochastic estimator.
        cg_tol: Its relative residual tolerance.
        linear: Add a learned positive semidefinite linear map to each block (a linear
            single-layer mGradNet, eq. 7): the block's slope far from the data, where
            saturating activations are flat, is then learned rather than :math:`\mu`.

    Example:
        >>> flow = FlowNetwork(2, block_networks("modular", 2, blocks=2, hidden=8))
        >>> x = torch.randn(4, 2)
        >>> z, ladj = flow(x)
        >>> torch.allclose(flow.inverse(z), x, atol=1e-4)
        True

    References:
        | Convex Potential Flows (Huang et al., 2021).
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.1, Cor 11.1, 12.1.
    """

    _config_attributes = {"logdet": "logdet_mode"}

    def __init__(
        self,
        dim: int,
        nets: Sequence[GradientNetwork],
        *,
        mu: float = 0.01,
        logdet: str = "auto",
        cg_iter: int = 20,
        cg_tol: float = 1e-3,
        linear: bool = True,
    ):
        super().__init__()
        check_positive_int(dim=dim)
        check_flow_options(mu, logdet, cg_iter, cg_tol)
        self.dim, self.nets = dim, _checked_blocks(nets, dim)
        self.mu, self.logdet_mode, self.cg_iter, self.cg_tol = mu, logdet, cg_iter, cg_tol
        self.linear = bool(linear)
        self.blocks = nn.ModuleList(StronglyConvex(self._with_linear(n), mu) for n in self.nets)
        self.norms = nn.ModuleList(
            ActNorm(dim, auto_init=False) for _ in range(len(self.nets) + 1)
        )

    def _with_linear(self, net: GradientNetwork) -> GradientNetwork:
        if not self.linear:
            return net
        return Sum([SingleLayerGradNet(self.dim, self.dim, activation="linear"), net])

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments that rebuild this flow (used by :mod:`otgrad.io`)."""
        return io.config_from_signature(self)

    # ------------------------------------------------------------------ internals
    def _meta(self) -> tuple[torch.dtype, torch.device]:
        p = next(self.parameters())
        return p.dtype, p.device

    def _stochastic(self) -> bool:
        if not torch.is_grad_enabled():
            return False
        return self.logdet_mode == "stochastic" or (self.logdet_mode == "auto" and self.dim > 128)

    @calculus.full_precision  # the block's map and its log-det, also under autocast
    def _block_logdet(self, block: StronglyConvex, x: Tensor, stochastic: bool):
        f, s = block._evaluate(x, True)
        if not stochastic or (self.logdet_mode == "auto" and s.rank_bound() < self.dim):
            return f, s.logdet()[0]
        v = torch.randint(0, 2, x.shape, device=x.device).to(x.dtype) * 2 - 1
        est, w = calculus.logdet_cg(s.matvec, v, self.cg_tol, self.cg_iter)
        surrogate = (w * s.matvec(v)).sum(-1)
        return f, est + surrogate - surrogate.detach()

    def _transform(self, x: Tensor) -> tuple[Tensor, Tensor]:
        stochastic = self._stochastic()
        z, ladj = self.norms[0](x)
        for block, norm in zip(self.blocks, self.norms[1:], strict=True):
            z, ld = self._block_logdet(block, z, stochastic)
            ladj = ladj + ld
            z, ld = norm(z)
            ladj = ladj + ld
        return z, ladj

    def _log_prob(self, x: Tensor) -> Tensor:
        flat = x.reshape(-1, self.dim)
        z, ladj = self._transform(flat)
        lp = -0.5 * (z * z).sum(-1) - 0.5 * self.dim * _LOG_2PI + ladj
        return lp.reshape(x.shape[:-1])

    def _check(self, x: Any, name: str = "x") -> Tensor:
        dtype, device = self._meta()
        return check_input(x, name, self.dim, dtype, device)

    # ------------------------------------------------------------------ transform
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r"""Maps data to the base: returns :math:`z = T(x)` and :math:`\log|\det \partial z/\partial x|`.

        Arguments:
            x: Data, shape ``(*, d)``.

        Returns:
            :math:`z`, shape ``(*, d)``, and the log-determinant, shape ``(*)``.
        """
        x = self._check(x)
        z, ladj = self._transform(x.reshape(-1, self.dim))
        return z.reshape(x.shape), ladj.reshape(x.shape[:-1])

    def inverse(self, z: Tensor, tol: float = 1e-6, max_iter: int = 100) -> Tensor:
        r"""Maps base points back to data, block by block (no gradient flows).

        Arguments:
            z: Base points, shape ``(*, d)``.
            tol: The relative residual tolerance of each block's Newton solve.
            max_iter: The Newton iterations allowed per block.

        Returns:
            :math:`x = T^{-1}(z)`, shape ``(*, d)``.
        """
        z = self._check(z, "z")
        x = z.reshape(-1, self.dim)
        with torch.no_grad():
            x = self.norms[-1].inverse(x)
            for block, norm in zip(reversed(self.blocks), reversed(self.norms[:-1]), strict=True):
                x = norm.inverse(block.inverse(x, tol=tol, max_iter=max_iter))
        return x.reshape(z.shape)

    def log_prob(self, x: Tensor) -> Tensor:
        r"""The log-density :math:`\log p(x)`, exact (with ``logdet="exact"``/``"auto"``),
        differentiable, shape ``(*)`` for ``x`` of shape ``(*, d)``."""
        return self._log_prob(self._check(x))

    def _base(self, shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
        dtype, device = self._meta()
        z = torch.randn(*shape, self.dim, generator=generator, dtype=dtype)
        return z.to(device)

    def sample(
        self, n: int | Sequence[int] = 1, *, seed: int | None = None, tol: float = 1e-6
    ) -> Tensor:
        r"""Draws samples by inverting the flow at standard normal points (no gradients).

        Arguments:
            n: The number of samples, or a sample shape.
            seed: Seeds the base samples.
            tol: The inversion tolerance.

        Returns:
            Samples of shape ``(n, d)`` (or ``(*n, d)``).
        """
        shape = _sample_shape(n)
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return self.inverse(self._base(shape, gen), tol=tol)

    def rsample(
        self, n: int | Sequence[int] = 1, *, seed: int | None = None, tol: float = 1e-6
    ) -> Tensor:
        r"""Draws reparametrized samples: differentiable with respect to the parameters.

        Each block's inverse :math:`x = (\nabla\psi)^{-1}(y)` is found by Newton's method
        and then carries the implicit-function gradient :math:`\partial x = -J^{-1}
        \partial(\nabla\psi)(x)`, with :math:`J` the closed-form Jacobian (one Cholesky
        factorization per block; no gradient through the iterations).
        """
        shape = _sample_shape(n)
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        y = self._base(shape, gen).reshape(-1, self.dim)
        y = self.norms[-1].inverse(y)
        for block, norm in zip(reversed(self.blocks), reversed(self.norms[:-1]), strict=True):
            with torch.no_grad():
                x = block.inverse(y.detach(), tol=tol)
            f, s = block._evaluate(x, True)
            chol, _ = torch.linalg.cholesky_ex(s.dense().detach())
            step = torch.cholesky_solve((f - y)[..., None], chol)[..., 0]
            y = norm.inverse(x - step)  # equal to x in value; carries dx = -J^{-1} d(f - y)
        return y.reshape(*shape, self.dim)

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        r"""Data-dependent initialization: each ActNorm standardizes its input on ``x``."""
        x = self._check(x).reshape(-1, self.dim)
        z = x
        for i, norm in enumerate(self.norms):
            norm.initialize(z)
            z, _ = norm(z)
            if i < len(self.blocks):
                z = self.blocks[i]._forward(z)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, blocks={len(self.blocks)}, mu={self.mu}, logdet={self.logdet_mode!r}"
        )


def _sample_shape(n: int | Sequence[int]) -> tuple[int, ...]:
    shape = (n,) if isinstance(n, int) and not isinstance(n, bool) else tuple(n)
    for k in shape:
        check_positive_int(n=k)
    return shape


class FlowDistribution(Distribution):
    r"""A :class:`FlowNetwork` seen as a :class:`torch.distributions.Distribution`.

    ``log_prob``, ``sample`` and ``rsample`` follow torch's conventions (``sample_shape``
    tuples); parameters stay those of the flow.

    Example:
        >>> dist = FlowDistribution(FlowNetwork(2, block_networks("single", 2, blocks=1)))
        >>> dist.sample((5,)).shape
        torch.Size([5, 2])
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, flow: FlowNetwork):
        if not isinstance(flow, FlowNetwork):
            raise TypeError(f"flow must be a FlowNetwork, got {type(flow).__name__}")
        self.flow = flow
        super().__init__(event_shape=torch.Size([flow.dim]), validate_args=False)

    def log_prob(self, value: Tensor) -> Tensor:
        return self.flow.log_prob(value)

    def sample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        shape = tuple(sample_shape) or (1,)
        out = self.flow.sample(shape)
        return out if tuple(sample_shape) else out[0]

    def rsample(self, sample_shape: Sequence[int] = ()) -> Tensor:
        shape = tuple(sample_shape) or (1,)
        out = self.flow.rsample(shape)
        return out if tuple(sample_shape) else out[0]
