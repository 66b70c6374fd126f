"""Numerical routines: quadrature, line integrals, the inverse solver."""

from __future__ import annotations

import pytest
import torch

from otgrad import calculus
from otgrad.nn import GradNetC, MLPPotential, StronglyConvex


def test_gauss_legendre_is_exact_for_polynomials():
    t, w = calculus.gauss_legendre(5)
    for k in range(10):
        assert abs(float((w * t**k).sum()) - 1 / (k + 1)) < 1e-14
    with pytest.raises(ValueError, match="n must be"):
        calculus.gauss_legendre(0)


def test_integrate_0_to():
    u = torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    out = calculus.integrate_0_to(torch.cos, u, nodes=32)
    assert torch.allclose(out, torch.sin(u), atol=1e-14)


def test_line_integral_recovers_a_known_potential():
    x = torch.randn(10, 3, dtype=torch.float64)

    def f(y):
        return torch.stack([2 * y[:, 0] * y[:, 1], y[:, 0] ** 2, torch.cos(y[:, 2])], -1)

    def psi(y):
        return y[:, 0] ** 2 * y[:, 1] + torch.sin(y[:, 2])

    assert torch.allclose(calculus.line_integral_potential(f, x), psi(x), atol=1e-13)


def test_autograd_fallback_potential_uses_the_line_integral():
    net = MLPPotential(3, 8).double()
    x = torch.randn(6, 3, dtype=torch.float64)
    fallback = calculus.line_integral_potential(net._forward, x)
    exact = net.potential(x) - net.potential(torch.zeros(1, 3, dtype=torch.float64))
    assert torch.allclose(fallback, exact, atol=1e-10)


@pytest.mark.parametrize("method", ["newton", "newton-cg"])
def test_invert_from_far_starts(method):
    torch.manual_seed(0)
    net = StronglyConvex(GradNetC(4, 16), 0.05).double()
    x = 5 * torch.randn(32, 4, dtype=torch.float64)
    y = net(x)
    far = 100 * torch.randn(32, 4, dtype=torch.float64)
    xi = net.inverse(y, tol=1e-12, x0=far, method=method)
    assert torch.allclose(xi, x, atol=1e-8)


def test_invert_argument_errors():
    y = torch.randn(3, 2)
    with pytest.raises(ValueError, match="method"):
        calculus.invert(lambda x: x, y, method="bisection")
    with pytest.raises(ValueError, match="needs a jacobian"):
        calculus.invert(lambda x: x, y, method="newton")
    with pytest.raises(ValueError, match="needs a jvp"):
        calculus.invert(lambda x: x, y, method="newton-cg")


def test_spectral_norm_and_power_iteration_agree():
    a = torch.randn(7, 5, dtype=torch.float64)
    exact = float(calculus.spectral_norm(a)) ** 2
    est = calculus.power_iteration(lambda v: a.T @ (a @ v), (5,), iterations=500)
    assert abs(est - exact) / exact < 1e-8


def test_invert_non_strict_returns_the_last_iterate():
    torch.manual_seed(0)
    net = StronglyConvex(GradNetC(3, 8), mu=0.1).double()
    y = 5 * torch.randn(20, 3, dtype=torch.float64)
    with pytest.raises(calculus.InverseError):
        net.inverse(y, 1e-12, max_iter=1)
    x1 = net.inverse(y, 1e-12, max_iter=1, strict=False)
    r0 = (net(y) - y).norm(dim=-1)  # the default start is y
    r1 = (net(x1) - y).norm(dim=-1)
    assert bool((r1 <= r0).all()) and float(r1.mean()) < float(r0.mean())
    # warm-started again from the last iterate, it converges
    x = net.inverse(y, 1e-10, x0=x1, max_iter=50)
    torch.testing.assert_close(net(x), y, atol=1e-8, rtol=0)


def test_newton_cg_builds_the_operator_once_per_iteration():
    torch.manual_seed(1)
    net = StronglyConvex(GradNetC(4, 8), mu=0.1).double()
    y = torch.randn(10, 4, dtype=torch.float64)
    calls = {"linearize": 0, "matvec": 0}

    def linearize(x):
        calls["linearize"] += 1
        op = net._linearize(x)

        def matvec(v):
            calls["matvec"] += 1
            return op(v)

        return matvec

    x = calculus.invert(net._forward, y, linearize=linearize, method="newton-cg", tol=1e-10)
    torch.testing.assert_close(net(x), y, atol=1e-8, rtol=0)
    assert 0 < calls["linearize"] < calls["matvec"]


@pytest.mark.parametrize("seed", [0, 1])
def test_preconditioned_newton_cg_solves_the_same_systems_with_fewer_products(seed):
    from otgrad.ot import default_network

    torch.manual_seed(seed)
    net = default_network(40).double()
    with torch.no_grad():  # an anisotropic linear part, as after a Gaussian start
        net.net.nets[0].raw_alpha.add_(3 * torch.randn(40, dtype=torch.float64))
    x = torch.randn(64, 40, dtype=torch.float64)
    y = net(x)
    calls = {True: 0, False: 0}
    solutions = {}
    for pre in (True, False):

        def linearize(z, pre=pre):
            op = net._linearize(z)

            def matvec(v):
                calls[pre] += 1
                return op(v)

            return matvec

        solutions[pre] = calculus.invert(
            net._forward, y, jacobian=net._dense_jacobian, linearize=linearize,
            method="newton-cg", tol=1e-11, precondition=pre,
        )  # fmt: skip
        torch.testing.assert_close(net(solutions[pre]), y, atol=1e-9, rtol=0)
    torch.testing.assert_close(solutions[True], solutions[False], atol=1e-7, rtol=0)
    assert calls[True] < calls[False] / 2
