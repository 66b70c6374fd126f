"""The semi-dual's conjugate points: exact solves, warm starts, the amortizer; samplers."""

import numpy as np
import pytest
import torch

from otgrad.ot import BrenierMap, default_network
from otgrad.ot.losses import SemiDual


def _residual(net, x, y):
    with torch.no_grad():
        return ((net(x) - y).norm(dim=-1) / (1 + y.norm(dim=-1))).max().item()


@pytest.mark.parametrize("fixed", [True, False])
def test_conjugate_points_meet_the_tolerance(fixed):
    torch.manual_seed(0)
    net = default_network(24).double()
    y = torch.randn(64, 24, dtype=torch.float64)
    amortizer = default_network(24, modules=2).double()
    semi = SemiDual(y if fixed else None, tol=1e-9, max_iter=50, amortizer=amortizer)
    idx = torch.arange(64)
    x = semi.conjugate_points(net, idx) if fixed else semi.conjugate_points(net, None, y)
    assert _residual(net, x, y) <= 1e-9
    assert len(semi.iterations) == 1 and semi.iterations[0][0] == 64


def test_the_amortizer_learns_the_conjugate_map():
    # fresh target draws at every step: the prediction's residual falls as it is trained
    torch.manual_seed(0)
    d = 8
    net = default_network(d).double()
    amortizer = default_network(d, modules=2).double()
    semi = SemiDual(None, tol=1e-8, amortizer=amortizer, amortizer_lr=1e-2)
    gen = torch.Generator().manual_seed(1)

    def draw():
        return 2 * torch.randn(256, d, generator=gen, dtype=torch.float64)

    test = draw()
    with torch.no_grad():
        before = _residual(net, amortizer(test), test)
    for _ in range(150):
        semi.conjugate_points(net, None, draw())
    with torch.no_grad():
        after = _residual(net, amortizer(test), test)
    assert after < 0.3 * before
    # and the solves it starts take fewer Newton iterations than at the start
    assert sum(semi.iterations[-1]) < 0.8 * sum(semi.iterations[0])


def test_x0_needs_a_fixed_target_set():
    with pytest.raises(ValueError, match="x0"):
        SemiDual(None, x0=torch.zeros(3, 2))


def _gaussian_samplers(A, b):
    def source(n, gen):
        return torch.randn(n, A.shape[0], generator=gen, dtype=torch.float64)

    def target(n, gen):
        return source(n, gen) @ A + b

    return source, target


def test_fit_on_samplers_and_the_inverse_round_trip(tmp_path):
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]], dtype=torch.float64)
    b = torch.tensor([3.0, -1.0, 0.5], dtype=torch.float64)
    source, target = _gaussian_samplers(A, b)
    T = BrenierMap(steps=150, seed=0, progress=False).fit(source, target)
    assert T.conjugate_net_ is not None  # on by default with a target sampler
    x = np.random.default_rng(0).normal(size=(500, 3))
    true = x @ A.numpy() + b.numpy()
    assert np.abs(T.transform(x) - true).max() < 0.2
    back = T.inverse_transform(T.transform(x))
    assert np.abs(back - x).max() < 1e-3
    # saved and loaded, the map is the same; the inverse starts without the amortizer
    T.save(tmp_path / "map.pt")
    U = BrenierMap.load(tmp_path / "map.pt")
    assert U.conjugate_net_ is None
    np.testing.assert_allclose(U.transform(x), T.transform(x), rtol=0, atol=1e-12)
    assert np.abs(U.inverse_transform(U.transform(x)) - x).max() < 1e-3
    # same seed, same draws: the fit is reproducible
    T2 = BrenierMap(steps=150, seed=0, progress=False).fit(source, target)
    np.testing.assert_allclose(T2.transform(x), T.transform(x), rtol=0, atol=1e-6)


def test_sample_sets_do_not_amortize_by_default():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 2))
    T = BrenierMap(steps=20, seed=0, progress=False).fit(X, X + 1)
    assert T.conjugate_net_ is None
    T = BrenierMap(steps=20, seed=0, progress=False, amortize=True).fit(X, X + 1)
    assert T.conjugate_net_ is not None


def test_bad_samplers():
    def good(n, gen):
        return torch.randn(n, 2, generator=gen, dtype=torch.float64)

    with pytest.raises(ValueError, match="sampler Y must return n="):
        BrenierMap(steps=2, progress=False).fit(good, lambda n, g: good(n - 1, g))
    with pytest.raises(ValueError, match="Y must have 2 features"):
        BrenierMap(steps=2, progress=False).fit(good, lambda n, g: good(n, g)[:, :1])
    with pytest.raises(ValueError, match="sampler X.*NaN"):
        BrenierMap(steps=2, progress=False).fit(lambda n, g: good(n, g) * np.nan, good)
    with pytest.raises(TypeError, match="amortize"):
        BrenierMap(amortize="yes")
