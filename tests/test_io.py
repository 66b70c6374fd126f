"""Save / load round trips and safe loading."""

from __future__ import annotations

import pickle

import pytest
import torch

from otgrad import io
from otgrad.nn import (
    ConicalSum,
    Difference,
    GradNetC,
    GradNetM,
    LipschitzShift,
    SingleLayerGradNet,
    StronglyConvex,
    Sum,
    TransformedRidgeSum,
)

NETS = [
    lambda: GradNetC(3, 6, layers=3, activation="wtanh"),
    lambda: GradNetM(3, 5, modules=2, activation="wsoftmax", monotone=False),
    lambda: SingleLayerGradNet(3, 4, activation="learned"),
    lambda: StronglyConvex(GradNetM(3, 5), 0.25),
    lambda: Sum([GradNetC(3, 4), SingleLayerGradNet(3, 2, activation="softmax")], [0.5, 2.0]),
    lambda: ConicalSum([GradNetC(3, 4), GradNetM(3, 4)]),
    lambda: LipschitzShift(GradNetC(3, 4, monotone=False)),
    lambda: Difference(GradNetC(3, 4), GradNetM(3, 3)),
    lambda: TransformedRidgeSum(SingleLayerGradNet(3, 4)),
]


@pytest.mark.parametrize("make", NETS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip(tmp_path, make, dtype):
    torch.manual_seed(0)
    net = make().to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "net.pt"
    io.save(net, path)
    back = io.load(path)
    assert type(back) is type(net) and back.monotone == net.monotone
    x = torch.randn(5, 3, dtype=dtype)
    assert torch.equal(back(x), net(x))
    assert torch.equal(back.potential(x), net.potential(x))


def test_truncated_file(tmp_path):
    path = tmp_path / "net.pt"
    io.save(GradNetC(2, 4), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        io.load(path)


def test_tampered_weights(tmp_path):
    path = tmp_path / "net.pt"
    io.save(GradNetC(2, 4), path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["weight"] = torch.zeros(9, 9)
    torch.save(payload, path)
    with pytest.raises(ValueError, match="weights do not match"):
        io.load(path)


def test_tampered_config(tmp_path):
    path = tmp_path / "net.pt"
    io.save(GradNetC(2, 4), path)
    payload = torch.load(path, weights_only=True)
    payload["network"]["__network__"] = "os.system"
    torch.save(payload, path)
    with pytest.raises(ValueError, match="unknown network class"):
        io.load(path)
    payload["network"] = {"__network__": "GradNetC", "config": {"dim": -1, "hidden": 4}}
    torch.save(payload, path)
    with pytest.raises(ValueError, match="cannot rebuild"):
        io.load(path)


def test_non_finite_weights(tmp_path):
    path = tmp_path / "net.pt"
    net = GradNetC(2, 4)
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    io.save(net, path)
    with pytest.raises(ValueError, match="non-finite"):
        io.load(path)


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_loading_never_executes_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": io.FORMAT, "network": _Exploit()}, f)
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        io.load(path)
    torch.save({"format": io.FORMAT, "network": _Exploit()}, tmp_path / "evil2.pt")
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        io.load(tmp_path / "evil2.pt")
    assert not (tmp_path / "PWNED").exists()


def test_not_an_otgrad_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not an otgrad network"):
        io.load(path)
    with pytest.raises(TypeError, match="GradientNetwork"):
        io.save(torch.nn.Linear(2, 2), path)


def test_metadata_round_trip(tmp_path):
    net = GradNetC(2, 4)
    io.save(net, tmp_path / "m.pt", metadata={"scale": 2.5, "mean": [1.0, 2.0], "name": "x"})
    back, meta = io.load(tmp_path / "m.pt", with_metadata=True)
    assert meta == {"scale": 2.5, "mean": [1.0, 2.0], "name": "x"}
    assert isinstance(io.load(tmp_path / "m.pt"), GradNetC)
    with pytest.raises(TypeError, match="metadata"):
        io.save(net, tmp_path / "n.pt", metadata=[1, 2])


def test_registered_modules_round_trip_and_others_are_refused(tmp_path):
    from otgrad.score import NoiseConditionalGradNet

    torch.manual_seed(0)
    net = NoiseConditionalGradNet(3, hidden=4, modules=2)
    path = tmp_path / "score.pt"
    io.save(net, path)
    back = io.load(path)
    assert type(back) is NoiseConditionalGradNet and back.config() == net.config()
    x = torch.randn(5, 3)
    torch.testing.assert_close(back(x, 0.2), net(x, 0.2))
    with pytest.raises(TypeError, match="register"):
        io.save(torch.nn.Linear(2, 2), path)
