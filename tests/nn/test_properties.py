"""Proof by tests: every architecture is what its theorem says, for random widths,
depths, parameters and inputs (float64)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from otgrad.calculus import min_eigenvalue, symmetry_error
from otgrad.nn import (
    ICGN,
    ICNN,
    GradientNetwork,
    GradNetC,
    GradNetM,
    MLPPotential,
    SingleLayerGradNet,
    StronglyConvex,
    TransformedRidgeSum,
)

from .factory import CASCADE, KINDS, MODULAR, build, inputs, networks


def autograd_jacobian(net, x):
    return torch.func.vmap(torch.func.jacrev(lambda xi: net(xi[None])[0]))(x)


@given(st.data())
def test_jacobian_symmetric_and_psd_when_monotone(data):
    net = data.draw(networks())
    x = data.draw(inputs(net.dim))
    jac = net.jacobian(x)
    assert float(symmetry_error(jac).max()) < 1e-10
    if net.monotone:
        scale = max(1.0, float(jac.abs().max()))
        assert float(min_eigenvalue(jac).min()) >= -1e-10 * scale


@given(st.data())
def test_closed_form_calculus_equals_autograd(data):
    net = data.draw(networks())
    x = data.draw(inputs(net.dim))
    v = data.draw(inputs(net.dim))
    ref = autograd_jacobian(net, x)
    tol = 1e-9 * max(1.0, float(ref.abs().max()))
    assert torch.allclose(net.jacobian(x), ref, atol=tol, rtol=0)
    assert torch.allclose(net.jvp(x, v), (ref @ v[..., None])[..., 0], atol=tol * 10, rtol=0)
    tr = ref.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert torch.allclose(net.jacobian_trace(x), tr, atol=tol * net.dim, rtol=0)


@given(st.data())
def test_logdet_equals_slogdet(data):
    kinds = ["single", "cascade", "modular", "conical", "ridge"]
    net = StronglyConvex(data.draw(networks(kinds=kinds, monotone=True)), 0.1)
    x = data.draw(inputs(net.dim))
    sign, ref = torch.linalg.slogdet(autograd_jacobian(net, x))
    assert bool((sign > 0).all())
    assert torch.allclose(net.logdet(x), ref, atol=1e-9, rtol=1e-9)


@given(st.data())
def test_gradient_of_potential_is_forward(data):
    # closed-form potentials are exact; quadrature ones (cascades, transformed ridge sums,
    # the line-integral fallback) converge with the number of nodes: 256 here, because
    # random parameters make steep hidden maps (64 nodes, the default, reach ~1e-4 on
    # such nets and 1e-15 on typical ones: docs/benchmarks.md)
    net = data.draw(networks())
    for m in net.modules():
        if isinstance(m, GradientNetwork):
            m.quadrature_nodes = 256
    x = data.draw(inputs(net.dim, scale=1.0)).requires_grad_()
    (grad,) = torch.autograd.grad(net.potential(x).sum(), x)
    f = net(x).detach()
    exact = not any(
        isinstance(m, (GradNetC, TransformedRidgeSum, ICGN, MLPPotential, ICNN))
        for m in net.modules()
    )
    tol = (1e-10 if exact else 1e-6) * max(1.0, float(f.abs().max()))
    assert torch.allclose(grad, f, atol=tol, rtol=0)


@given(st.data())
def test_potential_is_a_fixed_function(data):
    # the additive constant does not depend on the batch: psi(x) computed alone or in a batch
    net = data.draw(networks())
    x = data.draw(inputs(net.dim))
    full = net.potential(x)
    one = torch.stack([net.potential(x[i : i + 1])[0] for i in range(x.shape[0])])
    assert torch.allclose(full, one, atol=1e-12, rtol=1e-12)


@given(st.data())
def test_lipschitz_bound_is_an_upper_bound(data):
    kinds = [
        "single",
        "single-softmax",
        "cascade",
        "modular",
        "sum",
        "conical",
        "strong",
        "shift",
        "crr",
        "rr",
    ]
    net = data.draw(networks(kinds=kinds))
    bound = net.lipschitz_bound()
    x = data.draw(inputs(net.dim, n=32, scale=3.0))
    norms = torch.linalg.matrix_norm(net.jacobian(x), ord=2)
    assert float(norms.max()) <= bound * (1 + 1e-9) + 1e-12 or math.isinf(bound)


@given(st.data())
def test_lipschitz_bound_is_finite_where_the_architecture_is_lipschitz(data):
    net = data.draw(networks(kinds=["single", "cascade", "strong", "shift"]))
    assert math.isfinite(net.lipschitz_bound())


@given(st.data(), st.floats(0.05, 2.0))
def test_strongly_convex_min_eigenvalue_at_least_mu(data, mu):
    kinds = ["single", "cascade", "modular", "conical", "icnn"]
    inner = data.draw(networks(kinds=kinds, monotone=True))
    net = StronglyConvex(inner, mu)
    x = data.draw(inputs(net.dim))
    jac = net.jacobian(x)
    assert float(min_eigenvalue(jac).min()) >= mu - 1e-10 * max(1.0, float(jac.abs().max()))


@given(st.data(), st.floats(0.05, 1.0))
def test_inverse_of_forward_is_identity(data, mu):
    kinds = ["single", "single-softmax", "cascade", "modular"]
    inner = data.draw(networks(kinds=kinds, monotone=True))
    net = StronglyConvex(inner, mu)
    x = data.draw(inputs(net.dim, n=8, scale=2.0))
    y = net(x)
    for method in ("newton", "newton-cg"):
        xi = net.inverse(y, tol=1e-11, method=method)
        bound = 1e-11 * (1 + y.norm(dim=-1)) / mu
        assert bool(((xi - x).norm(dim=-1) <= 1e3 * bound + 1e-12).all())


@pytest.mark.parametrize("kind", KINDS)
def test_properties_hold_after_training_steps(kind):
    """Structure survives optimization: a few Adam steps on random data, then check."""
    torch.manual_seed(0)
    net = build(kind, 3, 6, 3, True, 3, 0).double()
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    target = torch.randn(64, 3, generator=gen, dtype=torch.float64) * 3
    for _ in range(25):
        loss = ((net(x) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    jac = net.jacobian(x)
    assert float(symmetry_error(jac).max()) < 1e-10
    if net.monotone:
        assert float(min_eigenvalue(jac).min()) >= -1e-10 * max(1.0, float(jac.abs().max()))
    assert torch.allclose(
        jac, autograd_jacobian(net, x), atol=1e-9 * max(1, float(jac.abs().max()))
    )


def test_gradients_reach_every_parameter():
    for net in [
        GradNetC(3, 5, activation="learned"),
        GradNetM(3, 4, activation="wsoftmax"),
        SingleLayerGradNet(3, 4, activation="wtanh"),
    ]:
        net(torch.randn(7, 3)).pow(2).sum().backward()
        for name, p in net.named_parameters():
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


@pytest.mark.parametrize("activation", CASCADE)
def test_cascade_monotone_requires_the_constraints(activation):
    # Cor 11.1 needs alpha, beta >= 0: with a negative output scale the Jacobian is
    # still symmetric (Thm 11) but no longer PSD
    torch.manual_seed(0)
    net = GradNetC(2, 6, 3, monotone=False, activation=activation).double()
    with torch.no_grad():
        net.raw_alpha[-1] = -1.0
    x = torch.randn(50, 2, dtype=torch.float64)
    assert float(min_eigenvalue(net.jacobian(x)).max()) < 0
    assert float(symmetry_error(net.jacobian(x)).max()) < 1e-10


@pytest.mark.parametrize("activation", MODULAR)
def test_paper_parameter_counts(activation):
    assert sum(p.numel() for p in GradNetC(2, 7, layers=4).parameters()) == 100
    if activation == "softmax":
        assert sum(p.numel() for p in GradNetM(2, 7, modules=4).parameters()) == 94


@pytest.mark.parametrize(
    "make",
    [
        lambda: SingleLayerGradNet(8, 32),
        lambda: SingleLayerGradNet(8, 32, activation="softmax"),
        lambda: GradNetC(8, 32),
        lambda: GradNetC(8, 32, activation="wtanh"),
        lambda: GradNetM(8, 16, modules=4),
        lambda: GradNetM(8, 16, modules=4, activation="wsoftmax"),
    ],
)
def test_initialization_is_well_conditioned(make):
    torch.manual_seed(0)
    net = make().double()
    x = torch.randn(256, 8, dtype=torch.float64)
    eig = torch.linalg.eigvalsh(net.jacobian(x))
    cond = eig[..., -1] / eig[..., 0]
    assert abs(float(net.jacobian_trace(torch.zeros(1, 8, dtype=torch.float64))) / 8 - 1) < 1e-6
    assert float(cond.median()) < 20
    assert float(eig.min()) > 0


@given(st.data())
def test_huge_inputs_give_finite_outputs(data):
    net = data.draw(networks(perturbation=False))
    x = data.draw(inputs(net.dim, scale=1e4))
    for out in (net(x), net.potential(x), net.jacobian(x), net.jacobian_trace(x)):
        assert bool(torch.isfinite(out).all())
    if net.monotone and not isinstance(net, StronglyConvex):
        assert bool(torch.isfinite(StronglyConvex(net, 0.1).logdet(x)).all())


def test_float32_default_path():
    net = GradNetC(4, 16)
    x = torch.randn(10, 4)
    assert net(x).dtype == torch.float32
    assert net.potential(x).dtype == torch.float32
    assert net.logdet(x).dtype == torch.float32


def test_torch_func_transforms_compose():
    net = GradNetM(3, 5).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    jac = torch.func.vmap(torch.func.jacrev(net))(x)  # per-sample input of shape (3,)
    assert torch.allclose(jac, net.jacobian(x))
    hess = torch.func.vmap(torch.func.hessian(net.potential))(x)
    assert torch.allclose(hess, net.jacobian(x), atol=1e-10)


def test_icgn_quadrature_converges_to_the_exact_path_integral():
    from otgrad.nn import ICGN

    torch.manual_seed(0)
    exact = ICGN(3, 16, nodes=None).double()
    x = 3 * torch.randn(200, 3, dtype=torch.float64)
    errors = []
    for nodes in (4, 8, 16, 32):
        quad = ICGN(3, 16, nodes=nodes).double()
        quad.load_state_dict(exact.state_dict())
        errors.append(float((quad(x) - exact(x)).abs().max()))
    assert errors[-1] < 1e-10 < errors[0]
    assert all(b < a for a, b in zip(errors, errors[1:], strict=False))
    assert not quad.monotone and exact.monotone
