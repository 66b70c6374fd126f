"""Noise-conditional score models: conservative at every noise level (float64, random
widths, parameters, noise levels and inputs), closed-form calculus equal to autograd."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from otgrad.calculus import symmetry_error
from otgrad.score import (
    NoiseConditionalDeepGradNet,
    NoiseConditionalGradMLP,
    NoiseConditionalGradNet,
    NoiseConditionalMLP,
    NoiseConditionalTwoLayerGradNet,
    build_score_model,
)

GRADNETS = (NoiseConditionalGradNet, NoiseConditionalTwoLayerGradNet, NoiseConditionalDeepGradNet)


@st.composite
def gradnets(draw):
    torch.manual_seed(draw(st.integers(0, 2**31 - 1)))
    d = draw(st.integers(1, 5))
    kind = draw(st.sampled_from(GRADNETS))
    depth = {"layers": draw(st.integers(1, 3))} if kind is NoiseConditionalDeepGradNet else {}
    net = kind(
        d,
        hidden=draw(st.integers(1, 6)),
        modules=draw(st.integers(1, 4)),
        embedding=8,
        width=8,
        **depth,
    ).double()
    with torch.no_grad():  # random heads: the noise level then changes every module
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net


def _inputs(draw, d, n=None):
    n = n or draw(st.integers(1, 4))
    x = 2 * torch.randn(n, d, dtype=torch.float64)
    log_sigma = draw(st.floats(-4.6, 3.0))
    return x, float(torch.tensor(log_sigma).exp())


def _autograd_jacobian(f, x):
    return torch.func.vmap(torch.func.jacrev(lambda xi: f(xi[None])[0]))(x)


@given(st.data())
def test_gradnet_is_a_gradnet_at_every_noise_level(data):
    net = data.draw(gradnets())
    x, sigma = _inputs(data.draw, net.dim)
    field = net.at(sigma)
    jac = field.jacobian(x)
    assert float(symmetry_error(jac).detach().max()) < 1e-10
    auto = _autograd_jacobian(lambda y: net(y, sigma), x)
    torch.testing.assert_close(jac, auto, rtol=1e-9, atol=1e-9)
    # the potential is the energy: its gradient is the score
    grad = torch.func.grad(lambda y: net.potential(y, sigma).sum())(x)
    torch.testing.assert_close(grad, net(x, sigma), rtol=1e-9, atol=1e-9)
    # closed-form trace and Jacobian-vector product
    torch.testing.assert_close(
        net.jacobian_trace(x, sigma), auto.diagonal(dim1=-2, dim2=-1).sum(-1), rtol=1e-9, atol=1e-9
    )
    v = torch.randn_like(x)
    torch.testing.assert_close(
        field.jvp(x, v), (auto @ v[..., None])[..., 0], rtol=1e-9, atol=1e-9
    )


@given(st.data())
def test_score_and_potential_in_one_pass_equal_the_separate_calls(data):
    net = data.draw(gradnets())
    x, sigma = _inputs(data.draw, net.dim)
    score, psi = net._score_and_potential(x, torch.full(x.shape[:-1], sigma, dtype=x.dtype))
    torch.testing.assert_close(score, net(x, sigma), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(psi, net.potential(x, sigma), rtol=1e-12, atol=1e-12)


@given(st.data())
def test_the_sampling_path_equals_the_training_path(data):
    # without a graph the score runs with in-place elementwise operations
    net = data.draw(gradnets())
    x, sigma = _inputs(data.draw, net.dim, n=5)
    per_point = torch.exp(torch.empty(5, dtype=torch.float64).uniform_(-4, 3))
    for level in (sigma, per_point):
        with torch.no_grad():
            fast = net(x, level)
        torch.testing.assert_close(fast, net(x, level), rtol=1e-12, atol=1e-12)


@given(st.data())
def test_one_noise_level_per_point_equals_the_fixed_level_view(data):
    net = data.draw(gradnets())
    n = 3
    x = torch.randn(n, net.dim, dtype=torch.float64)
    sigmas = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(-4, 3))
    batched = net(x, sigmas)
    for i in range(n):
        torch.testing.assert_close(batched[i], net.at(float(sigmas[i]))(x[i : i + 1])[0])


def test_gradmlp_is_symmetric_and_the_mlp_is_not():
    torch.manual_seed(0)
    x = torch.randn(16, 3, dtype=torch.float64)
    grad_mlp = NoiseConditionalGradMLP(3, hidden=16).double()
    mlp = NoiseConditionalMLP(3, hidden=16).double()
    jac = grad_mlp.at(0.5).jacobian(x)
    assert float(symmetry_error(jac).max()) < 1e-10
    jm = _autograd_jacobian(lambda y: mlp(y, 0.5), x)
    assert float(symmetry_error(jm).max()) > 1e-3  # the check above can fail
    with pytest.raises(ValueError, match="not conservative"):
        mlp.at(0.5)
    with pytest.raises(NotImplementedError):
        mlp.potential(x, 0.5)


@pytest.mark.parametrize("kind", GRADNETS)
@pytest.mark.parametrize("method", ["autograd", "hutchinson"])
def test_trace_methods_agree_with_the_closed_form(method, kind):
    torch.manual_seed(1)
    net = kind(4).double()
    x = torch.randn(1, 4, dtype=torch.float64).expand(4000, 4)
    exact = net.jacobian_trace(x, 0.3)
    other = net.jacobian_trace(x, 0.3, method=method)
    if method == "autograd":
        torch.testing.assert_close(other, exact)
    else:  # unbiased: the mean over many probes approaches the trace
        spread = float(other.std()) / 4000**0.5
        assert abs(float(other.mean() - exact[0])) < 5 * spread


def test_bad_input_names_the_argument():
    net = build_score_model("gradnet", 2)
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="sigma must be positive"):
        net(x, 0.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        net(x, torch.tensor([0.1, float("nan"), 0.1, 0.1]))
    with pytest.raises(ValueError, match="does not broadcast"):
        net(x, torch.ones(3))
    with pytest.raises(TypeError, match="sigma"):
        net(x, "0.1")
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        net(torch.randn(4, 3), 0.1)
    with pytest.raises(TypeError, match="dtype"):
        net(x.double(), 0.1)
    with pytest.raises(ValueError, match="NaN"):
        net(torch.full((2, 2), float("nan")), 0.1)
    with pytest.raises(ValueError, match="kind"):
        build_score_model("unet", 2)
    for kind in GRADNETS:
        with pytest.raises(ValueError, match="hidden"):
            kind(2, hidden=0)
        with pytest.raises(ValueError, match="modules"):
            kind(2, modules=-1)
    with pytest.raises(ValueError, match="sigma"):
        net.at(-1.0)
