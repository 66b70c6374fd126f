"""The convolutional mGradNet-M: symmetric (PSD when monotone) Jacobian, closed-form gradient,
Jacobian-vector product and Lipschitz bound equal to / bounding autograd — for random
channels, modules, kernels, parameters and images (float64). Theorem: Thm 12 / Cor 12.1."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from otgrad import io
from otgrad.nn import ConvGradNetM


@st.composite
def modular_nets(draw, monotone=None):
    modules, h = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    c1, k = draw(st.integers(1, 4)), draw(st.sampled_from([1, 3, 5]))
    mono = draw(st.booleans()) if monotone is None else monotone
    act = draw(st.sampled_from(["softmax", "wsoftmax"]))
    net = ConvGradNetM((1, c1, modules * h), modules, k, monotone=mono, activation=act).double()
    gen = torch.Generator().manual_seed(draw(st.integers(0, 10**6)))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    size = (draw(st.integers(3, 6)), draw(st.integers(3, 6)))
    return net, torch.randn(2, 1, *size, generator=gen, dtype=torch.float64)


@given(modular_nets())
def test_jacobian_symmetric_and_matches_autograd(case):
    net, x = case
    J = net.jacobian(x)
    torch.testing.assert_close(J, J.mT, rtol=0, atol=1e-10)
    n = x[0].numel()
    auto = torch.autograd.functional.jacobian(
        lambda z: net(z.reshape(1, *x.shape[1:])).reshape(-1), x[1].reshape(-1)
    )
    torch.testing.assert_close(J[1], auto.reshape(n, n), rtol=1e-8, atol=1e-9)


@given(modular_nets(monotone=True))
def test_monotone_jacobian_psd(case):
    net, x = case
    assert float(torch.linalg.eigvalsh(net.jacobian(x)).min()) > -1e-9


@given(modular_nets())
def test_the_network_is_the_gradient_of_its_potential(case):
    net, x = case
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(net.potential(x).sum(), x)
    torch.testing.assert_close(g, net(x.detach()), rtol=1e-8, atol=1e-9)


@given(modular_nets())
def test_lipschitz_bound_holds(case):
    net, x = case
    top = float(torch.linalg.eigvalsh(net.jacobian(x)).abs().max())
    assert top <= net.lipschitz_bound() * (1 + 1e-9) + 1e-12


def test_saves_and_loads(tmp_path):
    net = ConvGradNetM((1, 4, 6), modules=3, kernel_size=3)
    io.save(net, tmp_path / "m.pt")
    back = io.load(tmp_path / "m.pt")
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(back(x), net(x))


def test_bad_construction():
    with pytest.raises(ValueError, match="multiple of modules"):
        ConvGradNetM((1, 4, 6), modules=4)
    with pytest.raises(ValueError, match="activation"):
        ConvGradNetM((1, 4, 8), modules=2, activation="logcosh")  # unbounded Hessian
    with pytest.raises(ValueError, match="x must have shape"):
        ConvGradNetM((1, 4, 8), modules=2)(torch.rand(1, 2, 8, 8))
