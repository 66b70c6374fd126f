r"""Forward operators of linear inverse problems, with exact adjoints.

Each operator maps an image batch ``(B, 1, H, W)`` to measurements with :meth:`A` and
back with :meth:`A_adjoint` (the protocol of deepinv's physics objects, which therefore
plug into :func:`~otgrad.inverse.reconstruct` too). :meth:`LinearOperator.norm_squared`
returns :math:`\|A\|^2`, the Lipschitz constant of the data term's gradient.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_positive_int, check_positive_number
from ..calculus import power_iteration

__all__ = [
    "LinearOperator",
    "Denoising",
    "Blur",
    "Inpainting",
    "Tomography",
    "gaussian_kernel",
    "operator_norm_squared",
]


def operator_norm_squared(
    operator: Any,
    shape: tuple[int, ...],
    iterations: int = 200,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> float:
    r""":math:`\|A\|_2^2` of any operator with ``A`` and ``A_adjoint`` (an otgrad operator, a
    deepinv physics), by power iteration on :math:`A^\top A` for inputs of ``shape``, slightly
    enlarged (power iteration approaches from below)."""
    gen = torch.Generator().manual_seed(0)
    lam = power_iteration(
        lambda v: operator.A_adjoint(operator.A(v)), tuple(shape), iterations=iterations,
        dtype=dtype, device=device, generator=gen,
    )  # fmt: skip
    return lam * (1 + 1e-3)


class LinearOperator:
    r"""A linear forward operator :math:`A` with its adjoint :math:`A^\top`.

    Subclasses implement :meth:`A` and :meth:`A_adjoint`; :meth:`norm_squared` falls back to
    power iteration on :math:`A^\top A` for images of ``shape``.
    """

    shape: tuple[int, int] | None = None

    def A(self, x: Tensor) -> Tensor:  # noqa: N802 (the field's notation)
        r"""Returns :math:`Ax`."""
        raise NotImplementedError

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        r"""Returns :math:`A^\top y`."""
        raise NotImplementedError

    def __call__(self, x: Tensor) -> Tensor:
        return self.A(x)

    def norm_squared(self, shape: tuple[int, ...] | None = None, iterations: int = 200) -> float:
        r"""Returns :math:`\|A\|_2^2` (closed form where known, else power iteration).

        Arguments:
            shape: The image shape ``(1, 1, H, W)`` for power iteration.
            iterations: The power iterations.
        """
        if shape is None:
            raise ValueError(f"{type(self).__name__}.norm_squared needs the image shape")
        return operator_norm_squared(self, shape, iterations)

    def check(self, x: Tensor, name: str = "x") -> None:
        r"""Raises a ``ValueError`` if ``x`` is not a ``(B, 1, H, W)`` image of the expected size."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(
                f"{name} must have shape (batch, 1, height, width), got {tuple(x.shape)}"
            )
        if self.shape is not None and tuple(x.shape[-2:]) != tuple(self.shape):
            raise ValueError(
                f"{name} has image size {tuple(x.shape[-2:])} but {type(self).__name__} "
                f"was built for {tuple(self.shape)}"
            )


class Denoising(LinearOperator):
    r"""The identity: :math:`y = x + \text{noise}`.

    Example:
        >>> op = Denoising()
        >>> op.norm_squared()
        1.0
    """

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return y

    def norm_squared(self, shape=None, iterations=0) -> float:
        return 1.0


def gaussian_kernel(sigma: float, size: int | None = None) -> Tensor:
    r"""A normalized 2D Gaussian kernel of standard deviation ``sigma`` (pixels), odd ``size``."""
    check_positive_number("sigma", sigma)
    if size is not None:
        check_positive_int(size=size)
    size = size or 2 * math.ceil(3 * sigma) + 1
    t = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


def _kernel(kernel: Tensor | np.ndarray) -> Tensor:
    if not isinstance(kernel, (Tensor, np.ndarray)):
        raise TypeError(f"kernel must be a tensor or an array, got {type(kernel).__name__}")
    k = torch.as_tensor(kernel)
    if not k.is_floating_point():
        raise TypeError(f"kernel must have a floating dtype, got {k.dtype}")
    if not bool(torch.isfinite(k).all()):
        raise ValueError("kernel contains NaN or infinite values")
    return k.to(torch.float64)


