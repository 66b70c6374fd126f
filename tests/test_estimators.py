"""The conventions every task head shares (scikit-learn / POT style), checked on all four."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from otgrad.flows import ConvexPotentialFlow
from otgrad.inverse import ConvexRegularizer
from otgrad.nn import ConvGradNet, GradNetM, StronglyConvex
from otgrad.ot import BrenierMap
from otgrad.score import NoiseConditionalGradNet, ScoreModel

RNG = np.random.default_rng(0)
X2 = RNG.normal(size=(300, 2))
Y2 = X2 @ np.array([[1.5, 0.3], [0.3, 0.8]]) + 1.0
IMAGES = [RNG.uniform(size=(40, 40)) for _ in range(2)]

HEADS = {
    "brenier": (
        lambda **kw: BrenierMap(StronglyConvex(GradNetM(2, 4, 2), 0.1), steps=6, **kw),
        lambda est: est.fit(X2, Y2),
        lambda est: est.transform(X2[:5]),
    ),
    "score": (
        lambda **kw: ScoreModel(NoiseConditionalGradNet(2, 4, 2), steps=6, batch_size=32, **kw),
        lambda est: est.fit(X2),
        lambda est: est.score(X2[:5], 0.3),
    ),
    "flow": (
        lambda **kw: ConvexPotentialFlow(2, net=[GradNetM(2, 4, 2)], steps=6, **kw),
        lambda est: est.fit(X2),
        lambda est: est.log_prob(X2[:5]),
    ),
    "regularizer": (
        lambda **kw: ConvexRegularizer(
            ConvGradNet((1, 2, 3), 3, knots=5), t_steps=2, iterations=4, epochs=2, **kw
        ).set_params(batch_size=2, patch=12),
        lambda est: est.fit(IMAGES),
        lambda est: est.grad(torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))),
    ),
}


def _make(name, **kw):
    return HEADS[name][0](progress=False, **kw)


def _fit(name, est):
    return HEADS[name][1](est)


def _probe(name, est):
    out = HEADS[name][2](est)
    return torch.as_tensor(out)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_clone_params_and_repr(name):
    est = _make(name, seed=3)
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    params = est.get_params()
    for key, value in twin.get_params().items():
        if isinstance(value, (torch.nn.Module, list)):
            assert value is not params[key]  # clone deep-copies networks
        else:
            assert value == params[key]
    assert twin.set_params(seed=4) is twin and twin.seed == 4 and est.seed == 3
    with pytest.raises(ValueError, match="no parameters"):
        twin.set_params(bogus=1)
    with pytest.raises(ValueError, match="seed"):
        twin.set_params(seed=-1)
    assert twin.seed == 4
    text = repr(est)
    assert text.startswith(type(est).__name__ + "(") and "seed=3" in text


@pytest.mark.parametrize("name", sorted(HEADS))
def test_not_fitted_error(name):
    with pytest.raises(RuntimeError, match="not fitted"):
        _probe(name, _make(name))


@pytest.mark.parametrize("name", sorted(HEADS))
def test_same_seed_same_fit_and_the_global_rng_untouched(name):
    a = _make(name, seed=5)
    b, c = clone(a), clone(a).set_params(seed=6)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    assert _fit(name, a) is a
    assert torch.equal(torch.get_rng_state(), state)
    _fit(name, b)
    _fit(name, c)
    assert torch.equal(_probe(name, a), _probe(name, b))
    assert not torch.equal(_probe(name, a), _probe(name, c))
    assert a.history_.train_loss == b.history_.train_loss


@pytest.mark.parametrize("name", sorted(HEADS))
def test_a_user_network_is_copied_not_trained(name):
    est = _make(name, seed=0)
    net = est.net if isinstance(est.net, torch.nn.Module) else torch.nn.ModuleList(est.net)
    before = [p.detach().clone() for p in net.parameters()]
    _fit(name, est)
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before, strict=True))
    fitted = getattr(est, type(est)._module)
    assert all(p is not q for p in fitted.parameters() for q in net.parameters())


@pytest.mark.parametrize("name", sorted(HEADS))
def test_save_and_load_with_map_location(tmp_path, name):
    est = _fit(name, _make(name, seed=1))
    est.save(tmp_path / "est.pt")
    back = type(est).load(tmp_path / "est.pt", map_location="cpu")
    assert torch.equal(_probe(name, back), _probe(name, est))
    assert back.device == "cpu"
    mismatch = {"brenier": ScoreModel, "score": BrenierMap}.get(name, BrenierMap)
    with pytest.raises(ValueError, match="corrupt"):
        mismatch.load(tmp_path / "est.pt")


def test_numpy_in_numpy_out_torch_in_torch_out():
    est = _fit("brenier", _make("brenier", seed=0))
    assert isinstance(est.transform(X2[:4]), np.ndarray)
    out = est.transform(torch.as_tensor(X2[:4], dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    score = _fit("score", _make("score", seed=0))
    assert isinstance(score.score(X2[:4], 0.3), np.ndarray)
    assert isinstance(score.score(torch.as_tensor(X2[:4]), 0.3), torch.Tensor)
    flow = _fit("flow", _make("flow", seed=0))
    assert isinstance(flow.transform(X2[:4]), np.ndarray)
    assert isinstance(flow.transform(torch.as_tensor(X2[:4])), torch.Tensor)
