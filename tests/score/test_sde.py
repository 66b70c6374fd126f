"""Samplers and likelihoods against a model whose score is exactly Gaussian: for data
N(0, I), the noised density is N(0, (1 + sigma^2) I), whose score -x / (1 + sigma^2) is
the models' skip term alone."""

from __future__ import annotations

import math

import pytest
import torch

from otgrad.score import (
    NoiseConditionalGradNet,
    NoiseConditionalMLP,
    VESchedule,
    VPSchedule,
    annealed_langevin,
    grid_log_prob,
    langevin,
    ode_log_prob,
    predictor_corrector,
    probability_flow,
    reverse_sde,
)


def gaussian_model(d: int) -> NoiseConditionalGradNet:
    net = NoiseConditionalGradNet(d, hidden=4, modules=2).double()
    M, h = 2, 4
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias[M * h :].zero_()  # a = 0, rho = 0, c = 0: the skip term alone
    return net


def log_normal(x: torch.Tensor, var: float) -> torch.Tensor:
    d = x.shape[-1]
    return -0.5 * (x**2).sum(-1) / var - 0.5 * d * math.log(2 * math.pi * var)


@pytest.mark.parametrize("schedule", [VESchedule(0.01, 20.0), VPSchedule()], ids=["ve", "vp"])
@pytest.mark.parametrize("trace", ["exact", "autograd"])
def test_ode_likelihood_of_an_exact_gaussian_score_matches_the_closed_form(schedule, trace):
    torch.manual_seed(0)
    net = gaussian_model(3)
    x = 1.5 * torch.randn(32, 3, dtype=torch.float64)
    lp, nfe = ode_log_prob(net, schedule, x, trace=trace, rtol=1e-7, atol=1e-7)
    sigma = float(schedule.noise_level(torch.tensor(schedule.t_min, dtype=torch.float64)))
    a = float(schedule.alpha(torch.tensor(schedule.t_min, dtype=torch.float64)))
    # x_t = a x0 + sigma_t eps with x0 ~ N(0, I): variance a^2 (1 + sigma~^2)
    torch.testing.assert_close(lp, log_normal(x, a**2 * (1 + sigma**2)), rtol=0, atol=1e-5)
    assert nfe > 0


def test_grid_log_prob_of_an_exact_gaussian_matches_the_closed_form():
    net = gaussian_model(2)
    x = torch.randn(50, 2, dtype=torch.float64)
    lp = grid_log_prob(net, x, 0.3, (-8, 8, -8, 8), resolution=400)
    torch.testing.assert_close(lp, log_normal(x, 1.09), rtol=0, atol=1e-6)


def test_mala_leaves_a_known_gaussian_invariant_and_ula_does_not():
    torch.manual_seed(0)
    net = gaussian_model(2)
    sigma, var, n, h = 1.0, 2.0, 20000, 1.5
    x0 = math.sqrt(var) * torch.randn(n, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    xm, rate = langevin(net, x0, sigma, h, 30, metropolis=True, generator=gen)
    xu, rate_u = langevin(net, x0, sigma, h, 30, metropolis=False, generator=gen)
    se = var * math.sqrt(2 / n)  # standard error of a variance estimate
    assert abs(float(xm.var(0).mean()) - var) < 4 * se
    assert abs(float(xm.mean())) < 4 * math.sqrt(var / n)
    assert 0.3 < rate < 0.99 and rate_u == 1.0
    # ULA's stationary variance is var / (1 - h / (2 var)) = 3.2: detectably biased
    assert float(xu.var(0).mean()) > var + 20 * se


@pytest.mark.parametrize("sampler", ["sde", "pc", "ode", "langevin"])
@pytest.mark.parametrize("schedule", [VESchedule(0.01, 20.0), VPSchedule()], ids=["ve", "vp"])
def test_samplers_reach_the_gaussian(sampler, schedule):
    torch.manual_seed(0)
    net = gaussian_model(2)
    n = 2000
    std = schedule.prior_std(1.0)
    x1 = std * torch.randn(n, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    if sampler == "sde":
        x = reverse_sde(net, schedule, x1, 100, generator=gen)
    elif sampler == "pc":
        x = predictor_corrector(net, schedule, x1, 50, generator=gen)
    elif sampler == "ode":
        x = probability_flow(net, schedule, x1)
    else:
        ts = torch.linspace(1.0, schedule.t_min, 20, dtype=torch.float64)
        x, _ = annealed_langevin(net, x1, schedule.noise_level(ts), 10, 1e-4, True, gen)
    t0 = torch.tensor(schedule.t_min, dtype=torch.float64)
    a = float(schedule.alpha(t0)) if sampler != "langevin" else 1.0
    target = a * math.sqrt(1 + float(schedule.noise_level(t0)) ** 2)
    assert abs(float(x.std(0).mean()) / target - 1) < 0.05
    assert abs(float(x.mean())) < 0.1


def test_mala_needs_a_conservative_model():
    net = NoiseConditionalMLP(2).double()
    with pytest.raises(ValueError, match="conservative"):
        langevin(net, torch.zeros(3, 2, dtype=torch.float64), 0.1, 0.01, 2, metropolis=True)
    with pytest.raises(ValueError, match="potential"):
        grid_log_prob(net, torch.zeros(3, 2, dtype=torch.float64), 0.1, (-1, 1, -1, 1))
    with pytest.raises(ValueError, match="steps"):
        reverse_sde(gaussian_model(2), VESchedule(), torch.zeros(3, 2, dtype=torch.float64), 0)


def test_schedules_validate_and_agree_with_their_definitions():
    with pytest.raises(ValueError, match="sigma_max"):
        VESchedule(1.0, 0.5)
    with pytest.raises(ValueError, match="sigma_min"):
        VESchedule(-1.0, 0.5)
    with pytest.raises(ValueError, match="t_min"):
        VPSchedule(t_min=2.0)
    t = torch.linspace(0.01, 1, 7, dtype=torch.float64)
    for s in (VESchedule(0.01, 20.0), VPSchedule()):
        # g^2 = d sigma_t^2 / dt - 2 f sigma_t^2 (the forward SDE's variance equation)
        var = lambda u, s=s: s.sigma(u) ** 2  # noqa: E731
        dvar = torch.func.vmap(torch.func.grad(var))(t)
        torch.testing.assert_close(s.g2(t), dvar - 2 * s.drift_coef(t) * var(t))
        torch.testing.assert_close(s.noise_level(t), s.sigma(t) / s.alpha(t))
