from __future__ import annotations

import pytest
import torch

from otgrad.data.images import psnr
from otgrad.inverse import (
    Blur,
    Denoising,
    Inpainting,
    RegularizerNetwork,
    Tomography,
    reconstruct,
    tv_reconstruct,
)
from otgrad.nn import ConvGradNet, ConvGradNetM

#: The convex regularizer architectures: CRR-NN's single layer, the cascade (mGradNet-C),
#: the modular network (mGradNet-M)
ARCHS = {
    "crr": lambda: ConvGradNet((1, 4, 8), 3, knots=11),
    "cascade": lambda: ConvGradNet((1, 4, 8), 3, layers=2, knots=11),
    "modular": lambda: ConvGradNetM((1, 4, 8), modules=2, kernel_size=3, beta=5.0),
}


def _reg(arch="crr"):
    torch.manual_seed(0)
    net = ARCHS[arch]()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return RegularizerNetwork(net, lmbda=3.0, mu=2.0).double()


def _image(n=16):
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    return (0.5 + 0.3 * torch.sin(6 * t[:, None]) * torch.cos(4 * t[None, :]))[None, None]


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize(
    "op",
    [
        Denoising(),
        Blur((16, 16), sigma=1.0),
        Inpainting(torch.rand(16, 16) > 0.3),
        Tomography(16, 6),
    ],
)
def test_plain_gradient_descent_never_increases_the_objective(op, arch):
    """The step 1 / L from the closed-form Lipschitz bound makes descent monotone, for every
    architecture (a bound below the true constant would show as an increase)."""
    x = _image()
    y = op.A(x) + 0.05 * torch.randn(op.A(x).shape, dtype=torch.float64)
    reg = _reg(arch)
    out = reconstruct(y, op, reg, accelerated=False, max_iter=150, tol=1e-12, record=True)
    f = torch.stack(out.objective)[:, 0]
    assert bool((f[1:] <= f[:-1] + 1e-12 * f[0].abs()).all())
    assert float(f[-1]) < float(f[0])


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("op", [Denoising(), Blur((16, 16), sigma=1.0)])
def test_two_initializations_reach_the_same_minimizer(op, arch):
    """Convexity: the minimizer is unique, whatever the start."""
    x = _image()
    y = op.A(x) + 0.05 * torch.randn(x.shape, dtype=torch.float64)
    reg = _reg(arch)
    a = reconstruct(y, op, reg, tol=1e-10, max_iter=5000)
    b = reconstruct(y, op, reg, x0=torch.rand_like(x), tol=1e-10, max_iter=5000)
    assert a.converged and b.converged
    assert float((a.x - b.x).norm() / a.x.norm()) < 1e-6


def test_fista_with_restart_is_faster_than_plain_descent():
    x = _image()
    y = x + 0.05 * torch.randn(x.shape, dtype=torch.float64)
    reg = _reg()
    plain = reconstruct(y, Denoising(), reg, accelerated=False, tol=1e-8, max_iter=5000)
    fast = reconstruct(y, Denoising(), reg, tol=1e-8, max_iter=5000)
    assert fast.iterations < plain.iterations
    assert float((fast.x - plain.x).norm() / plain.x.norm()) < 1e-5


def test_bounds_are_respected():
    y = _image() * 1.5
    out = reconstruct(y, Denoising(), _reg(), bounds=(0.0, 1.0), max_iter=50)
    assert float(out.x.min()) >= 0.0 and float(out.x.max()) <= 1.0


def test_reconstruct_errors():
    reg = _reg()
    y = _image()
    with pytest.raises(ValueError, match="x0"):
        reconstruct(y, Denoising(), reg, x0=torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        reconstruct(y * float("nan"), Denoising(), reg)
    with pytest.raises(ValueError, match="image size"):
        reconstruct(torch.zeros(1, 1, 8, 8, dtype=torch.float64), Blur((16, 16)), reg)
    with pytest.raises(ValueError, match="max_iter"):
        reconstruct(y, Denoising(), reg, max_iter=0)


def test_tv_denoises_and_decreases_its_objective():
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 1, 24, 24, generator=gen) > 0.5).double().cumsum(-1).clamp(max=1)
    y = x + 0.1 * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    out = tv_reconstruct(y, Denoising(), 0.08, max_iter=500)
    assert float(psnr(out.x, x)) > float(psnr(y, x)) + 2
    assert float(out.objective[-1].sum()) < float(out.objective[0].sum())


def test_reconstruct_argument_errors():
    y = _image()
    with pytest.raises(TypeError, match="regularizer"):
        reconstruct(y, Denoising(), ConvGradNet((1, 2), 3))
    with pytest.raises(ValueError, match="bounds"):
        reconstruct(y, Denoising(), _reg(), bounds=(1.0, 0.0))
    with pytest.raises(ValueError, match="tol"):
        reconstruct(y, Denoising(), _reg(), tol=float("nan"))


class _ForeignBlur:
    """Another library's operator: A and A_adjoint only (no norm_squared), like a deepinv physics."""

    def __init__(self, op):
        self.op = op

    def A(self, x):  # noqa: N802
        return self.op.A(x)

    def A_adjoint(self, y):  # noqa: N802
        return self.op.A_adjoint(y)


def test_an_operator_with_only_a_and_its_adjoint_works():
    x = _image()
    op = Blur((16, 16), sigma=1.0)
    y = op.A(x) + 0.02 * torch.randn(x.shape, dtype=torch.float64)
    ours = reconstruct(y, op, _reg(), tol=1e-9, max_iter=5000)
    foreign = reconstruct(y, _ForeignBlur(op), _reg(), tol=1e-9, max_iter=5000)
    assert foreign.step == pytest.approx(ours.step, rel=1e-3)  # power iteration vs closed form
    torch.testing.assert_close(foreign.x, ours.x, rtol=0, atol=1e-6)
    with pytest.raises(TypeError, match="operator"):
        reconstruct(y, object(), _reg())
