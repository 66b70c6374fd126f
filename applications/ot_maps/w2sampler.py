r"""Fresh samples of the W2 benchmark pairs and their true optimal transport map.

The high-dimensional pairs ("Mix3toMix10") of Korotin et al. (2021) are built from a source
:math:`P` and a convex potential :math:`\psi`; the target is :math:`Q = \nabla\psi_\# P` and
:math:`\nabla\psi` is the optimal map for the quadratic cost. This module rebuilds both from
the weights in the benchmark folder (``../shared/data/w2bench``, see its ``README.md``), so
that a solver can draw new samples of :math:`P` and :math:`Q` at every step instead of reusing
the fixed training arrays, and be scored against the same :math:`\nabla\psi` as ``T_test``.

1. :math:`P` is an equal-weight mixture of three Gaussians :math:`\mathcal{N}(c_k, F_k
   F_k^\top)`. Its parameters come from numpy's legacy stream with seed 0, exactly as the
   benchmark draws them: for every axis the centers take the values :math:`-1, 0, 1` in a
   random order; :math:`F_k = 0.4\, M_k` with Gaussian :math:`M_k` whose rows have unit norm;
   centers and :math:`F_k` are divided by one factor that makes the mean per-coordinate second
   moment 1. The parameters are therefore exact, only the samples are new.
2. :math:`\varphi_1, \varphi_2` are the two input-convex networks ``{d}_v1.pt``,
   ``{d}_v2.pt``: three convex-quadratic input layers, CELU, nonnegative hidden weights, and
   :math:`\frac{1}{2} 10^{-2} \|x\|^2` each.
3. :math:`\psi = s (\varphi_1 + \varphi_2 - \langle m, \cdot \rangle)`, where :math:`m` and
   :math:`s` center :math:`\nabla(\varphi_1 + \varphi_2)_\# P` and scale it to mean
   per-coordinate variance 1. The benchmark estimates them on :math:`2^{14}` random samples,
   so they are not reproducible from a seed; by default they are read off the stored test
   pair (``T_test`` is affine in :math:`\nabla(\varphi_1 + \varphi_2)(X_\text{test})`), which
   makes :meth:`W2BenchmarkPair.transport` agree with ``T_test``.

``datasets/prepare_w2bench.py`` checks the stored arrays and draws new ones with this module.

References:
    | Do Neural Optimal Transport Solvers Work? A Continuous Wasserstein-2 Benchmark
      (Korotin, Li, Genevay, Solomon, Filippov, Burnaev; NeurIPS 2021),
      github.com/iamalexkorotin/Wasserstein2Benchmark.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

__all__ = ["W2BenchmarkPair", "available_dims", "mixture_log_density", "source_mixture"]

STRONG_CONVEXITY = 1e-2  # per network, added to each potential when it is loaded
COMPONENTS, SPACING, COMPONENT_STD = 3, 1.0, 0.4
N_STANDARDIZE = 2**14  # the benchmark's sample size for s and m (``standardize="sample"``)


def available_dims(root: str) -> list[int]:
    r"""The dimensions of which ``root`` holds both potentials ``{d}_v1.pt`` and ``{d}_v2.pt``.

    Arguments:
        root: The W2 benchmark folder.

    Returns:
        The sorted dimensions; empty when ``root`` is not a folder.
    """
    if not os.path.isdir(root):
        return []
    found = {}
    for name in os.listdir(root):
        match = re.fullmatch(r"(\d+)_(v[12])\.pt", name)
        if match:
            found.setdefault(int(match[1]), set()).add(match[2])
    return sorted(d for d, versions in found.items() if versions == {"v1", "v2"})


def source_mixture(dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""The parameters of the benchmark's source :math:`P` in dimension ``dim``.

    Arguments:
        dim: The dimension :math:`d`.
        seed: The seed of numpy's legacy stream (the benchmark uses 0).

    Returns:
        ``(centers, factors)`` of shapes ``(3, d)`` and ``(3, d, d)``, float64: component
        :math:`k` is :math:`\mathcal{N}(c_k, F_k F_k^\top)`, the weights are equal.

    Example:
        >>> centers, factors = source_mixture(4)
        >>> centers.shape, factors.shape
        ((3, 4), (3, 4, 4))
    """
    rs = np.random.RandomState(seed)
    # one random order of the grid values 0, 1, 2 per axis (the stream of choice(3, 3, False))
    grid = np.stack([rs.permutation(COMPONENTS) for _ in range(dim)], axis=1)
    centers = SPACING * (grid - (COMPONENTS - 1) / 2)
    # Gaussian matrices, rounded to float32 as the benchmark stores them, unit-norm rows
    maps = rs.normal(size=(COMPONENTS, dim, dim)).astype(np.float32).astype(np.float64)
    maps /= np.linalg.norm(maps, axis=2, keepdims=True)
    # one factor for the whole mixture: mean per-coordinate second moment 1
    second_moment = (centers**2).sum(1).mean() + dim * COMPONENT_STD**2
    divisor = np.sqrt(second_moment / dim)
    return centers / divisor, COMPONENT_STD * maps / divisor


