"""Save / load round trips and safe loading."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
import torch

from otgrad import io
from otgrad._integrity import digest
from otgrad.nn import GradientNetwork, GradNetC

from .nn.factory import KINDS, MODULES, build, perturb


def _builtin_names() -> set[str]:
    return {n for n, c in io.registered().items() if c.__module__.startswith("otgrad.")}


def _name(module: torch.nn.Module) -> str:
    return {c: n for n, c in io.registered().items()}[type(module)]


def test_the_factory_builds_every_registered_architecture():
    built = {_name(build(k, 3, 4, 2, m, 0, 0)) for k in KINDS for m in (True, False)}
    missing = _builtin_names() - built - set(MODULES)
    assert not missing, f"tests/nn/factory.py does not build {sorted(missing)}"
    assert all(
        issubclass(io.registered()[n], GradientNetwork)
        for n in built  # the property tests run on these
    )


def _round_trip_cases():
    cases = [(k, m) for k in KINDS for m in (True, False)]
    return [pytest.param(k, m, id=f"{k}-{'m' if m else 'g'}") for k, m in cases] + [
        pytest.param(name, None, id=name) for name in sorted(MODULES)
    ]


@pytest.mark.parametrize("kind,monotone", _round_trip_cases())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip(tmp_path, kind, monotone, dtype):
    torch.manual_seed(0)
    if monotone is None:
        net, probe = MODULES[kind]()
        net = perturb(net.to(dtype), 0.05, 1)
    else:
        net = perturb(build(kind, 3, 4, 2, monotone, 3, 0).to(dtype), 0.1, 1)
        x = torch.randn(5, 3, dtype=dtype)

        def probe(m):
            return torch.cat([m(x), m.potential(x)[:, None]], 1)

    path = tmp_path / "net.pt"
    io.save(net, path)
    back = io.load(path)
    assert type(back) is type(net) and getattr(back, "monotone", None) == getattr(
        net, "monotone", None
    )
    assert io.load(path).config().keys() == net.config().keys()
    probe_in = probe(net)
    assert torch.equal(probe(back), probe_in)


def test_registry_refuses_clashes_and_private_classes():
    class GradNetCClone(GradNetC):
        pass

    with pytest.raises(ValueError, match="already registered"):
        io.register("GradNetC")(GradNetCClone)
    with pytest.raises(ValueError, match="already registered"):
        io.register("another.name")(GradNetC)

    class _Private(GradNetC):
        pass

    with pytest.raises(ValueError, match="private"):
        io.register("tests.Private")(_Private)
    assert io.registered()["GradNetC"] is GradNetC
    with pytest.raises(TypeError, match="register"):
        io.save(GradNetCClone(2, 3), "unused.pt")


def test_a_network_without_evaluate_fails_at_construction():
    class Incomplete(GradientNetwork):
        pass

    with pytest.raises(TypeError, match="_evaluate"):
        Incomplete(2)


def test_config_is_read_from_the_constructor_signature():
    net = GradNetC(3, 5, layers=2, activation="softplus")
    assert net.config() == dict(dim=3, hidden=5, layers=2, monotone=True, activation="softplus")


def test_conv_gradnet_saves_in_a_fresh_interpreter(tmp_path):
    code = (
        "import sys, torch; from otgrad import io; from otgrad.nn import ConvGradNet; "
        "net = ConvGradNet((1, 2), kernel_size=3, knots=5); io.save(net, sys.argv[1]); "
        "back = io.load(sys.argv[1]); x = torch.rand(1, 1, 6, 6); "
        "assert torch.equal(back(x), net(x))"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "c.pt")], check=True)


def test_deeply_nested_configuration_is_refused(tmp_path):
    spec = {"__network__": "GradNetC", "config": {"dim": 2, "hidden": 4}}
    for _ in range(3000):
        spec = {"__network__": "StronglyConvex", "config": {"net": spec, "mu": 0.1}}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)  # to write it (and to compute its checksum)
    try:
        path = _tampered(tmp_path, lambda p: p.update(network=spec))
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(ValueError, match="nests deeper"):
        io.load(path)


def _tampered(tmp_path, edit, resign=True):
    """A saved GradNetC whose payload ``edit`` changed, with its checksum recomputed (a
    tampering that knows the format) unless ``resign`` is false; returns its path."""
    path = tmp_path / "net.pt"
    io.save(GradNetC(2, 4), path)
    payload = torch.load(path, weights_only=True)
    edit(payload)
    if resign:
        payload["sha256"] = digest(payload["network"], payload["metadata"], payload["state_dict"])
    torch.save(payload, path)
    return path


def test_a_changed_file_fails_its_checksum(tmp_path):
    path = _tampered(tmp_path, lambda p: p["state_dict"]["weight"].add_(1e-7), resign=False)
    with pytest.raises(ValueError, match="checksum"):
        io.load(path)
    path = _tampered(tmp_path, lambda p: p["metadata"].update(x=1), resign=False)
    with pytest.raises(ValueError, match="checksum"):
        io.load(path)


def test_huge_sizes_in_a_configuration_are_refused_before_allocating(tmp_path):
    config = {"__network__": "GradNetC", "config": {"dim": 10**7, "hidden": 10**7}}
    path = _tampered(tmp_path, lambda p: p.update(network=config))
    with pytest.raises(ValueError, match="corrupt checkpoint.*would create over"):
        io.load(path)
    config = {"__network__": "GradNetC", "config": {"dim": 2, "hidden": 4, "layers": 10**7}}
    path = _tampered(tmp_path, lambda p: p.update(network=config))
    with pytest.raises(ValueError, match="corrupt checkpoint.*would create over"):
        io.load(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "net.pt"
    io.save(GradNetC(2, 4), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        io.load(path)


def test_tampered_weights(tmp_path):
    path = _tampered(tmp_path, lambda p: p["state_dict"].update(weight=torch.zeros(9, 9)))
    with pytest.raises(ValueError, match="weights do not match"):
        io.load(path)


def test_tampered_config(tmp_path):
    path = _tampered(tmp_path, lambda p: p["network"].update(__network__="os.system"))
    with pytest.raises(ValueError, match="unknown network class"):
        io.load(path)
    config = {"__network__": "GradNetC", "config": {"dim": -1, "hidden": 4}}
    path = _tampered(tmp_path, lambda p: p.update(network=config))
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
    with pytest.raises(TypeError, match="register"):
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
