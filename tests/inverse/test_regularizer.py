from __future__ import annotations

import pytest
import torch

from otgrad.inverse import ConvexRegularizer
from otgrad.nn.conv import ConvGradNet


def _reg(lmbda=2.0, mu=1.5):
    torch.manual_seed(0)
    return ConvexRegularizer(ConvGradNet((1, 4, 8), 3, knots=11), lmbda=lmbda, mu=mu).double()


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
    with pytest.raises(ValueError, match="monotone"):
        ConvexRegularizer(ConvGradNet((1, 2, 4), 3, monotone=False))
    with pytest.raises(ValueError, match="lmbda"):
        ConvexRegularizer(ConvGradNet((1, 2, 4), 3), lmbda=-1.0)
    with pytest.raises(TypeError, match="net"):
        ConvexRegularizer("crr")


def test_save_load_roundtrip(tmp_path):
    reg = _reg()
    path = tmp_path / "reg.pt"
    reg.save(path, {"note": "x"})
    back = ConvexRegularizer.load(path)
    x = torch.rand(1, 1, 9, 9, dtype=torch.float64)
    assert torch.allclose(back.grad(x), reg.grad(x))
    assert back.metadata["note"] == "x"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        ConvexRegularizer.load(path)


@pytest.mark.parametrize("sigma", [5, 15, 25])
def test_pretrained_weights_ship_and_are_convex(sigma):
    reg = ConvexRegularizer.pretrained("bsd", sigma=sigma)
    assert reg.net.monotone
    lam, mu = reg.metadata["strengths"][str(sigma)]
    assert reg.lmbda == pytest.approx(lam) and reg.mu == pytest.approx(mu)
    x = torch.rand(1, 1, 7, 7)
    J = reg.net.jacobian(x.double().clamp(0, 1).float())
    assert float(torch.linalg.eigvalsh(J.double()).min()) > -1e-5


def test_pretrained_errors():
    with pytest.raises(ValueError, match="sigma"):
        ConvexRegularizer.pretrained("bsd", sigma=7)
    with pytest.raises(ValueError, match="name"):
        ConvexRegularizer.pretrained("imagenet")
