from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from otgrad.inverse import ConvexRegularizer, Denoising, RegularizerNetwork, noisy_copies
from otgrad.nn import ConvGradNet


def _reg(lmbda=2.0, mu=1.5):
    torch.manual_seed(0)
    return RegularizerNetwork(ConvGradNet((1, 4, 8), 3, knots=11), lmbda=lmbda, mu=mu).double()


def _images(n=3, size=48, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    return [np.clip(0.5 + 0.4 * np.sin(6 * xx + k) * (yy > 0.3 * k), 0, 1) for k in range(n)] + [
        rng.uniform(size=(size, size)) * 0.1
    ]


def test_gradient_is_the_gradient_of_the_value():
    reg = _reg()
    x = torch.rand(2, 1, 10, 10, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(reg.value(x).sum(), x)
    assert torch.allclose(g, reg.grad(x.detach()), atol=1e-10)


def test_hessian_psd_and_lipschitz():
    reg = _reg()
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    n = 36
    cols = [
        reg.hvp(x, torch.eye(n, dtype=torch.float64)[i].reshape(1, 1, 6, 6)).reshape(-1)
        for i in range(n)
    ]
    H = torch.stack(cols, 1)
    eig = torch.linalg.eigvalsh(0.5 * (H + H.T))
    assert torch.allclose(H, H.T, atol=1e-10)
    assert float(eig.min()) > -1e-10
    assert float(eig.max()) <= reg.lipschitz_bound()


def test_rejects_non_monotone_and_bad_strengths():
    for cls in (RegularizerNetwork, ConvexRegularizer):
        with pytest.raises(ValueError, match="monotone"):
            cls(ConvGradNet((1, 2, 4), 3, monotone=False))
        with pytest.raises(ValueError, match="lmbda"):
            cls(ConvGradNet((1, 2, 4), 3), lmbda=-1.0)
        with pytest.raises(TypeError, match="net"):
            cls("crr")
    with pytest.raises(ValueError, match="t_steps"):
        ConvexRegularizer(t_steps=0)
    with pytest.raises(ValueError, match="loss"):
        ConvexRegularizer(loss="l2")
    with pytest.raises(RuntimeError, match="not fitted"):
        ConvexRegularizer().grad(torch.rand(1, 1, 4, 4))


def test_a_long_run_in_sessions_equals_one_run(tmp_path):
    """With a checkpoint, ``time_limit`` is a session's length: the schedule is kept, each
    ``fit`` continues the run, and the end is bit-identical to an uninterrupted run."""
    settings = dict(sigma=25.0, t_steps=2, iterations=40, epochs=20, batch_size=4, patch=16)

    def regularizer(**options):
        torch.manual_seed(0)
        net = ConvGradNet((1, 2, 4), kernel_size=3, knots=7)
        return ConvexRegularizer(net, seed=0, progress=False, **settings, **options)

    reference = regularizer().fit(_images())
    sessions = regularizer(time_limit=0.05, checkpoint=str(tmp_path / "state.pt"))
    calls = 0
    while calls < 40 and not (calls and sessions.history_.finished):
        sessions.fit(_images())  # each call ends at least one epoch
        calls += 1
    assert 1 < calls <= 20 and reference.history_.finished
    assert sessions.history_.steps == reference.history_.steps == 40
    pairs = zip(
        reference.regularizer_.parameters(), sessions.regularizer_.parameters(), strict=True
    )
    assert all(torch.equal(a, b) for a, b in pairs)


def test_fit_trains_a_denoiser_reproducibly_and_round_trips(tmp_path):
    net = ConvGradNet((1, 2, 4), kernel_size=3, knots=7)
    est = ConvexRegularizer(net, sigma=25.0, t_steps=3, iterations=8, epochs=2, batch_size=4)
    est.set_params(patch=16, seed=0, progress=False)
    twin = clone(est)
    state = torch.get_rng_state()
    est.fit(_images())
    twin.fit(_images())
    assert torch.equal(torch.get_rng_state(), state)
    assert est.history_.steps == 8 and est.net is net  # the caller's network is not trained
    for a, b in zip(est.regularizer_.parameters(), twin.regularizer_.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(net.parameters(), est.regularizer_.net.parameters(), strict=True)
    )
    clean = [torch.as_tensor(_images()[0][None, None], dtype=torch.float32)]
    lam, mu, score = est.tune(clean, noisy_copies(clean, 25), Denoising(), label=25, rounds=1)
    assert est.strengths_["25"] == [lam, mu] and score > 0
    path = tmp_path / "reg.pt"
    est.save(path)
    back = ConvexRegularizer.load(path)
    x = torch.rand(1, 1, 9, 9)
    assert torch.equal(back.grad(x), est.grad(x))
    assert back.strengths_ == est.strengths_ and back.get_params()["t_steps"] == 3
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        ConvexRegularizer.load(path)


@pytest.mark.parametrize("sigma", [5, 15, 25])
def test_pretrained_weights_ship_and_are_convex(sigma):
    reg = ConvexRegularizer.pretrained("bsd", sigma=sigma)
    assert reg.regularizer_.net.monotone
    lam, mu = reg.strengths_[str(sigma)]
    assert reg.lmbda_ == pytest.approx(lam) and reg.mu_ == pytest.approx(mu)
    x = torch.rand(1, 1, 7, 7)
    J = reg.regularizer_.net.jacobian(x.double().clamp(0, 1).float())
    assert float(torch.linalg.eigvalsh(J.double()).min()) > -1e-5


def test_pretrained_errors():
    with pytest.raises(ValueError, match="sigma"):
        ConvexRegularizer.pretrained("bsd", sigma=7)
    with pytest.raises(ValueError, match="name"):
        ConvexRegularizer.pretrained("imagenet")