def mixture_log_density(centers: np.ndarray, factors: np.ndarray, x: np.ndarray) -> np.ndarray:
    r"""The log-density of an equal-weight Gaussian mixture such as the source :math:`P`.

    .. math:: \log p(x) = \log \frac{1}{K} \sum_{k=1}^K \mathcal{N}(x; c_k, F_k F_k^\top)

    Arguments:
        centers: The centers :math:`c_k`, shape ``(K, d)``.
        factors: The invertible covariance factors :math:`F_k`, shape ``(K, d, d)``.
        x: The points, shape ``(n, d)``.

    Returns:
        :math:`\log p` at the rows of ``x``, shape ``(n,)``, float64.

    Example:
        >>> centers, factors = source_mixture(2)
        >>> mixture_log_density(centers, factors, centers).shape
        (3,)
    """
    x, centers, factors = (np.asarray(a, dtype=np.float64) for a in (x, centers, factors))
    logs = []
    for c, f in zip(centers, factors, strict=True):
        z = np.linalg.solve(f, (x - c).T)  # F_k^{-1} (x - c_k), shape (d, n)
        logs.append(-0.5 * np.square(z).sum(0) - np.linalg.slogdet(f)[1])
    norm = math.log(len(logs)) + 0.5 * x.shape[1] * math.log(2 * math.pi)
    return np.logaddexp.reduce(np.stack(logs, 1), axis=1) - norm


class _ConvexNetwork:
    r"""The benchmark's dense input-convex network, evaluated from its state dict.

    .. math:: z_0 = q_0(x), \quad z_i = \operatorname{celu}(W_i z_{i-1} + q_i(x)),
        \quad \varphi(x) = w^\top z_L + \tfrac{\lambda}{2} \|x\|^2

    with convex-quadratic input layers, unit :math:`j` of layer :math:`i` being
    :math:`\sum_r (a_{ijr}^\top x)^2 + B_{ij}^\top x + b_{ij}` (rank 1: one term), and
    :math:`\lambda` = :data:`STRONG_CONVEXITY`. The first layer has no activation.
    """

    def __init__(self, state: Mapping[str, Tensor], dim: int, device: Any, dtype: torch.dtype):
        layers = sum(key.endswith(".quadratic_decomposed") for key in state)
        expected = {"final_layer.weight"}
        for i in range(layers):
            expected |= {f"quadratic_layers.{i}.{p}" for p in ("quadratic_decomposed", "weight")}
            expected |= {f"quadratic_layers.{i}.bias"}
            expected |= {f"convex_layers.{i - 1}.weight"} if i else set()
        if layers == 0 or set(state) != expected:
            raise ValueError(f"not a DenseICNN state dict: keys {sorted(state)}")
        to = functools.partial(torch.Tensor.to, device=device, dtype=dtype)
        self.quadratic = [
            to(state[f"quadratic_layers.{i}.quadratic_decomposed"]) for i in range(layers)
        ]
        self.linear = [to(state[f"quadratic_layers.{i}.weight"]) for i in range(layers)]
        self.bias = [to(state[f"quadratic_layers.{i}.bias"]) for i in range(layers)]
        self.convex = [to(state[f"convex_layers.{i}.weight"]) for i in range(layers - 1)]
        self.final = to(state["final_layer.weight"])
        if self.quadratic[0].shape[0] != dim:
            raise ValueError(f"the network takes d = {self.quadratic[0].shape[0]}, not {dim}")
        self.hidden = [w.shape[0] for w in self.linear]

    def _input_layer(self, i: int, x: Tensor) -> Tensor:
        squares = torch.einsum("nd,drh->nrh", x, self.quadratic[i]).square().sum(1)
        return squares + x @ self.linear[i].T + self.bias[i]

    def __call__(self, x: Tensor) -> Tensor:
        r"""The potential at the rows of ``x`` (shape ``(n, d)``), shape ``(n,)``."""
        z = self._input_layer(0, x)
        for i, w in enumerate(self.convex, start=1):
            z = torch.celu(z @ w.T + self._input_layer(i, x))
        return (z @ self.final.T)[:, 0] + 0.5 * STRONG_CONVEXITY * x.square().sum(1)


