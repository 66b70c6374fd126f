"""Convolutional GradNets: exact adjoint, symmetric (PSD for monotone) Jacobian, closed-form
calculus equal to autograd — for random channels, kernels, layers, parameters and images
(float64). Theorems: Prop 2.1 / 3.3 (single layer), Thm 11 / Cor 11.1 (cascade)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from otgrad.nn.conv import (
    ADJOINTS,
    CORRELATIONS,
    ConvGradNet,
    MultiConv2d,
    correlate,
    correlate_adjoint,
    operator_norm,
)


def _perturb(net: ConvGradNet, seed: int) -> ConvGradNet:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


@st.composite
def conv_nets(draw, monotone=None):
    c1 = draw(st.integers(1, 4))
    c2 = draw(st.integers(1, 6))
    k = draw(st.sampled_from([1, 3, 5]))
    layers = draw(st.integers(1, 3))
    act = draw(st.sampled_from(["spline", "tanh", "softplus"]))
    mono = draw(st.booleans()) if monotone is None else monotone
    net = ConvGradNet(
        (1, c1, c2), k, layers=layers, monotone=mono, activation=act, knots=9, span=1.0
    )
    net = _perturb(net.double(), draw(st.integers(0, 10**6)))
    h, w = draw(st.integers(3, 7)), draw(st.integers(3, 7))
    x = torch.randn(
        2,
        1,
        h,
        w,
        generator=torch.Generator().manual_seed(draw(st.integers(0, 10**6))),
        dtype=torch.float64,
    )
    return net, x


@given(st.integers(1, 4), st.integers(1, 5), st.sampled_from([1, 3, 5]), st.integers(0, 10**6))
def test_adjoint(c1, c2, k, seed):
    gen = torch.Generator().manual_seed(seed)
    W = MultiConv2d((1, c1, c2), k).double()
    x = torch.randn(2, 1, 9, 7, generator=gen, dtype=torch.float64)
    y = torch.randn(2, c2, 9, 7, generator=gen, dtype=torch.float64)
    lhs, rhs = (W(x) * y).sum(), (x * W.transpose(y)).sum()
    assert torch.isclose(lhs, rhs, rtol=1e-10, atol=1e-10)


@given(
    st.integers(1, 3),
    st.integers(1, 5),
    st.sampled_from([1, 3, 5, 7, 13]),
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(0, 10**6),
)
def test_every_method_is_the_library_convolution(c_in, c_out, k, h, w, seed):
    """The CPU's candidate ways to compute W^T y (FFT, depthwise, transposed convolution)
    all equal conv_transpose2d, and those of W x (direct, FFT) conv2d, for any channels,
    odd kernel and image size (float64)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(2, c_out, h, w, generator=gen, dtype=torch.float64)
    kernel = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64)
    want = F.conv_transpose2d(y, kernel, padding=k // 2)
    for name, method in ADJOINTS.items():
        if name == "depthwise" and c_in > 1:
            continue
        torch.testing.assert_close(method(y, kernel), want, rtol=1e-10, atol=1e-10)
    x = torch.randn(2, c_in, h, w, generator=gen, dtype=torch.float64)
    want = F.conv2d(x, kernel, padding=k // 2)
    for method in CORRELATIONS.values():
        torch.testing.assert_close(method(x, kernel), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size", [(16, 40, 40), (1, 160, 96)])
def test_timed_choice_at_training_and_image_sizes(size):
    """Where the methods are timed (a training batch of patches, one large image), the
    chosen ones give the library's W x and W^T y, with and without gradients."""
    batch, h, w = size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, h, w, generator=gen)
    y = torch.randn(batch, 32, h, w, generator=gen)
    kernel = torch.randn(32, 1, 13, 13, generator=gen, requires_grad=True)
    for ours, library, inp in (
        (correlate, lambda a, b: F.conv2d(a, b, padding=6), x),
        (correlate_adjoint, lambda a, b: F.conv_transpose2d(a, b, padding=6), y),
    ):
        want = library(inp, kernel)
        tol = 1e-5 * float(want.abs().max())  # float32 sums of up to 5,408 terms
        torch.testing.assert_close(ours(inp, kernel), want, rtol=0, atol=tol)
        with torch.no_grad():
            torch.testing.assert_close(ours(inp, kernel), want, rtol=0, atol=tol)


@given(st.integers(1, 3), st.integers(1, 4), st.sampled_from([1, 3, 5]), st.integers(0, 10**6))
def test_correlation_gradients_equal_the_library_convolutions(c_in, c_out, k, seed):
    """The hand-written backward of W and W^T (and its own backward) equals autograd's
    through conv2d / conv_transpose2d."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c_in, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, c_out, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    for ours, library, inp in (
        (correlate, lambda a, b: F.conv2d(a, b, padding=k // 2), x),
        (correlate_adjoint, lambda a, b: F.conv_transpose2d(a, b, padding=k // 2), y),
    ):
        out = ours(inp, w)
        torch.testing.assert_close(out, library(inp, w), rtol=1e-12, atol=1e-12)
        probe = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        got = torch.autograd.grad((out * probe).sum(), (inp, w), create_graph=True)
        want = torch.autograd.grad((library(inp, w) * probe).sum(), (inp, w), create_graph=True)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        # second order: the gradient of a function of the gradients
        second = [
            torch.autograd.grad((g[0] ** 2).sum() + (g[1] ** 2).sum(), (inp, w))
            for g in (got, want)
        ]
        for a, b in zip(*second, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@given(conv_nets())
def test_jacobian_symmetric_and_matches_autograd(case):
    net, x = case
    J = net.jacobian(x)
    assert torch.allclose(J, J.mT, atol=1e-10)
    n = x[0].numel()
    auto = torch.autograd.functional.jacobian(
        lambda z: net(z.reshape(1, *x.shape[1:])).reshape(-1), x[0].reshape(-1)
    )
    assert torch.allclose(J[0], auto.reshape(n, n), atol=1e-9)
    v = torch.randn_like(x)
    assert torch.allclose(net.jvp(x, v), (J @ v.reshape(2, n, 1)).reshape(x.shape), atol=1e-9)


@given(conv_nets(monotone=True))
def test_monotone_jacobian_psd(case):
    net, x = case
    assert float(torch.linalg.eigvalsh(net.jacobian(x)).min()) > -1e-9


@given(conv_nets())
def test_potential_gradient_is_the_network(case):
    net, x = case
    # closed form for one layer; Gauss-Legendre quadrature for smooth cascades (a cascade of
    # kinked splines has only an algebraically accurate quadrature potential)
    assume(net.layers == 1 or net.activation != "spline")
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(net.potential(x).sum(), x)
    assert torch.allclose(g, net(x.detach()), atol=1e-8, rtol=1e-8)


@given(conv_nets())
def test_lipschitz_bound_holds(case):
    net, x = case
    top = float(torch.linalg.eigvalsh(net.jacobian(x)).abs().max())
    assert top <= net.lipschitz_bound() * (1 + 1e-9) + 1e-12


def test_operator_norm_bounds_power_iteration():
    torch.manual_seed(0)
    k = MultiConv2d((1, 8, 32), 7).double().kernel().detach()
    v = torch.randn(1, 1, 96, 96, dtype=torch.float64)
    W = MultiConv2d((1, 1), 1)
    for _ in range(200):
        w = W.transpose(W(v, k), k)
        v = w / w.norm()
    est = float(w.norm().sqrt())
    bound = float(operator_norm(k))
    assert est <= bound <= est * 1.03


def test_zero_mean_filters_ignore_constants():
    net = ConvGradNet((1, 4, 8), 3).double()
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    y = x + 0.3
    # interior pixels of W x do not see a constant shift (the border sees the zero padding)
    assert torch.allclose(net.conv(x)[..., 2:-2, 2:-2], net.conv(y)[..., 2:-2, 2:-2], atol=1e-12)


@pytest.mark.parametrize(
    "bad, err",
    [
        (torch.rand(1, 12, 12), ValueError),
        (torch.rand(1, 2, 12, 12), ValueError),
        (torch.rand(1, 1, 12, 12, dtype=torch.float64), TypeError),
        (torch.full((1, 1, 4, 4), float("nan")), ValueError),
        (torch.zeros(0, 1, 4, 4), ValueError),
        ([[0.0]], TypeError),
    ],
)
def test_bad_input(bad, err):
    net = ConvGradNet((1, 2, 4), 3)
    with pytest.raises(err):
        net(bad)


def test_bad_construction():
    with pytest.raises(ValueError, match="kernel_size"):
        MultiConv2d((1, 4), 4)
    with pytest.raises(ValueError, match="channels"):
        MultiConv2d((1,), 3)
    with pytest.raises(ValueError, match="layers"):
        ConvGradNet(layers=0)
