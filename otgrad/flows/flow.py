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
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Distribution, constraints

from .. import calculus, io
from ..data.samples import as_samples
from ..nn import GradientNetwork, GradNetC, GradNetM, SingleLayerGradNet, StronglyConvex, Sum
from ..nn.base import check_input, check_positive_int, check_positive_number
from ..train import History, fit
from .actnorm import ActNorm

__all__ = ["ConvexPotentialFlow", "FlowDistribution", "NETS", "LOGDETS"]

#: The block networks ``ConvexPotentialFlow(net=...)`` builds by name.
NETS = ("cascade", "modular", "single")
#: The log-determinant modes.
LOGDETS = ("auto", "exact", "stochastic")
_LOG_2PI = math.log(2 * math.pi)


def _block_net(
    kind: str, dim: int, hidden: int, layers: int, activation: str | None, beta: float
) -> GradientNetwork:
    if kind == "cascade":
        return GradNetC(dim, hidden, layers=layers, activation=activation or "tanh")
    if kind == "modular":
        return GradNetM(dim, hidden, modules=layers, activation=activation or "softmax", beta=beta)
    return SingleLayerGradNet(dim, hidden, activation=activation or "tanh")


@io.register("ConvexPotentialFlow")
class ConvexPotentialFlow(nn.Module):
    r"""A normalizing flow whose blocks are gradients of strongly convex potentials.

    The flow is ``[ActNorm, StronglyConvex(mGradNet), ActNorm, ..., StronglyConvex(mGradNet),
    ActNorm]`` from data to a standard normal base; see the module documentation.

    Arguments:
        dim: The data dimension :math:`d`.
        blocks: The number of mGradNet blocks :math:`K` (ignored when ``net`` is a list).
        net: ``"modular"`` (mGradNet-M with softmax modules, default), ``"cascade"``
            (mGradNet-C) or ``"single"`` (single-layer mGradNet), built with ``hidden`` and
            ``layers``; or a list of monotone :class:`~otgrad.nn.GradientNetwork` of
            dimension ``dim``, one per block.
        hidden: The hidden width of named block networks.
        layers: The modules of ``"modular"`` blocks, the layers of ``"cascade"`` ones.
        activation: The activation of named block networks (their default when ``None``).
        beta: The initial inverse temperature of ``"modular"`` softmax modules (learned
            afterwards). Sharp modules matter for densities with holes and edges: see the
            ablation in ``docs/benchmarks.md`` ("Convex potential flows").
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
        >>> from otgrad.data import sample_toy2d
        >>> flow = ConvexPotentialFlow(2, blocks=2, hidden=16)
        >>> flow = flow.fit(sample_toy2d("8gaussians", 2000, seed=0), steps=50, seed=0)
        >>> flow.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
        >>> x = flow.sample(4, seed=0)
        >>> z, _ = flow(x)
        >>> torch.allclose(flow.inverse(z), x, atol=1e-4)
        True

    References:
        | Convex Potential Flows (Huang et al., 2021).
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.1, Cor 11.1, 12.1.
    """

    def __init__(
        self,
        dim: int,
        blocks: int = 4,
        net: str | Sequence[GradientNetwork] = "modular",
        *,
        hidden: int = 16,
        layers: int = 24,
        activation: str | None = None,
        beta: float = 20.0,
        mu: float = 0.01,
        logdet: str = "auto",
        cg_iter: int = 20,
        cg_tol: float = 1e-3,
        linear: bool = True,
    ):
        super().__init__()
        check_positive_int(dim=dim, blocks=blocks, hidden=hidden, layers=layers, cg_iter=cg_iter)
        self.mu = check_positive_number("mu", mu)
        self.cg_tol = check_positive_number("cg_tol", cg_tol)
        if logdet not in LOGDETS:
            raise ValueError(f"logdet must be one of {LOGDETS}, got {logdet!r}")
        if isinstance(net, str):
            if net not in NETS:
                raise ValueError(f"net must be one of {NETS} or a list of networks, got {net!r}")
            nets = [
                _block_net(
                    net, dim, hidden, layers, activation, check_positive_number("beta", beta)
                )
                for _ in range(blocks)
            ]
        elif isinstance(net, (list, tuple, nn.ModuleList)):
            nets = list(net)
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
        else:
            raise TypeError(
                f"net must be one of {NETS} or a list of networks, got {type(net).__name__}"
            )
        self.dim, self.logdet_mode, self.cg_iter = dim, logdet, cg_iter
        self.linear = bool(linear)
        self.blocks = nn.ModuleList(StronglyConvex(self._with_linear(n), self.mu) for n in nets)
        self.norms = nn.ModuleList(ActNorm(dim, auto_init=False) for _ in range(len(nets) + 1))
        self._config = dict(
            dim=dim,
            blocks=len(nets),
            net=nets,
            mu=self.mu,
            logdet=logdet,
            cg_iter=cg_iter,
            cg_tol=self.cg_tol,
            linear=self.linear,
        )

    def _with_linear(self, net: GradientNetwork) -> GradientNetwork:
        if not self.linear:
            return net
        return Sum([SingleLayerGradNet(self.dim, self.dim, activation="linear"), net])

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments that rebuild this flow (used by :mod:`otgrad.io`)."""
        return dict(self._config)

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

    # ------------------------------------------------------------------ distribution
    def log_prob(self, x: Any) -> Any:
        r"""The log-density :math:`\log p(x)`, exact (with ``logdet="exact"``/``"auto"``).

        Arguments:
            x: A tensor of shape ``(*, d)`` (differentiable; on the flow's device and
                dtype) or a NumPy array of shape ``(n, d)`` (evaluated without gradients).

        Returns:
            The log-densities, shape ``(*)``: a tensor for a tensor, a float64 array for an
            array.
        """
        if isinstance(x, np.ndarray):
            t, _ = as_samples(x, "x", dim=self.dim)
            dtype, device = self._meta()
            with torch.no_grad():
                lp = torch.cat([self._log_prob(c) for c in t.to(device, dtype).split(65536)])
            return lp.to("cpu", torch.float64).numpy()
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

    def distribution(self) -> FlowDistribution:
        r"""The flow as a :class:`torch.distributions.Distribution`."""
        return FlowDistribution(self)

    # ------------------------------------------------------------------ training
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

    def fit(
        self,
        X: Any,
        *,
        steps: int = 5000,
        batch_size: int = 512,
        lr: float = 2e-3,
        val_fraction: float = 0.0,
        time_limit: float | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> ConvexPotentialFlow:
        r"""Fits the flow to samples by maximum likelihood (Adam, cosine learning rate).

        The ActNorms are initialized on up to 10,000 samples first (unless already done).

        Arguments:
            X: Samples, shape ``(n, d)`` (NumPy or torch).
            steps: The optimization steps.
            batch_size: Samples per step (drawn with replacement).
            lr: Adam's initial learning rate.
            val_fraction: Hold out this fraction of ``X``; the weights with the best
                held-out likelihood (checked every 250 steps) are kept.
            time_limit: Stop after this many seconds.
            seed: Seeds the batches and the probes (through ``torch.manual_seed``).
            progress: Show a progress bar (default: when stderr is a terminal).

        Returns:
            ``self``, with ``history_`` (a :class:`~otgrad.train.History` of mean negative
            log-likelihoods) and ``fit_seconds_``.
        """
        x, _ = as_samples(X, "X", dim=self.dim, min_samples=2)
        check_positive_int(steps=steps, batch_size=batch_size)
        check_positive_number("lr", lr)
        if not (isinstance(val_fraction, float) and 0.0 <= val_fraction < 1.0):
            raise ValueError(f"val_fraction must be a float in [0, 1), got {val_fraction!r}")
        dtype, device = self._meta()
        if seed is not None:  # the probes of the stochastic log-det use the global generator
            torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(
            seed if seed is not None else int(torch.randint(2**62, ()))
        )
        x = x[torch.randperm(x.shape[0], generator=gen)].to(device, dtype)
        n_val = int(round(val_fraction * x.shape[0]))
        val, train = (x[:n_val], x[n_val:]) if n_val > 0 else (None, x)
        if not all(bool(norm.initialized) for norm in self.norms):
            self.initialize(train[:10000])
        n = train.shape[0]

        def sampler(g: torch.Generator) -> list[Tensor]:
            return [train[torch.randint(n, (batch_size,), generator=g).to(device)]]

        def nll(model: ConvexPotentialFlow, batch: Tensor) -> Tensor:
            return -model._log_prob(batch).mean()

        per_epoch = min(steps, 250)
        self.history_: History = fit(
            self,
            nll,
            sampler,
            epochs=math.ceil(steps / per_epoch),
            steps_per_epoch=per_epoch,
            lr=lr,
            schedule="cosine",
            val_data=None if val is None else [val],
            seed=seed,
            time_limit=time_limit,
            progress=progress,
        )
        self.fit_seconds_ = self.history_.seconds
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        r"""Saves the flow (configuration and weights, ActNorm state included)."""
        io.save(self, path, metadata={"estimator": "ConvexPotentialFlow"})

    @classmethod
    def load(
        cls, path: str | os.PathLike, device: str | torch.device | None = "cpu"
    ) -> ConvexPotentialFlow:
        r"""Loads a flow saved by :meth:`save` (never executes code from the file).

        Raises:
            ValueError: If the file is corrupt or not a saved :class:`ConvexPotentialFlow`.
        """
        flow, _ = io.load_estimator(path, "ConvexPotentialFlow", device)
        if not isinstance(flow, cls):
            raise ValueError(f"{os.fspath(path)!r} holds a {type(flow).__name__}, not a flow")
        return flow

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
    r"""A :class:`ConvexPotentialFlow` seen as a :class:`torch.distributions.Distribution`.

    ``log_prob``, ``sample`` and ``rsample`` follow torch's conventions (``sample_shape``
    tuples); parameters stay those of the flow.

    Example:
        >>> dist = ConvexPotentialFlow(2, blocks=1, hidden=8).distribution()
        >>> dist.sample((5,)).shape
        torch.Size([5, 2])
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, flow: ConvexPotentialFlow):
        if not isinstance(flow, ConvexPotentialFlow):
            raise TypeError(f"flow must be a ConvexPotentialFlow, got {type(flow).__name__}")
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
