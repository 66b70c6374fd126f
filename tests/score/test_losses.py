"""Score-matching objectives: denoising decreases when training, and the three objectives
differ by a constant (DSM = 2 ISM = 2 SSM + const for the same noise levels)."""

from __future__ import annotations

import torch

from otgrad.score import (
    NoiseConditionalGradNet,
    NoiseConditionalMLP,
    VESchedule,
    dsm_loss,
    implicit_score_matching_loss,
    sliced_score_matching_loss,
)
from otgrad.train import fit

from .test_sde import gaussian_model


def test_dsm_loss_decreases_on_a_small_problem():
    torch.manual_seed(0)
    centers = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    data = centers[torch.randint(2, (4000,))] + 0.2 * torch.randn(4000, 2)
    sched = VESchedule(0.01, 10.0)
    net = NoiseConditionalGradNet(2, hidden=8, modules=8)

    def held_out() -> float:
        gen = torch.Generator().manual_seed(123)
        with torch.no_grad():
            return float(dsm_loss(net, data[:2000], sched, gen))

    before = held_out()
    fit(
        net,
        lambda m, x, g: dsm_loss(m, x, sched, g),
        lambda g: (data[torch.randint(4000, (256,), generator=g)], g),
        epochs=3,
        steps_per_epoch=100,
        lr=3e-3,
        seed=0,
    )
    assert held_out() < 0.85 * before


def test_the_three_objectives_differ_by_a_constant():
    # Gaussian data: the exact model A minimizes all three; B is A perturbed
    torch.manual_seed(0)
    x0 = torch.randn(100_000, 2, dtype=torch.float64)
    sched = VESchedule(0.5, 0.5 + 1e-9)  # one noise level
    a = gaussian_model(2)
    b = gaussian_model(2)
    with torch.no_grad():
        b.head.bias[10:12].fill_(0.5)  # module scales a_m != 0 (after b: 8, log beta: 2)
    diffs = {}
    for name, loss in (
        ("dsm", dsm_loss),
        ("ism", implicit_score_matching_loss),
        ("ssm", sliced_score_matching_loss),
    ):
        with torch.no_grad() if name != "ism" else torch.enable_grad():
            la = float(loss(a, x0, sched, torch.Generator().manual_seed(1)))
            lb = float(loss(b, x0, sched, torch.Generator().manual_seed(1)))
        diffs[name] = lb - la
    assert diffs["dsm"] > 0.05  # B is measurably worse
    assert abs(2 * diffs["ism"] / diffs["dsm"] - 1) < 0.1
    assert abs(2 * diffs["ssm"] / diffs["dsm"] - 1) < 0.15


def test_objectives_give_gradients_for_models_without_closed_forms():
    torch.manual_seed(0)
    net = NoiseConditionalMLP(2, hidden=16)
    x0 = torch.randn(64, 2)
    for loss in (implicit_score_matching_loss, sliced_score_matching_loss):
        net.zero_grad()
        loss(net, x0, VESchedule()).backward()
        assert all(p.grad is not None for p in net.net.parameters())
