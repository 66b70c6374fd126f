import math

import numpy as np
import pytest
import torch

from applications.ot_maps.data import gaussian_pair
from otgrad.nn import GradNetC, GradNetM, StronglyConvex
from otgrad.ot import BrenierMap, default_network, l2_uvp, wasserstein2


@pytest.fixture(scope="module")
def pair4():
    return gaussian_pair(4, 4096, 1024, seed=0)


@pytest.fixture(scope="module")
def fitted(pair4):
    return BrenierMap(steps=200, seed=0, dtype=torch.float64, progress=False).fit(
        pair4["X"], pair4["Y"]
    )


def test_quick_gaussian_fit_reaches_two_percent(pair4, fitted):
    uvp = l2_uvp(fitted.transform(pair4["X_test"]), pair4["T_test"], pair4["var"])
    assert uvp < 2.0


def test_semidual_learns_from_the_identity(pair4):
    # without the Gaussian initialization the semi-dual has to find the map itself
    est = BrenierMap(init="identity", steps=400, seed=0, progress=False)
    est.fit(pair4["X"], pair4["Y"])
    start = l2_uvp(pair4["X_test"], pair4["T_test"], pair4["var"])
    uvp = l2_uvp(est.transform(pair4["X_test"]), pair4["T_test"], pair4["var"])
    assert start > 50 and uvp < 2.0


def test_types_and_roundtrips(pair4, fitted):
    x = pair4["X_test"][:50]
    y = fitted.transform(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == x.shape
    np.testing.assert_allclose(fitted.inverse_transform(y), x, atol=1e-7)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = fitted.transform(xt)
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    assert fitted.potential(x).shape == (50,)


def test_potential_gradient_is_the_map(pair4, fitted):
    x = pair4["X_test"][:20]
    h = 1e-5
    e = np.eye(4)
    fd = np.stack(
        [
            (fitted.potential(x + h * e[i]) - fitted.potential(x - h * e[i])) / (2 * h)
            for i in range(4)
        ],
        -1,
    )
    np.testing.assert_allclose(fd, fitted.transform(x), atol=1e-5)


def test_fenchel_young_equality(pair4, fitted):
    x = pair4["X_test"][:100]
    y = fitted.transform(x)
    lhs = fitted.potential(x) + fitted.conjugate_potential(y)
    np.testing.assert_allclose(lhs, (x * y).sum(-1), atol=1e-6)


def test_score_is_a_lower_bound_on_w2(pair4, fitted):
    x, y = pair4["X"][:400], pair4["Y"][:400]
    w2sq = wasserstein2(x, y) ** 2
    score = fitted.score(x, y)
    assert score <= w2sq + 1e-8
    assert score > 0.8 * w2sq  # a good map makes the bound nearly tight


@pytest.mark.parametrize("loss", ["emd", "barycentric", "sinkhorn"])
def test_minibatch_losses_move_towards_the_map(loss):
    data = gaussian_pair(2, 2048, 512, seed=1)
    opts = dict(epsilon=0.5, steps=20, batch_size=128) if loss == "sinkhorn" else dict(steps=60)
    est = BrenierMap(
        loss=loss, init="identity", lr=1e-2, seed=0, progress=False, **{"batch_size": 256, **opts}
    )
    est.fit(data["X"], data["Y"])
    start = l2_uvp(data["X_test"], data["T_test"], data["var"])
    uvp = l2_uvp(est.transform(data["X_test"]), data["T_test"], data["var"])
    assert uvp < 0.5 * start


def test_monge_ampere_with_known_densities():
    rng = np.random.default_rng(0)
    d = 2
    C = np.array([[2.0, 0.6], [0.6, 0.5]])
    m = np.array([1.0, -1.0])
    prec, logdet = torch.as_tensor(np.linalg.inv(C)), math.log(np.linalg.det(C))
    mt = torch.as_tensor(m)

    def log_q(y):
        z = y - mt
        return -0.5 * ((z @ prec) * z).sum(-1) - 0.5 * (logdet + d * math.log(2 * math.pi))

    def log_p(x):
        return -0.5 * (x * x).sum(-1) - 0.5 * d * math.log(2 * math.pi)

    X = rng.normal(size=(4096, d))
    est = BrenierMap(loss="monge-ampere", steps=300, lr=1e-2, seed=0, progress=False)
    est.fit(X, target_log_prob=log_q, source_log_prob=log_p)
    Xt = rng.normal(size=(1000, d))
    w, v = np.linalg.eigh(C)
    A = (v * np.sqrt(w)) @ v.T  # the Brenier map of N(0, I) -> N(m, C) is x -> C^{1/2} x + m
    uvp = l2_uvp(est.transform(Xt), Xt @ A + m, variance=float(np.trace(C)))
    assert uvp < 2.0
    assert est.history_.train_loss[-1] < 0.05  # the KL divergence itself


def test_custom_network_and_save_load(tmp_path, pair4):
    net = StronglyConvex(GradNetC(4, 16, layers=2), mu=0.05)
    est = BrenierMap(net, steps=20, seed=0, progress=False).fit(pair4["X"], pair4["Y"])
    path = tmp_path / "map.pt"
    est.save(path)
    back = BrenierMap.load(path)
    x = pair4["X_test"][:10]
    np.testing.assert_allclose(back.transform(x), est.transform(x), atol=1e-6)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt"):
        BrenierMap.load(path)


def test_load_rejects_a_plain_network_file(tmp_path):
    from otgrad import io

    io.save(GradNetM(2, 4), tmp_path / "net.pt")
    with pytest.raises(ValueError, match="BrenierMap"):
        BrenierMap.load(tmp_path / "net.pt")


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(100, 3))
    est = BrenierMap(steps=1, progress=False)
    with pytest.raises(ValueError, match="3 features"):
        est.fit(X, X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.where(X > 2, np.nan, X), X)
    with pytest.raises(ValueError, match="at least 2"):
        est.fit(X[:1], X)
    with pytest.raises(TypeError, match="floating"):
        est.fit(X.astype(int), X)
    with pytest.raises(TypeError, match="NumPy array or a torch tensor"):
        est.fit(X.tolist(), X)
    with pytest.raises(ValueError, match="n_samples, n_features"):
        est.fit(X[:, 0], X)
    with pytest.raises(ValueError, match="needs target samples"):
        est.fit(X)
    with pytest.raises(ValueError, match="monotone"):
        BrenierMap(GradNetM(3, 4, monotone=False))
    with pytest.raises(TypeError, match="GradientNetwork"):
        BrenierMap(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="dim=2"):
        BrenierMap(default_network(2), steps=1).fit(X, X)
    with pytest.raises(ValueError, match="loss"):
        BrenierMap(loss="kl")
    with pytest.raises(ValueError, match="steps"):
        BrenierMap(steps=0)
    with pytest.raises(ValueError, match="target_log_prob"):
        BrenierMap(loss="monge-ampere").fit(X)
    with pytest.raises(RuntimeError, match="not fitted"):
        BrenierMap().transform(X)
    fitted = BrenierMap(steps=2, progress=False).fit(X, X)
    with pytest.raises(ValueError, match="3 features"):
        fitted.transform(X[:, :2])
