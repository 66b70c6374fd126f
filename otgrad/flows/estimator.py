r"""The :class:`ConvexPotentialFlow` estimator: fit a convex potential flow to samples by
maximum likelihood, then evaluate its density and sample from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._estimator import Estimator
from .._validation import (
    as_samples,
    cast_samples,
    check_fit_settings,
    check_positive_int,
    check_positive_number,
    check_seed,
)
from ..nn import GradientNetwork
from ..train import History
from .flow import (
    FlowDistribution,
    FlowNetwork,
    block_networks,
    check_block_options,
    check_flow_options,
)

__all__ = ["ConvexPotentialFlow"]


def _spread_out(x: Tensor) -> Tensor:
    r"""Returns ``x``; a ``ValueError`` if a feature is constant (no density) or its variance
    is not a number of ``x``'s dtype (the data initialize the flow's scaling)."""
    flat = (x == x[0]).all(0).nonzero().flatten().tolist()
    if flat:
        raise ValueError(f"X is constant in feature(s) {flat}: a density needs spread in each")
    if not bool(torch.isfinite(x.var(0)).all()):
        raise ValueError(
            f"X is too large for its variance to be a {x.dtype} number (|values| up to "
            f"{float(x.abs().max()):.3g}); rescale the data"
        )
    return x


class ConvexPotentialFlow(Estimator):
    r"""A normalizing flow whose blocks are gradients of strongly convex potentials.

    ``fit`` trains a :class:`~otgrad.flows.FlowNetwork` (``[ActNorm, StronglyConvex(mGradNet),
    ..., ActNorm]`` from data to a standard normal base) by maximum likelihood with Adam and
    a cosine learning rate; the ActNorms are first initialized on up to 10,000 samples.
    ``log_prob`` is exact (the closed-form Jacobian's log-determinant), ``sample`` inverts the
    blocks by Newton's method.

    Arguments:
        dim: The data dimension :math:`d`.
        blocks, net, hidden, layers, activation, beta: The block networks; see
            :func:`~otgrad.flows.block_networks`. A list ``net`` of networks is deep-copied
            at ``fit``.
        mu, logdet, cg_iter, cg_tol, linear: The blocks' strong convexity, log-determinant
            and linear part; see :class:`~otgrad.flows.FlowNetwork`.
        steps: The optimization steps.
        batch_size: Samples per step (drawn with replacement).
        lr: Adam's initial learning rate.
        val_fraction: Hold out this fraction of ``X``; the weights with the best held-out
            likelihood (checked every 250 steps) are kept.
        time_limit: Stop after this many seconds; the cosine learning rate
            then decays to 0 over the steps or the time, whichever ends first.
        dtype: ``torch.float32`` or ``torch.float64``.
        device: Where to train (default: the CUDA device ``LOCAL_RANK`` if CUDA is available,
            else CPU; see :func:`~otgrad.train.default_device`).
        seed: Seeds the initialization, the batches and the stochastic log-determinant's
            probes (the caller's random state is left untouched).
        progress: Show a progress bar (default: when stderr is a terminal).

    Attributes:
        flow_: The fitted :class:`~otgrad.flows.FlowNetwork`.
        history_: The :class:`~otgrad.train.History` of mean negative log-likelihoods.
        fit_seconds_: The wall-clock fit time.

    Example:
        >>> from otgrad.data import sample_toy2d
        >>> flow = ConvexPotentialFlow(2, blocks=2, hidden=16, steps=50, seed=0)
        >>> flow = flow.fit(sample_toy2d("8gaussians", 2000, seed=0))
        >>> flow.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
        >>> x = flow.sample(4, seed=0)
        >>> torch.allclose(flow.inverse_transform(flow.transform(x)), x, atol=1e-4)
        True

    References:
        | Convex Potential Flows: Universal Probability Distributions with Optimal Transport
          and Convex Optimization (Huang, Chen, Tsirigotis, Courville, 2021).
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Prop 3.1, Cor 11.1, 12.1.
    """

    _module = "flow_"

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
        steps: int = 5000,
        batch_size: int = 512,
        lr: float = 2e-3,
        val_fraction: float = 0.0,
        time_limit: float | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
        seed: int | None = None,
        progress: bool | None = None,
    ):
        check_block_options(net, dim, blocks, hidden, layers, beta)
        check_flow_options(mu, logdet, cg_iter, cg_tol)
        check_positive_int(steps=steps, batch_size=batch_size)
        check_positive_number("lr", lr)
        if not (isinstance(val_fraction, float) and 0.0 <= val_fraction < 1.0):
            raise ValueError(f"val_fraction must be a float in [0, 1), got {val_fraction!r}")
        check_fit_settings(dtype, device, seed, time_limit, progress)
        self._store(locals())

    # ------------------------------------------------------------------ fitting
    def _network(self) -> FlowNetwork:
        net = self.net if isinstance(self.net, str) else [self._copy_net(n) for n in self.net]
        nets = block_networks(
            net, self.dim, self.blocks, self.hidden, self.layers, self.activation, self.beta
        )
        return FlowNetwork(
            self.dim, nets, mu=self.mu, logdet=self.logdet, cg_iter=self.cg_iter,
            cg_tol=self.cg_tol, linear=self.linear,
        )  # fmt: skip

    def fit(self, X: Any) -> ConvexPotentialFlow:
        r"""Fits the flow to samples ``X`` of shape ``(n, d)`` (NumPy or torch).

        Returns:
            ``self``.
        """
        x, _ = as_samples(X, "X", dim=self.dim, min_samples=2)
        self.__dict__.pop("flow_", None)
        device, dtype = self._placement()
        x = _spread_out(cast_samples(x, device, dtype, "X"))
        with self._seeded() as seed:
            flow = self._network().to(device, dtype)
            gen = torch.Generator().manual_seed(seed)
            x = x[torch.randperm(x.shape[0], generator=gen).to(device)]
            n_val = int(round(self.val_fraction * x.shape[0]))
            val, train = (x[:n_val], x[n_val:]) if n_val > 0 else (None, x)
            flow.initialize(train[:10000])
            self.history_: History = self._train(flow, train, val, seed)
        self.fit_seconds_ = self.history_.seconds
        self.flow_, self.n_features_in_ = flow, self.dim
        return self

    def _train(self, flow: FlowNetwork, train: Tensor, val: Tensor | None, seed: int) -> History:
        n, bs = train.shape[0], self.batch_size

        def sampler(g: torch.Generator) -> list[Tensor]:
            return [train[torch.randint(n, (bs,), generator=g).to(train.device)]]

        def nll(model: FlowNetwork, batch: Tensor) -> Tensor:
            return -model._log_prob(batch).mean()

        val_data = None if val is None else [val]
        return self._fit_steps(flow, nll, sampler, seed, 250, lr=self.lr, val_data=val_data)

    # ------------------------------------------------------------------ density
    def log_prob(self, X: Any) -> Any:
        r"""The log-density :math:`\log p(x)`, exact (with ``logdet="exact"``/``"auto"``).

        Arguments:
            X: A tensor of shape ``(*, d)`` on the flow's device and dtype (differentiable
                with respect to ``X`` and the flow's parameters), or a NumPy array of shape
                ``(n, d)`` (evaluated without gradients, in chunks).

        Returns:
            The log-densities, shape ``(*)``: a tensor for a tensor, a float64 array for an
            array.
        """
        flow = self._fitted()
        if isinstance(X, Tensor):
            return flow.log_prob(X)
        x, _ = as_samples(X, "X", dim=self.dim)
        device, dtype = self._placement()
        with torch.no_grad():
            lp = self._chunks(cast_samples(x, device, dtype, "X"), flow._log_prob)
        return lp.to("cpu", torch.float64).numpy()

    def score(self, X: Any) -> float:
        r"""The mean log-likelihood of the samples ``X`` (higher is better)."""
        lp = self.log_prob(X if isinstance(X, np.ndarray) else as_samples(X, "X")[0].numpy())
        return float(np.mean(lp))

    # ------------------------------------------------------------------ transforms
    def transform(self, X: Any) -> Any:
        r"""Maps data to the base: :math:`z = T(x)`, same kind, dtype and device as ``X``."""
        flow = self._fitted()
        x, back = as_samples(X, "X", dim=self.dim)
        device, dtype = self._placement()
        with torch.no_grad():
            z = self._chunks(cast_samples(x, device, dtype, "X"), lambda c: flow._transform(c)[0])
        return back(z)

    def inverse_transform(self, Z: Any, tol: float = 1e-6, max_iter: int = 100) -> Any:
        r"""Maps base points back to data, :math:`x = T^{-1}(z)` (Newton, block by block)."""
        flow = self._fitted()
        z, back = as_samples(Z, "Z", dim=self.dim)
        device, dtype = self._placement()
        x = self._chunks(
            cast_samples(z, device, dtype, "Z"),
            lambda c: flow.inverse(c, tol=tol, max_iter=max_iter),
        )
        return back(x)

    # ------------------------------------------------------------------ sampling
    def sample(
        self, n: int | Sequence[int] = 1, *, seed: int | None = None, tol: float = 1e-6
    ) -> Tensor:
        r"""Draws samples (a tensor of shape ``(n, d)``, or ``(*n, d)``); see
        :meth:`FlowNetwork.sample <otgrad.flows.FlowNetwork.sample>`."""
        return self._fitted().sample(n, seed=check_seed(seed), tol=tol)

    def rsample(
        self, n: int | Sequence[int] = 1, *, seed: int | None = None, tol: float = 1e-6
    ) -> Tensor:
        r"""Draws reparametrized samples, differentiable with respect to ``flow_``'s
        parameters; see :meth:`FlowNetwork.rsample <otgrad.flows.FlowNetwork.rsample>`."""
        return self._fitted().rsample(n, seed=check_seed(seed), tol=tol)

    def distribution(self) -> FlowDistribution:
        r"""The fitted flow as a :class:`torch.distributions.Distribution`."""
        return FlowDistribution(self._fitted())

    # ------------------------------------------------------------------ persistence
    @classmethod
    def _params_from(cls, module: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(module, FlowNetwork):
            raise TypeError(f"the network is a {type(module).__name__}, not a FlowNetwork")
        return {**super()._params_from(module, state), "dim": module.dim}

    def _restore(self, module: nn.Module, state: dict[str, Any]) -> None:
        if not isinstance(module, FlowNetwork) or module.dim != self.dim:
            raise ValueError("the flow network does not match the saved parameters")
        self.flow_, self.n_features_in_ = module, module.dim
