from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from otgrad.cli import COMMANDS, main


def test_help_lists_the_commands_and_the_studies(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert name in text
    assert "python -m applications.ot_maps" in text


def _run_demo(command, out, capsys, expected):
    """Runs a demo command into ``out``; checks its report, figure and results file."""
    assert main([command, "--quick", "--out", str(out)]) == 0
    assert expected in capsys.readouterr().out
    assert (out / "demo.png").stat().st_size > 10_000
    return json.loads((out / "results.json").read_text())


def test_field_demo_runs_and_reports(tmp_path, capsys):
    results = _run_demo("field-demo", tmp_path / "demo", capsys, "dB")
    assert math.isfinite(results["test_mse_db"]) and results["test_mse_db"] < -20
    assert results["parameters"] == 100 and results["monotone"]


def test_console_script_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "otgrad.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in r.stdout


def test_ot_demo_fits_a_map_end_to_end(tmp_path, capsys):
    r = _run_demo("demo", tmp_path / "ot-demo", capsys, "W2(T#source, target)")
    # the fitted map moves the source towards the target
    assert r["w2_mapped"] < r["w2_source"]
    assert 0 < r["dual_w2_squared"] <= r["w2_source"] ** 2 * 1.2


def test_map_fit_save_and_apply(tmp_path, capsys):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    Y = X @ np.diag([2.0, 1.0, 0.5]) + 1.0
    np.save(tmp_path / "x.npy", X)
    np.savetxt(tmp_path / "y.csv", Y, delimiter=",")
    model = tmp_path / "m.pt"
    assert (
        main(
            [
                "map",
                str(tmp_path / "x.npy"),
                str(tmp_path / "y.csv"),
                "--steps",
                "20",
                "--out",
                str(model),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "transport cost" in text and "W2(T#source, target)" in text
    np.save(tmp_path / "new.npy", X[:7])
    assert main(["map", "--load", str(model), "--apply", str(tmp_path / "new.npy")]) == 0
    mapped = np.load(tmp_path / "new_mapped.npy")
    assert mapped.shape == (7, 3)
    np.testing.assert_allclose(mapped, X[:7] @ np.diag([2.0, 1.0, 0.5]) + 1.0, atol=0.3)


def test_map_errors_are_clear(tmp_path):
    import numpy as np
    import pytest

    np.save(tmp_path / "a.npy", np.zeros((10, 2)))
    np.save(tmp_path / "b.npy", np.zeros((10, 3)))
    with pytest.raises(SystemExit, match="3 features"):
        main(["map", str(tmp_path / "b.npy"), str(tmp_path / "a.npy"), "--steps", "1"])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["map", str(tmp_path / "nope.npy"), str(tmp_path / "a.npy")])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit, match="corrupt"):
        main(["map", "--load", str(tmp_path / "bad.pt"), "--apply", str(tmp_path / "a.npy")])


def _ring(n=400, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    return np.stack([np.cos(t), np.sin(t)], 1) * 2 + 0.1 * rng.normal(size=(n, 2))


@pytest.mark.parametrize("command", ["score", "flow"])
def test_density_commands_fit_save_sample_and_evaluate(tmp_path, capsys, command):
    np.save(tmp_path / "x.npy", _ring())
    model = tmp_path / "model.pt"
    samples = tmp_path / "s.csv"
    argv = [command, str(tmp_path / "x.npy"), "--quick", "--out", str(model)]
    assert main([*argv, "--sample", "50", "--output", str(samples)]) == 0
    assert np.loadtxt(samples, delimiter=",").shape == (50, 2)
    logp = tmp_path / "lp.npy"
    points = tmp_path / "p.npy"
    np.save(points, _ring(7, seed=1))
    assert (
        main([command, "--load", str(model), "--log-prob", str(points), "--output", str(logp)])
        == 0
    )
    values = np.load(logp)
    assert values.shape == (7,) and np.isfinite(values).all()
    assert "fitted in" in capsys.readouterr().out


def test_reconstruct_denoises_with_the_shipped_regularizer(tmp_path):
    rng = np.random.default_rng(0)
    clean = np.kron(rng.uniform(0.2, 0.8, size=(4, 4)), np.ones((8, 8)))
    noisy = clean + 15 / 255 * rng.normal(size=clean.shape)
    np.save(tmp_path / "y.npy", noisy)
    assert (
        main(["reconstruct", str(tmp_path / "y.npy"), "--sigma", "15", "--max-iter", "200"]) == 0
    )
    x = np.load(tmp_path / "y_reconstructed.npy")
    assert x.shape == clean.shape
    assert np.mean((x - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    out = tmp_path / "x.png"
    assert main(["reconstruct", str(tmp_path / "y.npy"), "--output", str(out)]) == 0
    assert out.stat().st_size > 100


def test_outputs_are_checked_before_the_work(tmp_path):
    np.save(tmp_path / "x.npy", _ring())
    data = str(tmp_path / "x.npy")
    with pytest.raises(SystemExit, match="does not exist"):
        main(["map", data, data, "--out", str(tmp_path / "missing" / "map.pt")])
    with pytest.raises(SystemExit, match="must end in"):
        main(["map", data, data, "--out", str(tmp_path / "map.txt")])
    with pytest.raises(SystemExit, match="must end in"):
        main(["score", data, "--sample", "5", "--output", str(tmp_path / "s.txt")])
    with pytest.raises(SystemExit, match="not both"):
        main(["flow", data, "--load", str(tmp_path / "m.pt")])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["flow", "--load", str(tmp_path / "m.pt"), "--sample", "3"])
    np.save(tmp_path / "empty.npy", np.zeros((0, 2)))
    with pytest.raises(SystemExit, match="samples"):
        main(["score", str(tmp_path / "empty.npy"), "--quick"])
    with pytest.raises(SystemExit):
        main(["map", data, data, "--seed", "-1"])
    with pytest.raises(SystemExit):  # one result file: samples or log-densities, not both
        main(["score", "--load", "m.pt", "--sample", "3", "--log-prob", data])


def test_reconstruct_input_errors_are_clear(tmp_path):
    np.save(tmp_path / "y.npy", np.zeros((16, 16)))
    image = str(tmp_path / "y.npy")
    with pytest.raises(SystemExit, match="needs --mask"):
        main(["reconstruct", image, "--task", "inpaint"])
    with pytest.raises(SystemExit, match="--mask file .* does not exist"):
        main(["reconstruct", image, "--task", "inpaint", "--mask", str(tmp_path / "m.npy")])
    np.save(tmp_path / "m.npy", np.ones((2, 2, 2)))
    with pytest.raises(SystemExit, match="2-D array"):
        main(["reconstruct", image, "--task", "inpaint", "--mask", str(tmp_path / "m.npy")])
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(SystemExit, match="cannot read IMAGE"):
        main(["reconstruct", str(tmp_path / "bad.npy")])
    with pytest.raises(SystemExit, match="sigma"):
        main(["reconstruct", image, "--sigma", "7"])
