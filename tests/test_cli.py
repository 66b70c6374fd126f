from __future__ import annotations

import json
import math
import subprocess
import sys

from otgrad.cli import main


def test_help_lists_the_tasks(capsys):
    assert main([]) == 0
    text = capsys.readouterr().out
    assert "demo" in text and "map" in text


def test_field_demo_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["field-demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dB" in text
    results = json.loads((out / "results.json").read_text())
    assert (out / "demo.png").stat().st_size > 10_000
    assert math.isfinite(results["test_mse_db"]) and results["test_mse_db"] < -20
    assert results["parameters"] == 100 and results["monotone"]


def test_console_script_entry_point():
    r = subprocess.run(
        [sys.executable, "-m", "otgrad.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in r.stdout


def test_ot_demo_fits_a_map_end_to_end(tmp_path, capsys):
    out = tmp_path / "ot-demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "W2(T#source, target)" in text
    r = json.loads((out / "results.json").read_text())
    assert (out / "demo.png").stat().st_size > 10_000
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