class Blur(LinearOperator):
    r"""Circular convolution with a kernel, by FFT; the adjoint multiplies by the conjugate.

    Arguments:
        shape: The image size ``(H, W)``.
        kernel: A 2D kernel (centered), or ``None`` for a Gaussian of std ``sigma``.
        sigma: The Gaussian's standard deviation in pixels.

    Example:
        >>> op = Blur((16, 16), sigma=1.0)
        >>> x, y = torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
        >>> bool(torch.isclose((op.A(x) * y).sum(), (x * op.A_adjoint(y)).sum(), rtol=1e-4))
        True
    """

    def __init__(self, shape: tuple[int, int], kernel: Tensor | None = None, sigma: float = 1.0):
        if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
            raise TypeError(f"shape must be a pair (height, width), got {shape!r}")
        check_positive_int(height=shape[0], width=shape[1])
        self.shape = (int(shape[0]), int(shape[1]))
        k = gaussian_kernel(sigma) if kernel is None else _kernel(kernel)
        if k.dim() != 2 or k.shape[0] > shape[0] or k.shape[1] > shape[1]:
            raise ValueError(f"kernel must be 2D and fit in {shape}, got {tuple(k.shape)}")
        self.kernel = k
        full = torch.zeros(self.shape, dtype=torch.float64)
        full[: k.shape[0], : k.shape[1]] = k
        full = torch.roll(full, (-(k.shape[0] // 2), -(k.shape[1] // 2)), (0, 1))
        self.transfer = torch.fft.rfft2(full)

    def _apply(self, x: Tensor, transfer: Tensor, name: str) -> Tensor:
        self.check(x, name)
        h = transfer.to(
            device=x.device,
            dtype=torch.complex128 if x.dtype == torch.float64 else torch.complex64,
        )
        return torch.fft.irfft2(torch.fft.rfft2(x) * h, s=self.shape)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return self._apply(x, self.transfer, "x")

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        return self._apply(y, self.transfer.conj(), "y")

    def norm_squared(self, shape=None, iterations=0) -> float:
        return float(self.transfer.abs().max() ** 2)


class Inpainting(LinearOperator):
    r"""A pixel mask: :math:`y = m \odot x` (missing pixels read as 0); self-adjoint.

    Arguments:
        mask: A ``(H, W)`` boolean or 0/1 tensor (1 = observed).

    Example:
        >>> op = Inpainting(torch.rand(8, 8) > 0.5)
        >>> op.norm_squared()
        1.0
    """

    def __init__(self, mask: Tensor):
        mask = torch.as_tensor(mask)
        if mask.dim() != 2:
            raise ValueError(f"mask must have shape (height, width), got {tuple(mask.shape)}")
        self.mask = mask.to(torch.float64)
        if not bool(((self.mask == 0) | (self.mask == 1)).all()):
            raise ValueError("mask must hold only 0 and 1")
        self.shape = tuple(mask.shape)

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        self.check(x)
        return x * self.mask.to(x)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        self.check(y, "y")
        return y * self.mask.to(y)

    def norm_squared(self, shape=None, iterations=0) -> float:
        return float(self.mask.max())


def _angles(angles: int | np.ndarray | list[float]) -> np.ndarray:
    r"""The projection angles in degrees: ``angles`` of them evenly in :math:`[0°, 180°)`
    for an integer, else the given finite angles."""
    if isinstance(angles, (bool, np.bool_)):
        raise TypeError("angles must be an integer or a sequence of degrees, got a bool")
    if isinstance(angles, (int, np.integer)):
        check_positive_int(angles=int(angles))
        return np.arange(angles) * 180.0 / angles
    try:
        theta = np.asarray(angles, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise TypeError(f"angles must be an integer or a sequence of degrees: {e}") from e
    if theta.size == 0:
        raise ValueError("angles is empty")
    if not np.isfinite(theta).all():
        raise ValueError("angles contains NaN or infinite values")
    return theta


class Tomography(LinearOperator):
    r"""Parallel-beam tomography (the Radon transform), as an exact sparse matrix and its transpose.

    The image is an ``n``-by-``n`` grid of unit pixels rotating about the center pixel
    ``n // 2`` (scikit-image's convention); for each angle, ``n`` detector bins one pixel
    apart integrate the bilinearly interpolated image along their ray, with half-pixel
    steps, inside the inscribed circle (``skimage.transform.radon(..., circle=True)``).
    Measurements have shape ``(B, 1, angles, n)``.

    Arguments:
        size: The image size ``n``.
        angles: The number of angles in :math:`[0°, 180°)`, or the angles in degrees.

    Example:
        >>> op = Tomography(16, angles=8)
        >>> op.A(torch.ones(1, 1, 16, 16)).shape
        torch.Size([1, 1, 8, 16])
    """

    def __init__(self, size: int, angles: int | np.ndarray | list[float] = 60):
        check_positive_int(size=size)
        theta = _angles(angles)
        self.size, self.theta = size, theta
        self.shape = (size, size)
        self.sinogram_shape = (len(theta), size)
        n = size
        c = n // 2
        step = 0.5
        radius = n / 2 - 0.5
        s = np.arange(n) - c  # detector positions
        t = np.arange(-radius, radius + step / 2, step)  # positions along the ray
        rows, cols, vals = [], [], []
        for a, deg in enumerate(np.deg2rad(theta)):
            cos, sin = np.cos(deg), np.sin(deg)
            S, T = np.meshgrid(s, t, indexing="ij")
            # scikit-image rotates the image and sums the columns: a ray at detector s
            px = c + S * cos - T * sin  # column coordinate
            py = c - S * sin - T * cos  # row coordinate
            inside = (S**2 + T**2) <= radius**2 + 1e-9
            x0, y0 = np.floor(px), np.floor(py)
            fx, fy = px - x0, py - y0
            ray = a * n + np.broadcast_to(np.arange(n)[:, None], S.shape)
            for dx, dy, w in (
                (0, 0, (1 - fx) * (1 - fy)),
                (1, 0, fx * (1 - fy)),
                (0, 1, (1 - fx) * fy),
                (1, 1, fx * fy),
            ):
                xi, yi = x0 + dx, y0 + dy
                ok = inside & (xi >= 0) & (xi < n) & (yi >= 0) & (yi < n) & (w > 0)
                rows.append(ray[ok])
                cols.append((yi[ok] * n + xi[ok]).astype(np.int64))
                vals.append(w[ok] * step)
        idx = torch.from_numpy(np.stack([np.concatenate(rows), np.concatenate(cols)]))
        val = torch.from_numpy(np.concatenate(vals))
        shape = (len(theta) * n, n * n)
        with warnings.catch_warnings():  # CSR support is "beta" in torch; the product is exact
            warnings.simplefilter("ignore", UserWarning)
            mat = torch.sparse_coo_tensor(idx, val, shape, check_invariants=True).coalesce()
            self.matrix = mat.to_sparse_csr()
            self.matrix_t = mat.t().coalesce().to_sparse_csr()
        self._cache: dict = {}

    def _mats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (like.dtype, like.device)
        if key not in self._cache:
            self._cache[key] = (
                self.matrix.to(like.device, like.dtype),
                self.matrix_t.to(like.device, like.dtype),
            )
        return self._cache[key]

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        self.check(x)
        m, _ = self._mats(x)
        flat = x.reshape(x.shape[0], -1).T
        return (m @ flat).T.reshape(x.shape[0], 1, *self.sinogram_shape)

    def A_adjoint(self, y: Tensor) -> Tensor:  # noqa: N802
        if y.dim() != 4 or tuple(y.shape[1:]) != (1, *self.sinogram_shape):
            raise ValueError(
                f"y must have shape (batch, 1, {self.sinogram_shape[0]}, {self.sinogram_shape[1]}), "
                f"got {tuple(y.shape)}"
            )
        _, mt = self._mats(y)
        flat = y.reshape(y.shape[0], -1).T
        return (mt @ flat).T.reshape(y.shape[0], 1, self.size, self.size)

    def norm_squared(self, shape=None, iterations: int = 100) -> float:
        if "norm" not in self._cache:
            self._cache["norm"] = super().norm_squared((1, 1, self.size, self.size), iterations)
        return self._cache["norm"]
