from __future__ import annotations

import pytest
import torch

from otgrad.nn import GradNetC
from otgrad.train import fit


def mse(m, x, y):
    return ((m(x) - y) ** 2).sum(-1).mean()


def test_fit_decreases_the_loss_and_keeps_the_best_weights():
    torch.manual_seed(0)
    x = torch.randn(512, 2)
    y = 3 * x
    net = GradNetC(2, 8)
    before = float(mse(net, x, y))
    hist = fit(net, mse, (x, y), epochs=20, batch_size=64, lr=0.01, val_data=(x, y), seed=0)
    assert hist.best_val == min(hist.val_loss)
    assert float(mse(net, x, y)) == pytest.approx(hist.best_val, rel=1e-5)
    assert hist.best_val < 0.1 * before


def test_fit_is_reproducible_with_a_seed():
    x = torch.randn(256, 2)
    y = x**3
    outs = []
    for _ in range(2):
        torch.manual_seed(1)
        net = GradNetC(2, 4)
        fit(net, mse, (x, y), epochs=3, batch_size=32, seed=5)
        outs.append(net(x))
    assert torch.equal(outs[0], outs[1])


def test_fit_argument_errors():
    net = GradNetC(2, 4)
    with pytest.raises(ValueError, match="share their first dimension"):
        fit(net, mse, (torch.randn(5, 2), torch.randn(4, 2)))
    with pytest.raises(ValueError, match="at least one"):
        fit(net, mse, ())


def test_ema_loads_the_average_of_the_iterates():
    # with plain SGD on a linear model, the EMA of the iterates is easy to recompute
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = x @ torch.tensor([[2.0, 0.0], [0.0, -1.0]])

    class Lin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(2, 2))

        def forward(self, x):
            return x @ self.w

    def loss(m, a, b):
        return ((m(a) - b) ** 2).sum(-1).mean()

    net, ref = Lin(), Lin()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    fit(net, loss, (x, y), epochs=5, batch_size=64, optimizer=opt, ema=0.9, seed=0)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.05)
    avg = ref.w.detach().clone()
    for _ in range(5):
        ref_opt.zero_grad()
        loss(ref, x, y).backward()
        ref_opt.step()
        avg = 0.9 * avg + 0.1 * ref.w.detach()
    torch.testing.assert_close(net.w.detach(), avg)
    assert not torch.allclose(avg, ref.w.detach())  # the average is not the last iterate
    with pytest.raises(ValueError, match="ema"):
        fit(net, loss, (x, y), ema=1.5)
    with pytest.raises(ValueError, match="val_data"):
        fit(net, loss, (x, y), ema=0.9, val_data=(x, y))
