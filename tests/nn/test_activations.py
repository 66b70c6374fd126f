"""Activations: derivative and antiderivative are consistent with the value."""

from __future__ import annotations

import math

import pytest
import torch

from otgrad.nn import (
    Identity,
    LinearSpline,
    LogCoshSquare,
    Sigmoid,
    SigmoidMixture,
    Softmax,
    Softplus,
    Tanh,
    WSoftmax,
    WTanh,
)
from otgrad.nn.activations import group_activation, softplus_integral

ELEMENTWISE = [
    lambda: Identity(),
    lambda: Tanh(),
    lambda: Sigmoid(),
    lambda: Softplus(),
    lambda: WTanh(5),
    lambda: WTanh(5, monotone=False),
    lambda: SigmoidMixture(5),
    lambda: SigmoidMixture(5, components=3, monotone=False),
    lambda: LinearSpline(5, knots=6),
    lambda: LinearSpline(5, knots=4, monotone=False, span=3.0),
]


def randomize(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


@pytest.mark.parametrize("make", ELEMENTWISE)
def test_elementwise_calculus(make):
    act = randomize(make().double())
    # a grid that avoids spline knots (kinks, where any derivative value is a subgradient)
    t = (torch.linspace(-6, 6, 101, dtype=torch.float64)[:, None] + 0.0123) * torch.ones(5)
    t.requires_grad_()
    value, deriv = act.value_and_derivative(t)
    (d_auto,) = torch.autograd.grad(value.sum(), t, create_graph=True)
    assert torch.allclose(deriv, d_auto, atol=1e-12)
    (s_grad,) = torch.autograd.grad(act.antiderivative(t).sum(), t)
    assert torch.allclose(s_grad, value, atol=1e-10)
    bound = act.derivative_bound().to(t)
    assert bool((deriv.abs() <= bound + 1e-12).all())
    if act.monotone:
        assert bool((deriv >= 0).all())


def test_softplus_integral_matches_numerical_quadrature():
    t = torch.tensor([-50.0, -5.0, -1.0, -0.3, 0.0, 0.7, 1.0, 4.0, 30.0], dtype=torch.float64)
    s = torch.linspace(-80, 0, 400_001, dtype=torch.float64)
    for ti in t:
        grid = s + ti
        ref = torch.trapezoid(torch.nn.functional.softplus(grid), grid)
        assert abs(float(softplus_integral(ti[None])[0]) - float(ref)) < 1e-7
    assert (
        abs(float(softplus_integral(torch.zeros(1, dtype=torch.float64))) - math.pi**2 / 12)
        < 1e-15
    )
    huge = softplus_integral(torch.tensor([1e4, -1e4]))
    assert bool(torch.isfinite(huge).all())
    assert abs(float(huge[0]) - (math.pi**2 / 6 + 5e7)) / 5e7 < 1e-6


@pytest.mark.parametrize(
    "make", [lambda: Softmax(3), lambda: WSoftmax(3), lambda: LogCoshSquare(3)]
)
def test_group_calculus(make):
    act = randomize(make().double())
    z = torch.randn(4, 3, 6, dtype=torch.float64)
    grad, (D, U, s) = act.gradient_and_hessian(z)
    for b in range(4):
        for g in range(3):
            zz = z[b, g].clone()

            def phi(v, g=g, b=b):
                full = z[b].clone()
                full[g] = v
                return act.potential(full)[g]

            assert torch.allclose(torch.func.grad(phi)(zz), grad[b, g], atol=1e-12)
            hess = torch.diag(D[b, g]) + U[b, g] @ torch.diag(s[b, g]) @ U[b, g].T
            assert torch.allclose(torch.func.hessian(phi)(zz), hess, atol=1e-10)
            eig = torch.linalg.eigvalsh(hess)
            assert float(eig.min()) >= -1e-12  # convex
            assert float(eig.max()) <= float(act.hessian_bound()[g]) + 1e-12


@pytest.mark.parametrize("monotone", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_spline_channels_first_path_equals_forward(monotone, seed):
    """The solvers' channel-first spline equals the autograd path, inside and outside the knots."""
    gen = torch.Generator().manual_seed(seed)
    h, knots = 3 + seed, 4 + 3 * seed
    spline = LinearSpline(h, knots=knots, monotone=monotone, span=0.5 + seed).double()
    with torch.no_grad():
        spline.raw.add_(0.5 * torch.randn(spline.raw.shape, generator=gen, dtype=torch.float64))
    scale = torch.rand(h, generator=gen, dtype=torch.float64) * 3
    shift = torch.randn(h, generator=gen, dtype=torch.float64)
    u = 2 * (1 + seed) * torch.randn(2, h, 5, 7, generator=gen, dtype=torch.float64)
    expected = spline(u.movedim(1, -1) * scale + shift).movedim(-1, 1)
    with torch.no_grad():  # the solvers' in-place path
        torch.testing.assert_close(
            spline.channels_first(u, scale, shift), expected, rtol=0, atol=1e-12
        )
    # the training path: the hand-written backward equals autograd's of the forward path
    inputs = [t.requires_grad_() for t in (u, scale, shift)]
    weight = torch.randn(u.shape, generator=gen, dtype=torch.float64)
    ours = spline.channels_first(*inputs)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)
    params = [*inputs, spline.raw]
    got = torch.autograd.grad((ours * weight).sum(), params)
    want = torch.autograd.grad(
        (spline(u.movedim(1, -1) * scale + shift).movedim(-1, 1) * weight).sum(), params
    )
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    identity = spline.channels_first(u)
    torch.testing.assert_close(identity, spline(u.movedim(1, -1)).movedim(-1, 1))


@pytest.mark.parametrize("monotone", [True, False])
def test_spline_channels_first_gain_scales_the_output(monotone):
    """``gain`` (folded into the knot values) equals multiplying the output, for the values
    and for the gradients of every input, with and without a graph."""
    gen = torch.Generator().manual_seed(1)
    spline = LinearSpline(4, knots=6, monotone=monotone, span=1.0).double()
    u = 2 * torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64)
    scale = torch.rand(4, generator=gen, dtype=torch.float64) + 0.5
    shift = torch.randn(4, generator=gen, dtype=torch.float64)
    gain = torch.randn(4, generator=gen, dtype=torch.float64)
    view = (4, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            spline.channels_first(u, scale, shift, gain),
            spline.channels_first(u, scale, shift) * gain.reshape(view),
            rtol=0,
            atol=1e-12,
        )
    inputs = [t.clone().requires_grad_() for t in (u, scale, shift, gain)]
    weight = torch.randn(u.shape, generator=gen, dtype=torch.float64)
    ours = (spline.channels_first(*inputs) * weight).sum()
    ref = (spline.channels_first(*inputs[:3]) * inputs[3].reshape(view) * weight).sum()
    params = [*inputs, spline.raw]
    got, want = torch.autograd.grad(ours, params), torch.autograd.grad(ref, params)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "wsoftmax", "logcosh"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_group_gradient_on_any_axis_equals_forward(name, dim):
    """``gradient(z, dim)`` (the images' layout) equals the group gradient on the last axis."""
    gen = torch.Generator().manual_seed(dim)
    act = group_activation(name, groups=3).double()
    with torch.no_grad():
        for p in act.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
    z = torch.randn(2, 3, 4, 5, 6, generator=gen, dtype=torch.float64)  # groups on dim - 1
    z = z.movedim((1, 2), (dim - 1, dim)) if dim != 2 else z
    last = z.movedim((dim - 1, dim), (-2, -1))
    expected = act(last).movedim((-2, -1), (dim - 1, dim))
    torch.testing.assert_close(act.gradient(z, dim=dim), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(act.gradient(last), act(last), rtol=0, atol=0)
