r"""Convolutional (image) gradient networks: :math:`W` is a convolution, :math:`W^\top` its adjoint.

For images :math:`x \in \mathbb{R}^{C \times H \times W}` the ridge networks of the paper keep
their form with a convolution in place of the weight matrix:

.. math:: f(x) = W^\top g(W x), \qquad \psi(x) = \sum_{c, i, j} G_c\big((W x)_{c, i, j}\big),
          \qquad G_c' = g_c,

where :math:`W` is a (multi-)convolution with zero padding, :math:`W^\top` its exact adjoint
(``conv_transpose2d`` with the same kernel and padding; on the CPU :math:`W` and
:math:`W^\top` are the fastest of :data:`CORRELATIONS` and :data:`ADJOINTS` for the shape,
timed once) and :math:`g_c` a scalar map per
output channel, shared by all pixels: one activation (single layer, eq. (7)) or the
cascade of eq. (39). The Jacobian :math:`J(x) = W^\top \operatorname{diag}(g'(Wx)) W` is
symmetric for any :math:`g` (Prop 2.1, Thm 11: a convolution is a linear map) and PSD when
every :math:`g_c` is nondecreasing (Prop 3.3, Cor 11.1). CRR-NN (Goujon et al., 2023) is the
single-layer monotone network with linear-spline activations.

The multi-convolution :math:`W = W_K \circ \dots \circ W_1` is applied as one convolution
with the composed kernel (cheaper than the chain), whose first factor has zero-mean
filters (so :math:`\psi` ignores constant images, like a regularizer should). Its
operator norm is computed from the kernel's transfer function on a fine frequency grid
with a rigorous correction, so :meth:`ConvGradNet.lipschitz_bound` is an upper bound for
any image size.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, 2025), eq. (7), Prop 2.1, 3.3, Thm 11, Cor 11.1.
    | A Neural-Network-Based Convex Regularizer for Inverse Problems (Goujon, Neumayer,
      Bohra, Ducotterd, Unser, IEEE TCI 2023).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import calculus
from .._validation import check_image, check_positive_int
from ..io import config_from_signature, register
from .activations import LinearSpline, elementwise_activation
from .base import positive, unconstrain
from .cascade import cascade_map, cascade_slope_bound

__all__ = [
    "MultiConv2d",
    "ImageGradientNetwork",
    "ConvGradNet",
    "check_image",
    "correlate",
    "correlate_adjoint",
    "CORRELATIONS",
    "ADJOINTS",
]


class MultiConv2d(nn.Module):
    r"""A composition of bias-free convolutions, applied as one convolution, with its adjoint.

    Arguments:
        channels: The channels :math:`c_0, c_1, \dots, c_K` (input first).
        kernel_size: The (odd) kernel size of each factor; the composed kernel has size
            :math:`1 + K(\text{kernel\_size} - 1)`.
        zero_mean: Whether the filters of the first factor have zero mean.

    Example:
        >>> W = MultiConv2d((1, 4, 8), kernel_size=3)
        >>> x, y = torch.randn(2, 1, 9, 9), torch.randn(2, 8, 9, 9)
        >>> bool(torch.isclose((W(x) * y).sum(), (x * W.transpose(y)).sum(), rtol=1e-4))
        True
    """

    def __init__(self, channels: Sequence[int], kernel_size: int = 7, zero_mean: bool = True):
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two entries, got {channels}")
        check_positive_int(
            kernel_size=kernel_size, **{f"channels[{i}]": c for i, c in enumerate(channels)}
        )
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.channels, self.kernel_size, self.zero_mean = channels, kernel_size, bool(zero_mean)
        self.weights = nn.ParameterList()
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            w = torch.empty(c_out, c_in, kernel_size, kernel_size)
            nn.init.kaiming_uniform_(w, a=math.sqrt(5))
            self.weights.append(nn.Parameter(w))
        self.size = 1 + (len(channels) - 1) * (kernel_size - 1)

    def kernel(self) -> Tensor:
        r"""The composed kernel, shape ``(c_K, c_0, size, size)``."""
        k = self.weights[0]
        if self.zero_mean:
            k = k - k.mean((-1, -2), keepdim=True)
        for w in self.weights[1:]:
            # composing cross-correlations convolves their kernels
            k = F.conv2d(k.transpose(0, 1), w.flip(-1, -2), padding=w.shape[-1] - 1)
            k = k.transpose(0, 1)
        return k

    def forward(self, x: Tensor, kernel: Tensor | None = None) -> Tensor:
        r"""Returns :math:`Wx`, shape ``(B, c_K, H, W)`` for ``x`` of shape ``(B, c_0, H, W)``."""
        return correlate(x, self.kernel() if kernel is None else kernel)

    def transpose(self, y: Tensor, kernel: Tensor | None = None) -> Tensor:
        r"""Returns the adjoint :math:`W^\top y`, shape ``(B, c_0, H, W)``."""
        return correlate_adjoint(y, self.kernel() if kernel is None else kernel)


def _fast_length(n: int) -> int:
    # the smallest 2^a 3^b 5^c >= n (FFT-friendly)
    while True:
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def _transpose_fft(y: Tensor, k: Tensor) -> Tensor:
    # conv_transpose2d(y, k) as a product of transforms, cropped: a circular convolution of
    # length >= H + s // 2 equals the zero-padded one on the kept window (no wrap-around
    # reaches it)
    p = k.shape[-1] // 2
    h, w = y.shape[-2:]
    size = (_fast_length(h + p), _fast_length(w + p))
    Y, K = torch.fft.rfft2(y, s=size), torch.fft.rfft2(k, s=size)
    if k.shape[0] == 1:
        Z = Y * K[0]
    elif k.shape[1] == 1:
        Z = (Y * K[:, 0]).sum(1, keepdim=True)
    else:
        Z = torch.einsum("bo...,oi...->bi...", Y, K)
    return torch.fft.irfft2(Z, s=size)[..., p : p + h, p : p + w]


def _adjoint_depthwise(y: Tensor, k: Tensor) -> Tensor:
    # for one image channel: a depthwise correlation with the flipped kernel, summed
    return F.conv2d(y, k.flip(-1, -2), padding=k.shape[-1] // 2, groups=k.shape[0]).sum(
        1, keepdim=True
    )


def _adjoint_transpose(y: Tensor, k: Tensor) -> Tensor:
    return F.conv_transpose2d(y, k, padding=k.shape[-1] // 2)


def _correlate_direct(x: Tensor, k: Tensor) -> Tensor:
    return F.conv2d(x, k, padding=k.shape[-1] // 2)


def _correlate_fft(x: Tensor, k: Tensor) -> Tensor:
    # the correlation with k is the transposed convolution with the flipped, transposed kernel
    return _transpose_fft(x, k.flip(-1, -2).transpose(0, 1))


#: The ways to compute :math:`Wx` on the CPU (equal up to rounding).
CORRELATIONS = {"direct": _correlate_direct, "fft": _correlate_fft}
#: The ways to compute :math:`W^\top y` on the CPU (equal up to rounding).
ADJOINTS = {
    "transpose": _adjoint_transpose,
    "fft": _transpose_fft,
    "depthwise": _adjoint_depthwise,
}
_CHOSEN: dict[tuple, str] = {}


def _fastest(x: Tensor, k: Tensor, adjoint: bool) -> Tensor:
    # applies the fastest method of ADJOINTS or CORRELATIONS for this problem on this
    # machine, timed once per shape, dtype and thread count: their order changes with the
    # image size and the processor (the library's convolutions depend on its vector units,
    # the FFT much less)
    table = ADJOINTS if adjoint else CORRELATIONS
    key = (adjoint, tuple(x.shape), tuple(k.shape), x.dtype, torch.get_num_threads())
    if key not in _CHOSEN:
        if len(_CHOSEN) > 256:
            _CHOSEN.clear()
        _CHOSEN[key] = _time_methods(table, x.detach(), k.detach())
    return table[_CHOSEN[key]](x, k)


def _time_methods(table: dict[str, Any], x: Tensor, k: Tensor) -> str:
    # one run of each on the first images, 2^18 pixels or more (the whole batch of small
    # patches: there the costs do not grow alike with the batch, e.g. at 40x40 the FFTs
    # win for 8 patches and lose for 128; large images cost in proportion to their number)
    names = [n for n in table if n != "depthwise" or k.shape[1] == 1]
    x = x[: -(-(2**18) // x[0, 0].numel())]
    if x.numel() * k[0].numel() < 2**16:  # too small to matter: the library's
        return names[0]
    seconds = {}
    with torch.no_grad():
        for name in names:
            start = time.perf_counter()
            table[name](x, k)
            seconds[name] = time.perf_counter() - start
    return min(seconds, key=seconds.get)


def _kernel_gradient(x: Tensor, g: Tensor, size: int) -> Tensor:
    # d<g, conv(x, k)>/dk[o, i, a, b] = sum_n,h,w g[n, o, h, w] x_pad[n, i, h + a, w + b]:
    # one correlation of the padded inputs with the output gradients, batch as channels
    p = size // 2
    padded = F.pad(x, (p, p, p, p)).transpose(0, 1)
    return F.conv2d(padded, g.transpose(0, 1)).transpose(0, 1)


class _Correlation(torch.autograd.Function):
    # u = W x (adjoint=False) or z = W^T y (adjoint=True), with the backward written as
    # forward correlations: since <g, W x> = <W^T g, x>, the input gradient is the other
    # direction applied to g, and the kernel gradient is one batch-as-channels correlation
    # (the library backward of a 13x13 convolution is 4x slower on CPU). Differentiable
    # again: double backward goes through the same functions.
    @staticmethod
    def forward(x: Tensor, k: Tensor, adjoint: bool) -> Tensor:
        return _fastest(x, k, adjoint)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.adjoint = inputs[2]

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, k = ctx.saved_tensors
        gx = gk = None
        if ctx.needs_input_grad[0]:
            gx = correlate(g, k) if ctx.adjoint else correlate_adjoint(g, k)
        if ctx.needs_input_grad[1]:  # the input of W is g for W^T, and x for W
            gk = _kernel_gradient(*((g, x) if ctx.adjoint else (x, g)), k.shape[-1])
        return gx, gk, None


def correlate(x: Tensor, k: Tensor) -> Tensor:
    r"""The zero-padded ("same") cross-correlation :math:`Wx` of ``x`` ``(B, c_in, H, W)``
    with the odd-sized kernel ``k`` ``(c_out, c_in, s, s)``, shape ``(B, c_out, H, W)``.

    On the CPU it is the fastest of :data:`CORRELATIONS` (the library's convolution or
    products of Fourier transforms, which win on large images) for this shape, chosen by
    timing each once, and its gradients are computed as correlations too
    (:func:`correlate_adjoint` for ``x``), several times faster there than the library
    backward for large kernels; on other devices the library's convolutions and their
    backward are used (the batch-as-channels kernel gradient is a correlation with an
    image-sized kernel, which GPU libraries run slowly).
    """
    return _apply(x, k, adjoint=False)


def correlate_adjoint(y: Tensor, k: Tensor) -> Tensor:
    r"""The adjoint :math:`W^\top y` of :func:`correlate`, shape ``(B, c_in, H, W)``.

    On the CPU, the fastest of :data:`ADJOINTS` (a transposed convolution, products of
    Fourier transforms, or for one image channel a depthwise correlation summed over
    channels) for this shape, dtype and thread count, chosen by timing each once: their
    order changes with the processor (the depthwise correlation is 4x faster than the
    transposed convolution on one, 6x slower on another). All agree up to rounding.
    """
    return _apply(y, k, adjoint=True)


def _apply(x: Tensor, k: Tensor, adjoint: bool) -> Tensor:
    if x.device.type != "cpu":
        library = F.conv_transpose2d if adjoint else F.conv2d
        return library(x, k, padding=k.shape[-1] // 2)
    if torch.is_grad_enabled() and (x.requires_grad or k.requires_grad):
        return _Correlation.apply(x, k, adjoint)  # the backward by correlations
    return _fastest(x, k, adjoint)


def operator_norm(kernel: Tensor, grid: int = 512, rigorous: bool = True) -> Tensor:
    r"""An upper bound on the operator norm of the zero-padded convolution by ``kernel``.

    The norm of any zero-padded (finite-image) convolution is at most
    :math:`\sup_\omega \|\hat k(\omega)\|_2`, the largest singular value of the transfer
    matrix over all frequencies. Its square is a trigonometric polynomial of degree
    :math:`2r` in each variable (:math:`r` the kernel radius); sampled on a
    ``grid``-point grid its maximum is off by at most the factor
    :math:`1 / (1 - 8\pi^2 r^2 / N^2)` (Bernstein's inequality), which is applied. The
    value is differentiable in the kernel. With ``rigorous=False`` the grid maximum
    itself is returned (an estimate from below, for scaling).
    """
    r = kernel.shape[-1] // 2
    excess = 8 * math.pi**2 * r**2 / grid**2 if rigorous else 0.0
    if excess >= 0.5:
        raise ValueError(f"grid={grid} is too coarse for a kernel of radius {r}")
    spec = torch.fft.fft2(kernel, s=(grid, grid))  # (c_out, c_in, N, N)
    if kernel.shape[1] == 1:
        sq = (spec.abs() ** 2).sum((0, 1))
        top = sq.max()
    else:
        mats = spec.permute(2, 3, 0, 1).reshape(grid * grid, *kernel.shape[:2])
        top = torch.linalg.matrix_norm(mats, ord=2).max() ** 2
    return (top / (1 - excess)).sqrt()


class ImageGradientNetwork(nn.Module):
    r"""What the image gradient networks share: the multi-convolution ``conv`` (its kernel,
    normalized if ``normalize`` and cached without gradient tracking, and its operator norm)
    and the check of their ``(B, in_channels, H, W)`` inputs."""

    conv: MultiConv2d
    normalize: bool
    in_channels: int

    def _weights_version(self) -> tuple:
        return tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in self.conv.weights)

    def kernel(self) -> Tensor:
        r"""The kernel of :math:`W` (divided by an estimate of its norm if ``normalize``).

        Without gradient tracking (solvers) it is cached until the weights change.
        """
        cached = self.__dict__.get("_kernel_cache")
        if (
            not torch.is_grad_enabled()
            and cached is not None
            and cached[0] == self._weights_version()
        ):
            return cached[1]
        k = self.conv.kernel()
        if self.normalize:
            k = k / operator_norm(k, grid=64, rigorous=False).clamp_min(1e-12)
        if not torch.is_grad_enabled():
            self.__dict__["_kernel_cache"] = (self._weights_version(), k)
        return k

    def _check(self, x: Any, name: str = "x") -> Tensor:
        p = self.conv.weights[0]
        return check_image(x, name, self.in_channels, p.dtype, p.device)

    def operator_norm(self, grid: int = 512) -> float:
        r"""An upper bound on :math:`\|W\|_2` for images of any size (see :func:`operator_norm`)."""
        key = (self._weights_version(), grid)
        cached = self.__dict__.get("_norm_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            value = float(operator_norm(self.kernel().double(), grid))
        self.__dict__["_norm_cache"] = (key, value)
        return value


def _spline_cascade(
    u: Tensor, acts: nn.ModuleList, alpha: Tensor, beta: Tensor, bias: Tensor
) -> Tensor:
    # the cascade of eq. (39) (cascade_map) in the images' layout: channels on axis 1, so
    # no moved axis and no copies (the solvers' and training's path)
    view = (-1,) + (1,) * (u.dim() - 2)
    last = len(acts) - 1
    s = None
    for l, act in enumerate(acts):  # the output scale alpha_L goes into the last knot values
        gain = alpha[-1] if l == last else None
        if l == 0:
            s = act.channels_first(u, beta[0], beta[0] * bias[0], gain)
        else:
            z = torch.addcmul((beta[l] * bias[l]).reshape(view), u, beta[l].reshape(view))
            s = act.channels_first(torch.addcmul(z, alpha[l - 1].reshape(view), s), gain=gain)
    return s


@register("ConvGradNet")
class ConvGradNet(ImageGradientNetwork):
    r"""A convolutional GradNet / mGradNet :math:`f(x) = W^\top g(Wx)` on image batches.

    Single layer (``layers=1``): :math:`g_c(u) = \alpha_c \sigma_c(u + b_c)` (eq. (7),
    Prop 2.1 / 3.3); cascaded (``layers > 1``): :math:`g_c` is the cascade of eq. (39)
    (Thm 11 / Cor 11.1). With ``activation="spline"`` and one layer, :math:`g_c` is a
    learnable nondecreasing linear spline per channel: CRR-NN.

    Arguments:
        channels: The channels of the multi-convolution :math:`W` (image channels first).
        kernel_size: The kernel size of each convolution factor.
        layers: The number :math:`L` of cascade layers (1: single layer).
        monotone: Whether :math:`g_c` is nondecreasing (an mGradNet, :math:`J \succeq 0`).
        activation: ``"spline"`` or an elementwise activation of
            :func:`~otgrad.nn.activations.elementwise_activation` (``"tanh"``, ``"softplus"``, ...).
        knots: The spline knots per channel (``"spline"`` only).
        span: The spline knots lie on :math:`[-\text{span}, \text{span}]` (``"spline"``).
        normalize: Whether :math:`W` is divided by its operator norm (so :math:`\|W\| \le 1`):
            the scale then lives in :math:`g` alone, which steadies training.

    Example:
        >>> net = ConvGradNet((1, 4, 8), kernel_size=3, knots=11)
        >>> x = torch.rand(2, 1, 6, 6, dtype=torch.float64)
        >>> net = net.double()
        >>> J = net.jacobian(x)  # (2, 36, 36)
        >>> bool(torch.allclose(J, J.mT)), bool(torch.linalg.eigvalsh(J).min() > -1e-12)
        (True, True)
    """

    def __init__(
        self,
        channels: Sequence[int] = (1, 8, 32),
        kernel_size: int = 7,
        layers: int = 1,
        monotone: bool = True,
        activation: str = "spline",
        knots: int = 21,
        span: float = 0.1,
        normalize: bool = True,
    ):
        super().__init__()
        check_positive_int(layers=layers)
        self.conv = MultiConv2d(channels, kernel_size)
        self.in_channels, self.hidden = self.conv.channels[0], self.conv.channels[-1]
        self.layers, self.monotone, self.normalize = layers, bool(monotone), bool(normalize)
        self.channels, self.kernel_size = list(self.conv.channels), kernel_size
        self.activation, self.knots, self.span = activation, knots, span
        h = self.hidden
        if activation == "spline":
            self.acts = nn.ModuleList(
                LinearSpline(h, knots=knots, monotone=self.monotone, span=span)
                for _ in range(layers)
            )
        else:
            self.acts = nn.ModuleList(
                elementwise_activation(activation, h, self.monotone) for _ in range(layers)
            )
        self.bias = nn.Parameter(torch.zeros(layers, h))
        ones = unconstrain(torch.ones(layers, h), self.monotone)
        if activation == "spline" and layers == 1:  # the spline carries its own scale
            self.register_buffer("raw_alpha", ones.clone())
            self.register_buffer("raw_beta", ones.clone())
        else:
            self.raw_alpha = nn.Parameter(ones.clone())
            self.raw_beta = nn.Parameter(ones.clone())

    def config(self) -> dict[str, Any]:
        r"""The constructor arguments (used by :mod:`otgrad.io`)."""
        return config_from_signature(self)

    # ------------------------------------------------------------------ structure
    def _map(self, u: Tensor, derivative: bool) -> tuple[Tensor, Tensor | None]:
        alpha = positive(self.raw_alpha, self.monotone)
        beta = positive(self.raw_beta, self.monotone)
        if self.activation == "spline" and not derivative:
            return _spline_cascade(u, self.acts, alpha, beta, self.bias), None
        g, gp = cascade_map(u.movedim(1, -1), self.acts, alpha, beta, self.bias, derivative)
        return g.movedim(-1, 1), (gp.movedim(-1, 1) if derivative else None)

    def _potential_density(self, u: Tensor) -> Tensor:
        # G(u) per channel and pixel, G' = g
        if self.layers == 1:
            alpha = positive(self.raw_alpha, self.monotone)[0]
            beta = positive(self.raw_beta, self.monotone)[0]
            z = beta * (u.movedim(1, -1) + self.bias[0])
            return (alpha / beta * self.acts[0].antiderivative(z)).movedim(-1, 1)
        return calculus.integrate_0_to(
            lambda t: self._map(t.flatten(0, 1), False)[0].unflatten(0, t.shape[:2]),
            u,
            64,
        )

    # ------------------------------------------------------------------ public API
    def forward(self, x: Tensor) -> Tensor:
        r"""Returns :math:`f(x) = W^\top g(Wx)`, shape of ``x`` ``(B, C, H, W)``."""
        x = self._check(x)
        return self.gradient_and_potential(x, potential=False)[0]

    def gradient_and_potential(
        self, x: Tensor, potential: bool = True, kernel: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        r"""Returns :math:`f(x)` and (if asked) :math:`\psi(x)`, shape ``(B,)``, from one :math:`Wx`.

        No input checks: the path used inside solvers. ``kernel`` (from :meth:`kernel`) saves
        recomposing it when the parameters have not changed.
        """
        k = self.kernel() if kernel is None else kernel
        u = self.conv(x, k)
        g, _ = self._map(u, False)
        out = self.conv.transpose(g, k)
        value = self._potential_density(u).sum((1, 2, 3)) if potential else None
        return out, value

    def potential(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\psi(x) = \sum G(Wx)`, shape ``(B,)``."""
        x = self._check(x)
        return self._potential_density(self.conv(x, self.kernel())).sum((1, 2, 3))

    def jvp(self, x: Tensor, v: Tensor) -> Tensor:
        r"""Returns :math:`J(x) v = W^\top (g'(Wx) \odot W v)` in closed form, shape of ``x``."""
        x, v = self._check(x), self._check(v, "v")
        if v.shape != x.shape:
            raise ValueError(f"v must have the shape of x {tuple(x.shape)}, got {tuple(v.shape)}")
        return self._jvp(x, v)

    def _jvp(self, x: Tensor, v: Tensor) -> Tensor:
        k = self.kernel()
        _, gp = self._map(self.conv(x, k), True)
        return self.conv.transpose(gp * self.conv(v, k), k)

    def jacobian(self, x: Tensor) -> Tensor:
        r"""Returns the dense Jacobian, shape ``(B, n, n)`` with :math:`n = CHW` (small images).

        Built column by column from the closed-form :meth:`jvp` (no automatic differentiation).
        """
        x = self._check(x)
        n = x[0].numel()
        if n > 4096:
            raise ValueError(f"jacobian is for small images (at most 4096 values), got {n}")
        k = self.kernel()
        _, gp = self._map(self.conv(x, k), True)  # (B, h, H, W)
        eye = torch.eye(n, dtype=x.dtype, device=x.device).reshape(n, *x.shape[1:])
        wv = self.conv(eye, k)  # (n, h, H, W)
        cols = self.conv.transpose((gp[:, None] * wv[None]).flatten(0, 1), k)
        return cols.reshape(x.shape[0], n, n).mT

    def slope_bound(self) -> float:
        r"""An upper bound on :math:`|g_c'|` over all channels."""
        alpha = positive(self.raw_alpha, self.monotone)
        beta = positive(self.raw_beta, self.monotone)
        with torch.no_grad():
            return float(cascade_slope_bound(self.acts, alpha, beta).max())

    def lipschitz_bound(self) -> float:
        r"""An upper bound on :math:`\sup_x \|J(x)\|_2 \le \max_c \sup |g_c'| \cdot \|W\|^2`."""
        return self.slope_bound() * self.operator_norm() ** 2

    def extra_repr(self) -> str:
        return (
            f"channels={self.conv.channels}, kernel_size={self.conv.kernel_size}, "
            f"layers={self.layers}, monotone={self.monotone}"
        )