def _fit_affine(g: Tensor, t: Tensor) -> tuple[float, Tensor, float]:
    r"""The least-squares ``t ≈ s (g - m)`` with one scalar ``s`` and one vector ``m``;
    returns ``(s, m, max |residual| / max |t|)``."""
    gc, tc = g - g.mean(0), t - t.mean(0)
    s = float((gc * tc).sum() / gc.square().sum())
    m = g.mean(0) - t.mean(0) / s
    residual = float((t - s * (g - m)).abs().max() / t.abs().max())
    return s, m, residual


class W2BenchmarkPair:
    r"""A pair :math:`(P, Q = \nabla\psi_\# P)` of the W2 benchmark with fresh samples.

    Arguments:
        root: The W2 benchmark folder (with ``{d}_v1.pt``, ``{d}_v2.pt`` and, for the default
            ``standardize``, ``arrays/D{d}.npz``).
        dim: The dimension :math:`d`, one of :func:`available_dims` of ``root``.
        device: Where samples and maps live.
        dtype: The floating type of samples and maps.
        standardize: How :math:`s` and :math:`m` are obtained: ``"arrays"`` reads them off
            ``X_test`` and ``T_test`` (so that :meth:`transport` reproduces ``T_test``);
            ``"sample"`` estimates them as the benchmark does, on :data:`N_STANDARDIZE`
            samples of :math:`P` with a fixed seed (measured: :math:`s` within 0.4 % of the
            stored pair's, L2-UVP 0.002 to 0.016 % against ``T_test``).
        max_residual: With ``standardize="arrays"``, the largest relative residual of the fit
            of ``T_test`` that is accepted; a larger one raises :class:`ValueError` (the
            arrays do not belong to these potentials).

    Attributes:
        scale: :math:`s`.
        shift: :math:`m`, shape ``(d,)``.
        residual: With ``standardize="arrays"``, :math:`\max |T_\text{test} -
            \nabla\psi(X_\text{test})| / \max |T_\text{test}|` in float64 (float32
            rounding of the stored pair: below :math:`10^{-5}`); :py:`None` with ``"sample"``.
        centers: The centers of :math:`P`'s components, shape ``(3, d)``.
        factors: Their covariance factors :math:`F_k`, shape ``(3, d, d)``.
        hidden: The hidden sizes of the networks.

    Example:
        >>> pair = W2BenchmarkPair("../shared/data/w2bench", 8)  # doctest: +SKIP
        >>> g = torch.Generator().manual_seed(0)  # doctest: +SKIP
        >>> x = pair.sample_source(512, g)  # doctest: +SKIP
        >>> y = pair.transport(x)  # the true optimal transport of x  # doctest: +SKIP
    """

    def __init__(
        self,
        root: str,
        dim: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        standardize: Literal["arrays", "sample"] = "arrays",
        max_residual: float = 1e-4,
    ):
        dims = available_dims(root)
        if not dims:
            raise ValueError(f"no W2 benchmark potentials ({{d}}_v1.pt, {{d}}_v2.pt) in {root!r}")
        if dim not in dims:
            raise ValueError(f"dim must be one of {dims} (the files in {root!r}), got {dim!r}")
        if standardize not in ("arrays", "sample"):
            raise ValueError(f"standardize must be 'arrays' or 'sample', got {standardize!r}")
        self.root, self.dim = root, dim
        self.device, self.dtype = torch.device(device), dtype
        centers, factors = source_mixture(dim)
        self.centers = torch.as_tensor(centers, dtype=dtype, device=self.device)
        self.factors = torch.as_tensor(factors, dtype=dtype, device=self.device)
        states = [
            torch.load(os.path.join(root, f"{dim}_{v}.pt"), map_location="cpu", weights_only=True)
            for v in ("v1", "v2")
        ]
        # s and m are computed in float64 on the CPU, the maps then run in ``dtype``
        exact = [_ConvexNetwork(s, dim, "cpu", torch.float64) for s in states]
        scale, shift, self.residual = self._standardization(exact, standardize, max_residual)
        self.networks = [_ConvexNetwork(s, dim, self.device, dtype) for s in states]
        self.hidden = self.networks[0].hidden
        self.scale = scale
        self.shift = shift.to(device=self.device, dtype=dtype)

    def _standardization(
        self, networks: list[_ConvexNetwork], how: str, max_residual: float
    ) -> tuple[float, Tensor, float | None]:
        r"""``(s, m, residual)`` in float64 on the CPU (see the ``standardize`` argument)."""
        if how == "sample":
            exact = (torch.as_tensor(p) for p in source_mixture(self.dim))  # float64, CPU
            x = self._mixture_draw(N_STANDARDIZE, torch.Generator().manual_seed(0), *exact)
            g = _gradient(networks, x)
            mean = g.mean(0)
            return float(g.var(0, unbiased=False).mean().rsqrt()), mean, None
        path = os.path.join(self.root, "arrays", f"D{self.dim}.npz")
        if not os.path.isfile(path):
            raise ValueError(f"standardize='arrays' needs {path}; use standardize='sample'")
        with np.load(path) as arrays:
            x, t = (torch.as_tensor(arrays[k], dtype=torch.float64) for k in ("X_test", "T_test"))
        scale, shift, residual = _fit_affine(_gradient(networks, x), t)
        if not residual <= max_residual:
            raise ValueError(
                f"T_test in {path} is not s * (grad(phi_v1 + phi_v2) - m) for these potentials "
                f"(relative residual {residual:.1e})"
            )
        return scale, shift, residual

    def _mixture_draw(
        self, n: int, generator: torch.Generator | None, centers: Tensor, factors: Tensor
    ) -> Tensor:
        device, dtype = centers.device, centers.dtype
        where = generator.device if generator is not None else device
        k = torch.randint(COMPONENTS, (n,), generator=generator, device=where).to(device)
        z = torch.randn(n, self.dim, generator=generator, device=where, dtype=dtype).to(device)
        every = torch.einsum("nj,kij->kni", z, factors)  # (3, n, d): each component's draw
        return every[k, torch.arange(n, device=device)] + centers[k]

    def sample_source(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""Fresh samples of :math:`P`.

        Arguments:
            n: The number of samples.
            generator: The random generator (on any device; the default generator if
                :py:`None`).

        Returns:
            The samples, shape ``(n, d)``, on the pair's device and in its dtype.
        """
        return self._mixture_draw(n, generator, self.centers, self.factors)

    def transport(self, x: Any, batch_size: int = 16384) -> Tensor:
        r"""The true optimal map :math:`\nabla\psi(x) = s (\nabla(\varphi_1 +
        \varphi_2)(x) - m)`, by automatic differentiation of the two networks.

        The result carries no graph, and this works under :func:`torch.no_grad` and
        :func:`torch.inference_mode`.

        Arguments:
            x: The points, shape ``(n, d)`` (a tensor or an array).
            batch_size: The rows differentiated at once.

        Returns:
            :math:`\nabla\psi(x)`, shape ``(n, d)``, on the pair's device and in its dtype.
        """
        x = torch.as_tensor(x).to(device=self.device, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        out = [_gradient(self.networks, chunk) for chunk in x.split(batch_size)]
        return self.scale * (torch.cat(out) - self.shift)

    def sample_target(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        r"""Fresh samples of :math:`Q`: the transport of fresh samples of :math:`P`.

        Arguments:
            n: The number of samples.
            generator: The random generator, as in :meth:`sample_source`.

        Returns:
            The samples, shape ``(n, d)``.
        """
        return self.transport(self.sample_source(n, generator))

    @functools.cached_property
    def var(self) -> float:
        r""":math:`\operatorname{Var}(Q)`, the sum of the per-coordinate variances of
        :math:`Q` (the denominator of the L2-UVP), estimated on :math:`2^{16}` samples of
        fixed seed (about :math:`d`, since :math:`Q` is standardized)."""
        y = self.sample_target(2**16, torch.Generator().manual_seed(1)).double()
        return float(y.var(0, unbiased=False).sum())


def _gradient(networks: list[_ConvexNetwork], x: Tensor) -> Tensor:
    r""":math:`\nabla(\varphi_1 + \varphi_2)` at the rows of ``x``, without a graph."""
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        total = sum(net(x).sum() for net in networks)
        (grad,) = torch.autograd.grad(total, x)
    return grad.detach()
