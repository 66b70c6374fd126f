from __future__ import annotations

import pytest
import torch

from otgrad.calculus import min_eigenvalue
from otgrad.data import ConvexField, NonconvexField, PolyMax, unit_grid


@pytest.mark.parametrize("field", [ConvexField(), NonconvexField()])
def test_gradient_is_the_gradient_of_the_potential(field):
    x = torch.rand(100, 2, dtype=torch.float64).requires_grad_()
    (g,) = torch.autograd.grad(field.potential(x).sum(), x)
    assert torch.allclose(g, field(x.detach()), atol=1e-12)


def test_convexity_on_the_unit_square():
    x = unit_grid(30, dtype=torch.float64)
    hess = torch.func.vmap(torch.func.hessian(lambda y: ConvexField().potential(y)))(x)
    assert float(min_eigenvalue(hess).min()) > 0
    hess = torch.func.vmap(torch.func.hessian(lambda y: NonconvexField().potential(y)))(x)
    assert float(min_eigenvalue(hess).min()) < 0


def test_sample_and_grid():
    x, y = ConvexField().sample(50, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (50, 2) and bool(((x >= 0) & (x <= 1)).all())
    assert unit_grid(100).shape == (10_000, 2)
    with pytest.raises(ValueError, match="n must be"):
        ConvexField().sample(0)


@pytest.mark.parametrize("d", [2, 5, 32])
def test_polymax(d):
    field = PolyMax(d)
    x = torch.rand(500, d, dtype=torch.float64).requires_grad_()
    (g,) = torch.autograd.grad(field.potential(x).sum(), x)
    assert torch.allclose(g, field(x.detach()), atol=1e-12)
    assert float(torch.linalg.eigvalsh(field.A).min()) > 0  # three SPD quadratics: convex
    mean_norm = float(field(torch.rand(20_000, d, dtype=torch.float64)).norm(dim=-1).mean())
    assert abs(mean_norm - 1) < 0.05
    with pytest.raises(ValueError, match="at least 2"):
        PolyMax(1)
