"""ConvexPotentialFlow, FlowNetwork, ActNorm, FlowDistribution and logdet_cg through their
public interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch.distributions import Distribution, Normal

from otgrad import io
from otgrad.calculus import logdet_cg
from otgrad.data import sample_toy2d
from otgrad.flows import (
    ActNorm,
    ConvexPotentialFlow,
    FlowDistribution,
    FlowNetwork,
    block_networks,
)
from otgrad.nn import GradNetC

F64 = torch.float64
KINDS = [(net, linear) for net in ("cascade", "modular", "single") for linear in (True, False)]


@pytest.fixture(scope="module")
def data():
    return sample_toy2d("8gaussians", 2000, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    flow = ConvexPotentialFlow(
        2, blocks=2, hidden=8, mu=0.1, steps=100, dtype=F64, device="cpu", seed=0, progress=False
    )
    return flow.fit(data)


def random_flow(net="cascade", linear=True, dim=2, seed=0, scale=0.2, **kwargs):
    """A float64 flow network with initialized ActNorms and randomly perturbed parameters."""
    torch.manual_seed(seed)
    flow = FlowNetwork(dim, block_networks(net, dim, blocks=2, hidden=8), linear=linear, **kwargs)
    flow.double()
    flow.initialize(torch.randn(256, dim, dtype=F64) @ torch.randn(dim, dim, dtype=F64) + 1)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn_like(p))
    return flow


def grid_mass(flow, half_width, cells):
    edges = np.linspace(-half_width, half_width, cells + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    xx, yy = np.meshgrid(centers, centers)
    lp = flow.log_prob(np.stack([xx.ravel(), yy.ravel()], -1))
    return float(np.exp(lp).sum() * (2 * half_width / cells) ** 2)


def flat_grads(loss, params):
    grads = torch.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
    return torch.cat([g.flatten() for g in grads])


# ---------------------------------------------------------------------- density


def test_log_prob_integrates_to_one(fitted):
    # the fitted density (8 modes at radius ~2.8) has tails well inside [-12, 12]^2: the
    # mass there is 1 - 1e-4 (and 1 - 3e-6 on [-16, 16]^2); [-8, 8]^2 still misses ~5e-3
    assert fitted.history_.steps == 100
    small, large = grid_mass(fitted, 8.0, 400), grid_mass(fitted, 12.0, 600)
    assert abs(small - 1) < 1e-2
    assert abs(large - 1) < 1e-3
    assert small < large  # the missing mass is in the tails, not a wrong normalization


def test_sample_and_log_prob_agree_with_the_forward_map(fitted):
    x = fitted.sample(256, seed=1, tol=1e-12)
    assert x.shape == (256, 2) and x.dtype == F64 and bool(torch.isfinite(x).all())
    net = fitted.flow_
    z, ladj = net(x)
    expected = Normal(0.0, 1.0).log_prob(z).sum(-1) + ladj
    torch.testing.assert_close(fitted.log_prob(x), expected, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(net.inverse(z, tol=1e-12), x, atol=1e-9, rtol=0)
    torch.testing.assert_close(fitted.transform(x), z, atol=1e-12, rtol=0)
    torch.testing.assert_close(fitted.inverse_transform(z, tol=1e-12), x, atol=1e-9, rtol=0)
    # default tolerances, and the seed fixes the samples
    y = fitted.sample(64, seed=2)
    torch.testing.assert_close(net.inverse(net(y)[0]), y, atol=1e-4, rtol=0)
    assert torch.equal(y, fitted.sample(64, seed=2))
    assert not torch.equal(y, fitted.sample(64, seed=3))
    assert fitted.sample((3, 4), seed=0).shape == (3, 4, 2)


@pytest.mark.parametrize("which", ["fitted", "cascade", "modular", "single"])
def test_inversion_residual(fitted, which):
    flow = fitted.flow_ if which == "fitted" else random_flow(which, seed=1)
    z = 2 * torch.randn(512, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    x = flow.inverse(z)
    with torch.no_grad():
        residual = (flow(x)[0] - z).norm(dim=-1) / z.norm(dim=-1).clamp_min(1.0)
        assert float(residual.max()) < 1e-5


@pytest.mark.parametrize("net,linear", KINDS)
def test_exact_logdet_equals_autograd_slogdet(net, linear):
    flow = random_flow(net, linear, seed=2)
    x = 2 * torch.randn(16, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    _, ladj = flow(x)
    jac = torch.func.vmap(torch.func.jacrev(lambda xi: flow(xi[None])[0][0]))(x)
    sign, ref = torch.linalg.slogdet(jac)
    assert bool((sign > 0).all())
    torch.testing.assert_close(ladj, ref, atol=1e-8, rtol=1e-8)


# ---------------------------------------------------------------------- stochastic log-det


def test_stochastic_logdet_is_unbiased_in_value_and_gradient():
    torch.manual_seed(0)
    stoch = random_flow("cascade", dim=3, seed=3, logdet="stochastic").train()
    exact = random_flow("cascade", dim=3, seed=3, logdet="exact")
    exact.load_state_dict(stoch.state_dict())
    x = torch.randn(8, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    _, ref = exact(x)
    with torch.no_grad():  # without gradients the stochastic mode is exact
        torch.testing.assert_close(stoch(x)[1], ref, atol=1e-12, rtol=0)
    # each repeated row gets its own Rademacher probe: R independent estimates per point
    reps = 1000
    _, est = stoch(x.repeat(reps, 1))
    est = est.reshape(reps, 8)
    spread = est.detach().std(0)
    assert float(spread.min()) > 0  # really stochastic
    mean, stderr = est.detach().mean(0), spread / math.sqrt(reps)
    assert float(((mean - ref.detach()).abs() / stderr).max()) < 5
    # the CG surrogate's gradient, averaged over probes, is the exact gradient
    g_est = flat_grads(est.mean(0).sum(), list(stoch.parameters()))
    g_ref = flat_grads(ref.sum(), list(exact.parameters()))
    cosine = float(g_est @ g_ref / (g_est.norm() * g_ref.norm()))
    assert cosine > 0.99
    assert float((g_est - g_ref).norm() / g_ref.norm()) < 0.1


def test_auto_logdet_turns_stochastic_above_128_dimensions_unless_the_rank_is_low():
    # hidden 8 (rank 8 < d): the determinant lemma stays exact at any d; with the linear
    # part (rank d + 8) the estimate turns stochastic above d = 128
    for dim, linear, stochastic in ((128, True, False), (129, True, True), (129, False, False)):
        flow = random_flow("single", linear=linear, dim=dim, seed=0, scale=0.05)
        x = torch.randn(4, dim, dtype=F64)
        with torch.no_grad():
            exact = flow(x)[1]
        differs = not torch.allclose(flow(x)[1], exact, atol=1e-10, rtol=0)
        assert differs == stochastic


@pytest.mark.parametrize("dim", [1, 2, 5, 12])
def test_logdet_cg_quadrature_is_exact_with_d_steps(dim):
    gen = torch.Generator().manual_seed(dim)
    b = torch.randn(6, dim, dim, dtype=F64, generator=gen)
    a = b @ b.mT / dim + 0.1 * torch.eye(dim, dtype=F64)
    lam, u = torch.linalg.eigh(a)
    log_a = u @ torch.diag_embed(lam.log()) @ u.mT
    v = torch.randn(6, dim, dtype=F64, generator=gen)

    def matvec(p):
        return torch.einsum("nij,nj->ni", a, p)

    est, w = logdet_cg(matvec, v, tol=1e-14, max_iter=dim)
    torch.testing.assert_close(est, torch.einsum("ni,nij,nj->n", v, log_a, v), atol=1e-10, rtol=0)
    est, w = logdet_cg(matvec, v, tol=1e-14, max_iter=3 * dim)  # finite precision: more steps
    torch.testing.assert_close(matvec(w), v, atol=1e-9, rtol=0)
    torch.testing.assert_close(w, torch.linalg.solve(a, v), atol=1e-8, rtol=0)


def test_logdet_cg_tolerance_mixed_convergence_and_validation():
    gen = torch.Generator().manual_seed(0)
    dim = 40
    b = torch.randn(3, dim, dim, dtype=F64, generator=gen)
    a = b @ b.mT / dim + 0.5 * torch.eye(dim, dtype=F64)
    v = torch.randn(3, dim, dtype=F64, generator=gen).requires_grad_()

    def matvec(p):
        return torch.einsum("nij,nj->ni", a, p)

    lam, u = torch.linalg.eigh(a)
    ref = torch.einsum(
        "ni,nij,nj->n", v.detach(), u @ torch.diag_embed(lam.log()) @ u.mT, v.detach()
    )
    for tol in (1e-2, 1e-4):
        est, w = logdet_cg(matvec, v, tol=tol, max_iter=dim)
        assert not est.requires_grad and not w.requires_grad
        residual = (matvec(w) - v.detach()).norm(dim=-1) / v.detach().norm(dim=-1)
        assert float(residual.max()) <= tol
        assert float((est - ref).abs().max()) < 100 * tol * float(ref.abs().max())
    # rows converging at different steps (an eigenvector converges in one) in one batch
    diag = torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0, 8.0], dtype=F64)
    eye = torch.eye(6, dtype=F64)
    probes = torch.stack([3 * eye[2], torch.ones(6, dtype=F64), eye[0], diag.flip(0)])
    est, w = logdet_cg(lambda p: p * diag, probes, tol=1e-14, max_iter=6)
    torch.testing.assert_close(est, (probes**2 * diag.log()).sum(-1), atol=1e-12, rtol=0)
    torch.testing.assert_close(w, probes / diag, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="probes"):
        logdet_cg(lambda p: p, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="max_iter"):
        logdet_cg(lambda p: p, torch.ones(2, 3, dtype=F64), max_iter=0)


# ---------------------------------------------------------------------- gradients


@pytest.mark.parametrize("net,linear", KINDS)
def test_gradients_reach_every_parameter(data, net, linear):
    torch.manual_seed(0)
    flow = FlowNetwork(2, block_networks(net, 2, blocks=2, hidden=8), linear=linear).double()
    x = torch.as_tensor(data)
    flow.initialize(x[:1000])
    # on the initialization batch itself the last ActNorm is at its Gaussian maximum
    # likelihood (standardized output): its gradients vanish there, legitimately
    (-flow.log_prob(x[:1000]).mean()).backward()
    last = flow.norms[-1]
    assert float(last.loc.grad.abs().max()) < 1e-10
    assert float(last.log_scale.grad.abs().max()) < 1e-10
    flow.zero_grad()
    (-flow.log_prob(x[1000:1256]).mean()).backward()  # a generic batch
    for name, p in flow.named_parameters():
        assert p.grad is not None, name
        assert bool(torch.isfinite(p.grad).all()), name
        assert bool((p.grad != 0).all()), name


def test_rsample_is_differentiable_and_matches_finite_differences():
    flow = random_flow("cascade", seed=4, scale=0.1)
    params = dict(flow.named_parameters())
    x = flow.rsample(16, seed=3, tol=1e-12)
    torch.testing.assert_close(x.detach(), flow.sample(16, seed=3, tol=1e-12), atol=1e-9, rtol=0)
    assert x.requires_grad
    grads = torch.autograd.grad(x.sum(), list(params.values()))
    assert all(bool(torch.isfinite(g).all()) for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    h = 1e-5
    names = ["blocks.0.net.nets.1.weight", "blocks.1.net.nets.1.bias", "norms.1.log_scale"]
    for name in names:
        p, g = params[name], grads[list(params).index(name)]
        idx = (0,) * p.dim()
        with torch.no_grad():
            old = float(p[idx])
            p[idx] = old + h
            up = flow.sample(16, seed=3, tol=1e-13).sum()
            p[idx] = old - h
            down = flow.sample(16, seed=3, tol=1e-13).sum()
            p[idx] = old
        fd = float((up - down) / (2 * h))
        assert abs(fd - float(g[idx])) < 1e-6 * max(1.0, abs(fd)), name


# ---------------------------------------------------------------------- files


def test_save_load_round_trip(fitted, data, tmp_path):
    fitted.save(tmp_path / "f.pt")
    loaded = ConvexPotentialFlow.load(tmp_path / "f.pt")
    assert isinstance(loaded, ConvexPotentialFlow)
    assert loaded.get_params() == {**fitted.get_params(), "device": "cpu"}
    assert loaded.mu == 0.1 and next(loaded.flow_.parameters()).dtype == F64
    np.testing.assert_array_equal(loaded.log_prob(data[:50]), fitted.log_prob(data[:50]))
    assert torch.equal(loaded.sample(8, seed=0), fitted.sample(8, seed=0))
    # a list of networks, no linear part, stochastic mode: all restored
    nets = [GradNetC(2, 8), GradNetC(2, 4, layers=3)]
    flow = ConvexPotentialFlow(
        2, net=nets, linear=False, logdet="stochastic", steps=2, dtype=F64, seed=0, progress=False
    ).fit(data[:200])
    flow.save(tmp_path / "g.pt")
    again = ConvexPotentialFlow.load(tmp_path / "g.pt")
    net = again.flow_
    assert net.logdet_mode == "stochastic" and not net.linear and len(net.blocks) == 2
    np.testing.assert_array_equal(again.log_prob(data[:50]), flow.log_prob(data[:50]))


def test_load_rejects_corrupt_and_foreign_files(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(np.random.default_rng(0).bytes(1000))
    foreign = tmp_path / "regularizer.pt"
    io.save(GradNetC(2, 8), foreign, metadata={"estimator": "ConvexRegularizer"})
    flow_file = tmp_path / "flow.pt"
    ConvexPotentialFlow(2, blocks=1, hidden=8, steps=1, progress=False).fit(
        np.random.default_rng(0).normal(size=(20, 2))
    ).save(flow_file)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(flow_file.read_bytes()[:200])
    for path in (corrupt, foreign, truncated):
        with pytest.raises(ValueError):
            ConvexPotentialFlow.load(path)


# ---------------------------------------------------------------------- errors


def test_clear_errors_on_bad_input(data):
    with pytest.raises(RuntimeError, match="not fitted"):
        ConvexPotentialFlow(2).log_prob(data[:3])
    flow = ConvexPotentialFlow(2, blocks=1, hidden=8, steps=1, progress=False).fit(data)
    with pytest.raises(ValueError, match="x"):
        flow.log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="X"):
        flow.log_prob(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x"):
        flow.flow_(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="z"):
        flow.flow_.inverse(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="Z"):
        flow.inverse_transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="NaN"):
        flow.log_prob(np.array([[0.0, np.nan]]))
    with pytest.raises(TypeError, match="dtype"):
        flow.log_prob(torch.zeros(3, 2, dtype=F64))
    with pytest.raises(TypeError):
        flow.log_prob(torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="monotone"):
        ConvexPotentialFlow(2, net=[GradNetC(2, 8, monotone=False)])
    with pytest.raises(ValueError, match="dim"):
        ConvexPotentialFlow(2, net=[GradNetC(3, 8)])
    with pytest.raises(ValueError):
        ConvexPotentialFlow(2, net=[])
    with pytest.raises(TypeError):
        ConvexPotentialFlow(2, net=[torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="logdet"):
        ConvexPotentialFlow(2, logdet="bogus")
    with pytest.raises(ValueError, match="net"):
        ConvexPotentialFlow(2, net="bogus")
    for kwargs in ({"mu": 0}, {"mu": float("nan")}, {"blocks": 0}, {"hidden": 0}):
        with pytest.raises(ValueError):
            ConvexPotentialFlow(2, **kwargs)
    for kwargs in ({"steps": 0}, {"lr": -1.0}, {"val_fraction": 1.0}, {"seed": -1}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            ConvexPotentialFlow(2, **kwargs)
    with pytest.raises(TypeError, match="dtype"):
        ConvexPotentialFlow(2, dtype=torch.float16)
    bad = data[:10].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        flow.fit(bad)
    with pytest.raises(ValueError, match="X"):
        flow.fit(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="X"):
        flow.fit(np.zeros(10))
    with pytest.raises(ValueError, match="n"):
        flow.sample(0)
    with pytest.raises(TypeError):
        FlowDistribution(GradNetC(2, 8))


# ---------------------------------------------------------------------- interfaces


def test_numpy_in_numpy_out_and_tensor_gradients(data):
    flow = ConvexPotentialFlow(2, blocks=2, hidden=8, steps=5, seed=0, progress=False).fit(data)
    for x in (data[:7], data[:7].astype(np.float32)):
        out = flow.log_prob(x)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (7,)
    xt = torch.tensor(data[:7], dtype=torch.float32, requires_grad=True)
    lp = flow.log_prob(xt)
    assert isinstance(lp, torch.Tensor) and lp.requires_grad and lp.dtype == torch.float32
    np.testing.assert_allclose(lp.detach().numpy(), flow.log_prob(data[:7]), rtol=1e-6, atol=1e-6)
    (grad,) = torch.autograd.grad(lp.sum(), xt)
    assert grad.shape == (7, 2) and bool(torch.isfinite(grad).all())
    assert flow.log_prob(torch.zeros(3, 4, 2)).shape == (3, 4)


def test_distribution_interface(fitted):
    dist = fitted.distribution()
    assert isinstance(dist, Distribution) and isinstance(dist, FlowDistribution)
    assert dist.event_shape == (2,) and dist.batch_shape == () and dist.has_rsample
    assert dist.sample((5,)).shape == (5, 2) and dist.sample().shape == (2,)
    r = dist.rsample((3, 4))
    assert r.shape == (3, 4, 2) and r.requires_grad
    x = fitted.sample(5, seed=0)
    torch.testing.assert_close(dist.log_prob(x), fitted.log_prob(x))


def test_actnorm_data_dependent_init_and_inverse():
    x = 3 * torch.randn(1000, 3, generator=torch.Generator().manual_seed(0)) + 5
    norm = ActNorm(3)
    assert not bool(norm.initialized)
    y, ladj = norm(x)  # first call in training mode initializes
    assert bool(norm.initialized)
    torch.testing.assert_close(y.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(ladj, -x.std(0, unbiased=False).log().sum().expand(1000))
    torch.testing.assert_close(norm.inverse(y), x, atol=1e-4, rtol=0)
    loc = norm.loc.detach().clone()
    norm(x[:10] + 100)  # later calls do not re-initialize
    assert torch.equal(norm.loc.detach(), loc)
    fresh = ActNorm(3).eval()
    y, ladj = fresh(x)  # in eval mode an uninitialized ActNorm is the identity
    assert torch.equal(y, x) and not bool(fresh.initialized) and bool((ladj == 0).all())
    with pytest.raises(ValueError):
        ActNorm(3).initialize(x[:1])


@pytest.mark.parametrize("logdet", ["auto", "stochastic"])
def test_fit_is_reproducible_and_leaves_the_global_rng_alone(data, logdet):
    flow = ConvexPotentialFlow(2, blocks=2, hidden=8, logdet=logdet, steps=20, seed=3)
    twin, other = clone(flow), clone(flow).set_params(seed=4)
    state = torch.get_rng_state()
    flow.fit(data)
    twin.fit(data)
    assert torch.equal(torch.get_rng_state(), state)
    other.fit(data)
    for name, a in flow.flow_.state_dict().items():
        assert torch.equal(a, twin.flow_.state_dict()[name]), name
    pairs = zip(flow.flow_.parameters(), other.flow_.parameters(), strict=True)
    assert not all(torch.equal(a, c) for a, c in pairs)
    assert flow.history_.train_loss == twin.history_.train_loss


def test_log_prob_is_full_precision_under_autocast():
    flow = random_flow("modular", dim=3).float()
    x = torch.randn(64, 3)
    with torch.no_grad():
        exact = flow.log_prob(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = flow.log_prob(x)
    torch.testing.assert_close(mixed, exact)
