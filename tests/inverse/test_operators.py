from __future__ import annotations

import numpy as np
import pytest
import torch

from otgrad.inverse import Blur, Denoising, Inpainting, Tomography


def _ops():
    gen = torch.Generator().manual_seed(0)
    return [
        (Denoising(), (1, 1, 12, 10)),
        (Blur((12, 10), sigma=1.3), (1, 1, 12, 10)),
        (Inpainting(torch.rand(12, 10, generator=gen) > 0.4), (1, 1, 12, 10)),
        (Tomography(12, angles=7), (1, 1, 12, 12)),
    ]


@pytest.mark.parametrize("op, shape", _ops(), ids=["denoise", "blur", "inpaint", "ct"])
def test_adjoint(op, shape):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, *shape[1:], generator=gen, dtype=torch.float64)
    y = torch.randn(op.A(x).shape, generator=gen, dtype=torch.float64)
    lhs, rhs = (op.A(x) * y).sum(), (x * op.A_adjoint(y)).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-10)


@pytest.mark.parametrize("op, shape", _ops(), ids=["denoise", "blur", "inpaint", "ct"])
def test_norm_squared_bounds_the_operator(op, shape):
    x = torch.randn(*shape, dtype=torch.float64)
    for _ in range(100):
        x = op.A_adjoint(op.A(x))
        x = x / x.norm()
    top = float((op.A(x) ** 2).sum())
    assert top <= op.norm_squared(shape) * (1 + 1e-6)
    assert top >= op.norm_squared(shape) * 0.95


def test_tomography_matches_scikit_image_radon():
    from skimage.data import shepp_logan_phantom
    from skimage.transform import radon, resize

    img = resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True)
    op = Tomography(64, angles=30)
    ours = op.A(torch.as_tensor(img)[None, None])[0, 0].numpy()
    ref = radon(img, theta=op.theta, circle=True).T
    assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 0.01


def test_blur_is_a_normalized_convolution():
    op = Blur((16, 16), sigma=2.0)
    x = torch.ones(1, 1, 16, 16, dtype=torch.float64)
    assert torch.allclose(op.A(x), x)  # a constant image is unchanged
    assert abs(op.norm_squared() - 1.0) < 1e-12


def test_shape_errors():
    with pytest.raises(ValueError, match="image size"):
        Blur((16, 16)).A(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="shape"):
        Tomography(8, 4).A(torch.zeros(1, 8, 8))
    with pytest.raises(ValueError, match="y must have shape"):
        Tomography(8, 4).A_adjoint(torch.zeros(1, 1, 5, 8))
    with pytest.raises(ValueError, match="mask"):
        Inpainting(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="height"):
        Blur((0, 4))
