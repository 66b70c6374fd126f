"""deepinv interoperability: its physics in reconstruct, our regularizer in its optimizers
(skipped when deepinv is not installed: ``pip install otgrad[deepinv]``)."""

from __future__ import annotations

import pytest
import torch

from otgrad.inverse import Blur, ConvexRegularizer, Denoising, deepinv_prior, reconstruct

dinv = pytest.importorskip("deepinv")


@pytest.fixture(scope="module")
def reg():
    return ConvexRegularizer.pretrained("bsd", 25)


def _noisy(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 1, size, size, generator=gen)
    return x, x + 0.1 * torch.randn(x.shape, generator=gen)


def test_deepinv_denoising_physics_gives_our_reconstruction(reg):
    _, y = _noisy()
    ours = reconstruct(y, Denoising(), reg, tol=1e-7, max_iter=3000).x
    theirs = reconstruct(y, dinv.physics.Denoising(), reg, tol=1e-7, max_iter=3000).x
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)


def test_deepinv_blur_physics_gives_our_reconstruction(reg):
    x, _ = _noisy()
    kernel = dinv.physics.blur.gaussian_blur(sigma=(1.0, 1.0))  # (1, 1, k, k), centered
    physics = dinv.physics.Blur(filter=kernel, padding="circular")
    ours_op = Blur((32, 32), kernel=kernel[0, 0])
    torch.testing.assert_close(physics.A(x), ours_op.A(x), rtol=0, atol=1e-5)
    y = ours_op.A(x) + 0.02 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    ours = reconstruct(y, ours_op, reg, tol=1e-7, max_iter=5000).x
    theirs = reconstruct(y, physics, reg, tol=1e-7, max_iter=5000).x
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)


def test_prior_in_deepinv_gradient_descent_reaches_our_minimizer(reg):
    _, y = _noisy()
    prior = deepinv_prior(reg)
    torch.testing.assert_close(prior.fn(y), reg.value(y))
    torch.testing.assert_close(prior.grad(y), reg.grad(y))
    step = 1.0 / (1.0 + reg.lipschitz_bound())
    model = dinv.optim.optim_builder(
        iteration="GD", prior=prior, data_fidelity=dinv.optim.data_fidelity.L2(),
        params_algo={"stepsize": step, "lambda": 1.0}, max_iter=3000, early_stop=False,
    )  # fmt: skip
    with torch.no_grad():
        theirs = model(y, dinv.physics.Denoising())
    ours = reconstruct(y, Denoising(), reg, tol=1e-8, max_iter=5000).x
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-4)


def test_deepinv_prior_needs_a_regularizer():
    with pytest.raises(TypeError, match="regularizer"):
        deepinv_prior(torch.nn.Linear(2, 2))
