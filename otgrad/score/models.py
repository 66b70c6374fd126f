r"""Noise-conditional score models :math:`s(x, \sigma) \approx \nabla_x \log p_\sigma(x)`.

:class:`NoiseConditionalGradNet` is exactly conservative: for every noise level
:math:`\sigma` the map :math:`x \mapsto s(x, \sigma)` is a GradNet, because :math:`\sigma`
enters only through module scales, inverse temperatures and biases (never multiplied by
:math:`x` inside a nonlinearity). Its potential :math:`\psi(x, \sigma)` is a log-density up
to a constant, so samplers can run Metropolis corrections and likelihoods use the
closed-form Jacobian trace. Two baselines share its preconditioning and noise embedding:
:class:`NoiseConditionalMLP` (an unconstrained network, not a gradient field) and
:class:`NoiseConditionalGradMLP` (the autograd gradient of a scalar MLP).

All three use the same skip connection: with :math:`v = \sigma^2 + 1` (data standardized to
unit variance) and :math:`c_{\text{in}} = v^{-1/2}`,

.. math:: s(x, \sigma) = -\frac{x}{v} + \frac{1}{\sigma} F(c_{\text{in}} x, \sigma),

the score of a unit Gaussian blurred by :math:`\sigma` plus a residual of order one in the
denoising target :math:`-\varepsilon/\sigma` (Karras et al., 2022).

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Thm 12 (modular GradNets).
    | Generative Modeling by Estimating Gradients of the Data Distribution (Song & Ermon, 2019).
    | Elucidating the Design Space of Diffusion-Based Generative Models (Karras et al., 2022).
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .. import io
from .._validation import check_input, check_positive_int
from ..nn.base import GradientNetwork, orthogonal_weight
from ..nn.structure import RidgeTerm, StructuredJacobian

__all__ = [
    "NoiseConditionalScore",
    "NoiseConditionalGradNet",
    "NoiseConditionalDeepGradNet",
    "NoiseConditionalTwoLayerGradNet",
    "NoiseConditionalMLP",
    "NoiseConditionalGradMLP",
    "SigmaEmbedding",
    "build_score_model",
    "parameter_count",
]


class SigmaEmbedding(nn.Module):
    r"""Features of the noise level: :math:`c = \log(\sigma)/4`, then
    :math:`[c, \sin(\pi k c), \cos(\pi k c)]_{k=1}^{K}` through a two-layer SiLU network.

    Arguments:
        features: The number :math:`K` of frequencies.
        width: The hidden width.
        out: The embedding size.
    """

    def __init__(self, features: int = 8, width: int = 64, out: int = 32):
        super().__init__()
        check_positive_int(features=features, width=width, out=out)
        self.register_buffer("freq", math.pi * torch.arange(1, features + 1, dtype=torch.float32))
        self.net = nn.Sequential(
            nn.Linear(2 * features + 1, width), nn.SiLU(), nn.Linear(width, out), nn.SiLU()
        )
        self.out = out

    def forward(self, sigma: Tensor) -> Tensor:
        c = sigma.log()[..., None] / 4
        arg = c * self.freq.to(c)
        return self.net(torch.cat([c, arg.sin(), arg.cos()], -1))


class NoiseConditionalScore(nn.Module, metaclass=abc.ABCMeta):
    r"""Base class of noise-conditional score models.

    Inputs: ``x`` of shape ``(*, d)`` and ``sigma`` a positive float or a tensor of shape
    ``(*)`` (one noise level per point) broadcastable to ``x.shape[:-1]``.

    Attributes:
        dim: The dimension :math:`d`.
        conservative: Whether the model is the gradient of :meth:`potential` in :math:`x`.
        closed_form: Whether the Jacobian trace is closed form (no automatic differentiation).
    """

    conservative: ClassVar[bool] = False
    closed_form: ClassVar[bool] = False

    def __init__(self, dim: int, embedding: int = 32, width: int = 64):
        super().__init__()
        check_positive_int(dim=dim, embedding=embedding, width=width)
        self.dim, self.embedding, self.width = dim, embedding, width
        self.embed = SigmaEmbedding(width=width, out=embedding)

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments that rebuild this model
        (:func:`~otgrad.io.config_from_signature`)."""
        return io.config_from_signature(self)

    def _embedding(self, sigma: Tensor) -> Tensor:
        r"""The noise embedding, computed once when ``sigma`` is one level broadcast over
        the batch (a stride-0 tensor, as the samplers pass it), shape ``(*, k)``."""
        if sigma.dim() > 0 and sigma.numel() > 1 and all(st == 0 for st in sigma.stride()):
            e = self.embed(sigma.reshape(-1)[:1])
            return e.reshape((1,) * sigma.dim() + e.shape[-1:])
        return self.embed(sigma)

    # ------------------------------------------------------------------ checks
    def _check(self, x: Any, sigma: Any, name: str = "x") -> tuple[Tensor, Tensor]:
        p = next(self.parameters())
        x = check_input(x, name, self.dim, p.dtype, p.device)
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float, Tensor)):
            raise TypeError(
                f"sigma must be a positive float or a tensor, got {type(sigma).__name__}"
            )
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        try:
            sigma = torch.broadcast_to(sigma, x.shape[:-1])
        except RuntimeError:
            raise ValueError(
                f"sigma of shape {tuple(sigma.shape)} does not broadcast to the batch shape "
                f"{tuple(x.shape[:-1])} of {name}"
            ) from None
        if not bool(torch.isfinite(sigma).all() & (sigma > 0).all()):
            raise ValueError("sigma must be positive and finite")
        return x, sigma

    # ------------------------------------------------------------------ subclass API
    @abc.abstractmethod
    def _evaluate(
        self, x: Tensor, sigma: Tensor, jacobian: bool
    ) -> tuple[Tensor, StructuredJacobian | None]:
        r"""Returns :math:`s(x, \sigma)` and, if ``jacobian`` and known in closed form, the
        structure of :math:`\nabla_x s` (no input checks: the samplers' path)."""

    def _potential(self, x: Tensor, sigma: Tensor) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} is not conservative: it has no potential"
        )

    def _score(self, x: Tensor, sigma: Tensor) -> Tensor:
        return self._evaluate(x, sigma, False)[0]

    def _score_and_potential(self, x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        r"""The score and the potential together (one pass where the model shares them)."""
        return self._score(x, sigma), self._potential(x, sigma)

    def _score_and_trace(
        self,
        x: Tensor,
        sigma: Tensor,
        method: str = "exact",
        generator: torch.Generator | None = None,
        create_graph: bool = False,
    ) -> tuple[Tensor, Tensor]:
        r"""The score and the trace of its Jacobian (divergence), unchecked.

        ``method``: ``"exact"`` (closed form where the model has it, else the autograd
        trace), ``"autograd"`` (one reverse pass per coordinate) or ``"hutchinson"``
        (one Rademacher probe, an unbiased estimate). With ``create_graph`` the results
        stay differentiable in the parameters (training); the closed form always is.
        """
        if method == "exact" and self.closed_form:
            out, s = self._evaluate(x, sigma, True)
            return out, s.trace()
        if method not in ("exact", "autograd", "hutchinson"):
            raise ValueError(f"method must be 'exact', 'autograd' or 'hutchinson', got {method!r}")
        if method == "exact":
            method = "autograd"
        with torch.enable_grad():
            xr = x if create_graph and x.requires_grad else x.detach().requires_grad_(True)
            out = self._score(xr, sigma)
            if method == "hutchinson":
                v = torch.randint(0, 2, x.shape, generator=generator, dtype=x.dtype).to(x) * 2 - 1
                (g,) = torch.autograd.grad((out * v).sum(), xr, create_graph=create_graph)
                tr = (g * v).sum(-1)
            else:
                tr = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
                for i in range(self.dim):
                    keep = create_graph or i < self.dim - 1
                    (g,) = torch.autograd.grad(
                        out[..., i].sum(), xr, retain_graph=keep, create_graph=create_graph
                    )
                    tr = tr + g[..., i]
        if create_graph:
            return out, tr
        return out.detach(), tr.detach()

    def _jvp(self, x: Tensor, sigma: Tensor, v: Tensor) -> Tensor:
        if self.closed_form:
            return self._evaluate(x, sigma, True)[1].matvec(v)
        return torch.func.jvp(lambda y: self._score(y, sigma), (x,), (v,))[1]

    # ------------------------------------------------------------------ public API
    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        r"""Returns the score :math:`s(x, \sigma)`, shape ``(*, d)``."""
        return self._score(*self._check(x, sigma))

    def potential(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        r"""Returns :math:`\psi(x, \sigma)` with :math:`\nabla_x \psi = s`, shape ``(*)``: the
        log-density of the noised data up to a constant per :math:`\sigma`.

        Raises:
            NotImplementedError: If the model is not conservative.
        """
        return self._potential(*self._check(x, sigma))

    def jacobian_trace(self, x: Tensor, sigma: Tensor | float, method: str = "exact") -> Tensor:
        r"""Returns :math:`\operatorname{tr} \nabla_x s(x, \sigma)`, shape ``(*)``."""
        return self._score_and_trace(*self._check(x, sigma), method=method)[1]

    def at(self, sigma: float) -> GradientNetwork:
        r"""The field :math:`x \mapsto s(x, \sigma)` at a fixed noise level, as a
        :class:`~otgrad.nn.GradientNetwork` with the whole calculus (Jacobian, trace,
        potential, Lipschitz-free inverse is not defined: these fields are not monotone).

        Raises:
            ValueError: If the model is not conservative (its field is not a gradient).
        """
        if not self.conservative:
            raise ValueError(
                f"{type(self).__name__} is not conservative; only gradient-field models have at()"
            )
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not sigma > 0:
            raise ValueError(f"sigma must be a positive float, got {sigma!r}")
        return _FixedNoise(self, float(sigma))


class _FixedNoise(GradientNetwork):
    r"""A noise-conditional model at one noise level (a GradNet view; shares parameters)."""

    def __init__(self, model: NoiseConditionalScore, sigma: float):
        super().__init__(model.dim)
        self.model = model
        self.sigma = sigma

    def _noise(self, x: Tensor) -> Tensor:
        return torch.tensor(self.sigma, dtype=x.dtype, device=x.device).expand(x.shape[:-1])

    def _evaluate(self, x, jacobian):
        if not self.model.closed_form:
            return self.model._score(x, self._noise(x)), None
        return self.model._evaluate(x, self._noise(x), jacobian)

    def _potential(self, x):
        return self.model._potential(x, self._noise(x))


def _skip(x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    v = sigma**2 + 1
    return v, v.rsqrt()


class _ModularScore(NoiseConditionalScore):
    r"""The shared part of the GradNet score models: ``hidden`` units per module, ``modules``
    modules, a closed-form Jacobian, and the potential from the one-pass
    ``_score_and_potential(x, sigma, score=False)``."""

    conservative = True
    closed_form = True
    _config_attributes = {"modules": "num_modules"}  # nn.Module.modules is a method

    def __init__(self, dim: int, hidden: int, modules: int, embedding: int, width: int):
        super().__init__(dim, embedding, width)
        check_positive_int(hidden=hidden, modules=modules)
        self.hidden, self.num_modules = hidden, modules

    def _potential(self, x, sigma):
        return self._score_and_potential(x, sigma, score=False)[1]


@io.register("NoiseConditionalGradNet")
class NoiseConditionalGradNet(_ModularScore):
    r"""A noise-conditional modular GradNet: exactly conservative at every noise level.

    .. math::
        \psi(x, \sigma) = -\frac{e^{\rho(\sigma)}}{2v} \|x\|^2
            + \sum_{m=1}^M \frac{a_m(\sigma)}{\sigma c_{\text{in}} \beta_m(\sigma)}
              \operatorname{LSE}\big(\beta_m(\sigma)(W_m c_{\text{in}} x + b_m(\sigma))\big)
            + c(\sigma)^\top x,

    so :math:`s = \nabla_x \psi = -e^{\rho} x / v + \sigma^{-1} \sum_m a_m W_m^\top
    \operatorname{softmax}(\cdot) + c`: for fixed :math:`\sigma` a GradNet-M (Thm 12) plus a
    linear term, with a symmetric Jacobian. The functions :math:`a, \beta, b, \rho, c` of
    :math:`\sigma` are linear heads on a learned embedding of :math:`\log\sigma`; the
    weights :math:`W_m` do not depend on :math:`\sigma`. :math:`e^{\psi}` is integrable
    (the quadratic term dominates the log-sum-exps, which grow linearly), so the potential
    is a normalizable log-density. A mixture of isotropic Gaussians with a shared variance,
    blurred by any :math:`\sigma`, has exactly this form with one module (its centers in
    :math:`W`, :math:`\beta \propto 1/(s^2 + \sigma^2)`).

    Arguments:
        dim: The dimension :math:`d`.
        hidden: The width :math:`h` of each module (the log-sum-exp size). Wide modules
            resolve curved level sets (a log-sum-exp over :math:`h` directions is a
            smoothed polygon); at the same parameter count, 8 modules of 64 fitted the
            FFJORD rings and circles better than 32 of 16 (see ``docs/score.md``).
        modules: The number of modules :math:`M`.
        embedding: The size of the noise embedding.
        width: The hidden width of the noise embedding network.

    Example:
        >>> net = NoiseConditionalGradNet(2)
        >>> x = torch.randn(5, 2)
        >>> jac = net.at(0.3).jacobian(x)
        >>> torch.allclose(jac, jac.mT, atol=1e-6)
        True

    References:
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Thm 12.
    """

    def __init__(
        self, dim: int, hidden: int = 64, modules: int = 8, embedding: int = 32, width: int = 64
    ):
        super().__init__(dim, hidden, modules, embedding, width)
        self.weight = nn.Parameter(orthogonal_weight(modules, hidden, dim) * math.sqrt(hidden))
        # heads on the embedding: biases (M h), log beta (M), a (M), rho (1), c (d)
        self.head = nn.Linear(embedding, modules * hidden + 2 * modules + 1 + dim)
        with torch.no_grad():
            self.head.weight.zero_()
            bias = torch.zeros(self.head.out_features)
            bias[: modules * hidden].uniform_(-1, 1)
            bias[modules * hidden + modules : modules * hidden + 2 * modules].normal_(0, 0.1)
            self.head.bias.copy_(bias)

    def _heads(self, sigma: Tensor) -> tuple[Tensor, ...]:
        M, h, d = self.weight.shape
        out = self.head(self._embedding(sigma))
        b, logb, a, rho, c = out.split([M * h, M, M, 1, d], -1)
        return b.unflatten(-1, (M, h)), logb.exp(), a, rho[..., 0].exp(), c

    def _hidden(self, x: Tensor, sigma: Tensor):
        M, h, d = self.weight.shape
        v, cin = _skip(x, sigma)
        b, beta, a, q, c = self._heads(sigma)
        w = self.weight.reshape(M * h, d)
        z = beta[..., None] * (((cin[..., None] * x) @ w.mT).unflatten(-1, (M, h)) + b)
        return v, cin, z, beta, a, q, c, w

    def _evaluate(self, x, sigma, jacobian):
        v, cin, z, beta, a, q, c, w = self._hidden(x, sigma)
        p = torch.softmax(z, -1)
        coef = a / sigma[..., None]
        out = self._field(x, v, q, coef, p, c, w)
        if not jacobian:
            return out, None
        k = coef * beta * cin[..., None]  # (*, M)
        term = RidgeTerm(self.weight, k[..., None] * p, p[..., None], -k[..., None])
        return out, StructuredJacobian(self.dim, [term], identity=-q / v)

    def _score_and_potential(self, x, sigma, score=True):
        # one pass: the softmax is exp(z - LSE(z)), so the potential's log-sum-exps are reused
        v, cin, z, beta, a, q, c, w = self._hidden(x, sigma)
        lse = torch.logsumexp(z, -1)  # (*, M)
        scale = a / (sigma[..., None] * cin[..., None] * beta)
        psi = -q * (x**2).sum(-1) / (2 * v) + (scale * lse).sum(-1) + (c * x).sum(-1)
        if not score:
            return None, psi
        p = torch.exp(z - lse[..., None])
        return self._field(x, v, q, a / sigma[..., None], p, c, w), psi

    @staticmethod
    def _field(x, v, q, coef, p, c, w) -> Tensor:
        # s = -e^rho x / v + sum_m (a_m / sigma) W_m^T softmax_m + c
        return -(q / v)[..., None] * x + (coef[..., None] * p).flatten(-2) @ w + c


@io.register("NoiseConditionalDeepGradNet")
class NoiseConditionalDeepGradNet(_ModularScore):
    r"""A noise-conditional GradNet whose modules share a stack of ridge layers: exactly
    conservative at every noise level, and the default score model.

    .. math::
        \psi(x, \sigma) = -\frac{e^{\rho(\sigma)}}{2v} \|x\|^2
            + \frac{1}{\sigma c_{\text{in}}} \sum_{m=1}^{M} a_m(\sigma)
              \tanh\big(u_m^\top h_L + c_m(\sigma)\big) + e(\sigma)^\top x,
        \qquad h_1 = \operatorname{softplus}(W c_{\text{in}} x + b_1(\sigma)),
        \quad h_{k+1} = \operatorname{softplus}(V_k h_k + b_{k+1}(\sigma)),

    a scalar network with :math:`L + 1` hidden layers, and :math:`s = \nabla_x \psi` written
    out (backpropagation by hand, no automatic differentiation):
    :math:`s = -e^{\rho} x / v + W^\top \delta_1 / \sigma + e` with
    :math:`\delta_L = \operatorname{sigmoid}(z_L) \odot U^\top (a \odot \tanh')` and
    :math:`\delta_k = \operatorname{sigmoid}(z_k) \odot V_k^\top \delta_{k+1}`.

    For fixed :math:`\sigma` this is a GradNet-M (Thm 12) whose :math:`M` modules
    :math:`\nabla_x \tau_m(\sigma_m(W x + b_1))` share :math:`W` and :math:`b_1`, with the
    scalar functions :math:`\sigma_m(z) = u_m^\top h_L(z)` and
    :math:`\tau_m(t) = a_m \tanh(t + c_m)`. Its Jacobian, the Hessian of :math:`\psi`,

    .. math:: \frac{c_{\text{in}}}{\sigma} \Big(\sum_{k=1}^{L} J_k^\top
              \operatorname{diag}\big(\operatorname{sigmoid}'(z_k) \odot V_k^\top
              \delta_{k+1}\big) J_k + J_y^\top \operatorname{diag}(a \odot \tanh'') J_y
              \Big) - \frac{e^{\rho}}{v} I, \qquad J_1 = W,\;
              J_{k+1} = V_k \operatorname{diag}(\operatorname{sigmoid}(z_k)) J_k,

    (:math:`V_L = U`, :math:`J_y = J_{L+1}`) is symmetric, built as a
    :class:`~otgrad.nn.StructuredJacobian` (a ridge term and :math:`L` input-space outer
    terms) with a closed-form trace in :math:`O(L h^2 d)` per point. The functions
    :math:`b_k, c, a, \rho, e` of :math:`\sigma` are linear heads on a learned embedding of
    :math:`\log\sigma`; the weights do not depend on :math:`\sigma`. The hyperbolic tangents
    are bounded, so the quadratic term makes :math:`e^{\psi}` integrable. With
    ``layers=1`` this is :class:`NoiseConditionalTwoLayerGradNet`; the deeper stack of the
    default sharpens edges, corners and thin curves at the same parameter count
    (``docs/score.md``).

    Arguments:
        dim: The dimension :math:`d`.
        hidden: The width :math:`h` of each ridge layer.
        layers: The number :math:`L` of ridge layers.
        modules: The number of modules :math:`M` (the rows of :math:`U`).
        embedding: The size of the noise embedding.
        width: The hidden width of the noise embedding network.

    Example:
        >>> net = NoiseConditionalDeepGradNet(2)
        >>> x = torch.randn(5, 2)
        >>> jac = net.at(0.3).jacobian(x)
        >>> torch.allclose(jac, jac.mT, atol=1e-5)
        True

    References:
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Thm 12.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 56,
        layers: int = 3,
        modules: int = 56,
        embedding: int = 32,
        width: int = 64,
    ):
        super().__init__(dim, hidden, modules, embedding, width)
        check_positive_int(layers=layers)
        self.layers = layers
        # ridges of norm ~2 on inputs of unit variance per coordinate
        self.weight = nn.Parameter(torch.randn(hidden, dim) * 1.5 * math.sqrt(2 / dim))
        self.inner = nn.ParameterList(
            [
                nn.Parameter(torch.randn(hidden, hidden) / math.sqrt(hidden))
                for _ in range(layers - 1)
            ]
        )
        self.mix = nn.Parameter(torch.randn(modules, hidden) / math.sqrt(hidden))
        # heads on the embedding: b_1 ... b_L (h each), c (M), a (M), rho (1), e (d)
        lh = layers * hidden
        self.head = nn.Linear(embedding, lh + 2 * modules + 1 + dim)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            bias = torch.zeros(self.head.out_features)
            bias[:lh].normal_(0, 1)
            bias[lh + modules : lh + 2 * modules].normal_(0, 1 / math.sqrt(modules))
            self.head.bias.copy_(bias)

    def _heads(self, sigma: Tensor) -> tuple[Tensor, ...]:
        h, M, L = self.hidden, self.num_modules, self.layers
        *b, c, a, rho, e = self.head(self._embedding(sigma)).split(
            [h] * L + [M, M, 1, self.dim], -1
        )
        return b, c, a, rho[..., 0].exp(), e

    def _layers(self, x: Tensor, sigma: Tensor) -> tuple[Tensor, ...]:
        v, cin = _skip(x, sigma)
        b, c, a, q, e = self._heads(sigma)
        zs = [_affine(cin[..., None] * x, self.weight, b[0])]
        for V, bk in zip(self.inner, b[1:], strict=True):
            zs.append(_affine(nn.functional.softplus(zs[-1]), V, bk))
        t = torch.tanh(_affine(nn.functional.softplus(zs[-1]), self.mix, c))
        return v, cin, zs, t, a, q, e

    def _backward(self, g: Tensor, zs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        r"""The gates :math:`\operatorname{sigmoid}(z_k)` and the signals :math:`V_k^\top
        \delta_{k+1}` reaching each ridge layer, from :math:`g = a \odot \tanh'`."""
        gates = [torch.sigmoid(z) for z in zs]
        back = [g @ self.mix]
        for V, gate in zip(reversed(self.inner), reversed(gates[1:]), strict=True):
            back.insert(0, (gate * back[0]) @ V)
        return gates, back

    def _field(self, x: Tensor, sigma: Tensor, layers: tuple[Tensor, ...]):
        v, _, zs, t, a, q, e = layers
        g = torch.addcmul(a, a, t * t, value=-1)
        gates, back = self._backward(g, zs)
        out = -(q / v)[..., None] * x + ((gates[0] * back[0]) @ self.weight) / sigma[..., None] + e
        return out, g, gates, back

    def _score(self, x, sigma):
        if torch.is_grad_enabled() or x.dim() != 2:
            return self._field(x, sigma, self._layers(x, sigma))[0]
        # sampling (no graph): the same operations, elementwise ones in place
        v, cin = _skip(x, sigma)
        b, c, a, q, e = self._heads(sigma)
        per = sigma[: a.shape[0], None]  # one row when sigma is one level for the batch
        z = _affine(cin[:, None] * x, self.weight, b[0])
        gates = []
        for V, bk in zip(self.inner, b[1:], strict=True):
            gates.append(torch.sigmoid(z))
            z = _affine(nn.functional.softplus(z), V, bk)
        gates.append(torch.sigmoid(z))
        # tanh'(y) = 4 p (1 - p) with p = sigmoid(2 y): sigmoid is several times cheaper
        p = torch.addmm(2 * c, nn.functional.softplus(z), self.mix.mT, alpha=2).sigmoid_()
        g = torch.addcmul(p, p, p, value=-1).mul_(4 * a / per)  # a * tanh' / sigma
        back = torch.mm(g, self.mix).mul_(gates[-1])
        for V, gate in zip(reversed(self.inner), reversed(gates[:-1]), strict=True):
            back = torch.mm(back, V).mul_(gate)
        out = _affine(back, self.weight.mT, e)
        return out.addcmul_(x, (q / v)[:, None], value=-1)

    def _evaluate(self, x, sigma, jacobian):
        layers = self._layers(x, sigma)
        out, g, gates, back = self._field(x, sigma, layers)
        if not jacobian:
            return out, None
        v, cin, _, t, _, q, _ = layers
        k = (cin / sigma)[..., None]
        ridge = RidgeTerm(
            self.weight[None], (k * gates[0] * (1 - gates[0]) * back[0])[..., None, :]
        )
        # J_{k+1} = V_k diag(sigmoid(z_k)) J_k, (*, rows, d), one GEMM over the batch each
        rows = gates[0][..., :, None] * self.weight
        outer = []
        for V, gate, signal in zip(
            [*self.inner, self.mix], gates[1:] + [None], back[1:] + [None], strict=True
        ):
            rows = torch.einsum("mh,...hd->...md", V, rows)
            if gate is None:  # the modules: a * tanh''
                outer.append((rows.mT, -2 * k * g * t))
            else:
                outer.append((rows.mT, k * gate * (1 - gate) * signal))
                rows = gate[..., :, None] * rows
        return out, StructuredJacobian(self.dim, [ridge], identity=-q / v, outer=outer)

    def _score_and_potential(self, x, sigma, score=True):
        layers = self._layers(x, sigma)
        v, cin, _, t, a, q, e = layers
        psi = -q * (x**2).sum(-1) / (2 * v) + (a * t).sum(-1) / (sigma * cin) + (e * x).sum(-1)
        return (self._field(x, sigma, layers)[0] if score else None), psi


@io.register("NoiseConditionalTwoLayerGradNet")
class NoiseConditionalTwoLayerGradNet(NoiseConditionalDeepGradNet):
    r"""A noise-conditional GradNet whose modules share one ridge layer:
    :class:`NoiseConditionalDeepGradNet` with ``layers=1``,

    .. math::
        \psi(x, \sigma) = -\frac{e^{\rho(\sigma)}}{2v} \|x\|^2
            + \frac{1}{\sigma c_{\text{in}}} \sum_{m=1}^{M} a_m(\sigma)
              \tanh\big(u_m^\top \operatorname{softplus}(W c_{\text{in}} x + b(\sigma))
              + c_m(\sigma)\big) + e(\sigma)^\top x,

    a scalar network with two hidden layers. For fixed :math:`\sigma` a GradNet-M (Thm 12)
    with the modules :math:`\nabla_x \tau_m(\sigma_m(W x + b))`,
    :math:`\sigma_m(z) = \sum_i U_{mi} \operatorname{softplus}(z_i)`,
    :math:`\tau_m(t) = a_m \tanh(t + c_m)`; its closed-form trace costs :math:`O(M h d)`.
    Sharing the ridge layer lets every module bend every level set: at about the same
    parameter count it resolves the FFJORD rings that the log-sum-exp modules of
    :class:`NoiseConditionalGradNet` fill in (``docs/score.md``).

    Arguments:
        dim: The dimension :math:`d`.
        hidden: The width :math:`h` of the ridge layer :math:`W`.
        modules: The number of modules :math:`M` (the rows of :math:`U`).
        embedding: The size of the noise embedding.
        width: The hidden width of the noise embedding network.

    Example:
        >>> net = NoiseConditionalTwoLayerGradNet(2)
        >>> torch.allclose(net.jacobian_trace(torch.zeros(1, 2), 0.5),
        ...                net.at(0.5).jacobian(torch.zeros(1, 2)).diagonal(0, -2, -1).sum(-1))
        True

    References:
        | Gradient Networks (Chaudhari, Pranav, Moura, 2025), Thm 12.
    """

    def __init__(
        self, dim: int, hidden: int = 96, modules: int = 96, embedding: int = 32, width: int = 64
    ):
        super().__init__(dim, hidden, 1, modules, embedding, width)


def _affine(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    r""":math:`x W^\top + b`, one fused GEMM (``addmm``) for a batch of rows."""
    if x.dim() == 2 and bias.dim() == 2:
        return torch.addmm(bias, x, weight.mT)
    return x @ weight.mT + bias


def _mlp(n_in: int, n_out: int, hidden: int, layers: int) -> nn.Sequential:
    # He initialization: with PyTorch's default (variance 1/(3 fan_in)) the input signal
    # fades through the layers and denoising training collapses to a function of sigma alone
    mods: list[nn.Module] = []
    for i in range(layers):
        lin = nn.Linear(n_in if i == 0 else hidden, hidden)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        mods += [lin, nn.SiLU()]
    mods.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*mods)


class _MLPScore(NoiseConditionalScore):
    r"""The shared part of the MLP baselines: an MLP on :math:`(c_{\text{in}} x, e(\sigma))`."""

    outputs: ClassVar[str] = "dim"

    def __init__(
        self, dim: int, hidden: int = 128, layers: int = 3, embedding: int = 32, width: int = 64
    ):
        super().__init__(dim, embedding, width)
        check_positive_int(hidden=hidden, layers=layers)
        self.hidden, self.layers = hidden, layers
        self.net = _mlp(dim + embedding, dim if self.outputs == "dim" else 1, hidden, layers)

    def _mlp_out(self, x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        v, cin = _skip(x, sigma)
        e = self._embedding(sigma).expand(*x.shape[:-1], -1)
        return v, cin, self.net(torch.cat([cin[..., None] * x, e], -1))


@io.register("NoiseConditionalMLP")
class NoiseConditionalMLP(_MLPScore):
    r"""The unconstrained baseline: :math:`s = -x/v + \sigma^{-1}\,\mathrm{MLP}(c_{\text{in}} x,
    e(\sigma))`, not a gradient field (its Jacobian is not symmetric) and without an energy.

    Arguments:
        dim: The dimension :math:`d`.
        hidden: The width of each hidden layer.
        layers: The number of hidden layers.
        embedding: The size of the noise embedding.
        width: The hidden width of the noise embedding network.
    """

    def _evaluate(self, x, sigma, jacobian):
        v, _, out = self._mlp_out(x, sigma)
        return -x / v[..., None] + out / sigma[..., None], None


@io.register("NoiseConditionalGradMLP")
class NoiseConditionalGradMLP(_MLPScore):
    r"""The gradient-of-an-MLP baseline: :math:`\psi = -\|x\|^2/(2v) + (\sigma c_{\text{in}})^{-1}
    \mathrm{MLP}(c_{\text{in}} x, e(\sigma))` and :math:`s = \nabla_x\psi` by automatic
    differentiation (conservative, but every score costs a backward pass and training a
    double backward; the Jacobian trace needs :math:`d` more).

    Arguments: as :class:`NoiseConditionalMLP`.
    """

    conservative = True
    outputs = "scalar"

    def _potential(self, x, sigma):
        v, cin, out = self._mlp_out(x, sigma)
        return -(x**2).sum(-1) / (2 * v) + out[..., 0] / (sigma * cin)

    def _evaluate(self, x, sigma, jacobian):
        return torch.func.grad(lambda y: self._potential(y, sigma).sum())(x), None


_KINDS: dict[str, type[NoiseConditionalScore]] = {
    "gradnet": NoiseConditionalDeepGradNet,
    "gradnet-2": NoiseConditionalTwoLayerGradNet,
    "gradnet-lse": NoiseConditionalGradNet,
    "mlp": NoiseConditionalMLP,
    "gradmlp": NoiseConditionalGradMLP,
}


def build_score_model(kind: str, dim: int, **kwargs: Any) -> NoiseConditionalScore:
    r"""A score model by name: ``"gradnet"`` (:class:`NoiseConditionalDeepGradNet`),
    ``"gradnet-2"`` (:class:`NoiseConditionalTwoLayerGradNet`), ``"gradnet-lse"`` (:class:`NoiseConditionalGradNet`), ``"mlp"`` or ``"gradmlp"``."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    return _KINDS[kind](dim, **kwargs)


def parameter_count(model: nn.Module) -> int:
    r"""The number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
