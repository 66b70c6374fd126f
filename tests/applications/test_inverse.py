"""The inverse-problem benchmarks end to end on a tiny data folder (``--quick``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from applications.inverse.__main__ import RESUME, main


@pytest.fixture
def data_dir(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1:64j, 0:1:64j]
    for folder, n, shape in [
        ("bsd/train", 8, (48, 48)),
        ("bsd/Set68", 2, (40, 56)),
        ("ct/train", 2, (64, 64)),
        ("ct/validation", 2, (64, 64)),
    ]:
        d = tmp_path / folder
        d.mkdir(parents=True)
        for i in range(n):
            smooth = 0.5 + 0.3 * np.sin(8 * xx + i) * np.cos(5 * yy - i)
            img = smooth + 0.05 * rng.standard_normal(smooth.shape)
            img = np.clip(img[: shape[0], : shape[1]], 0, 1)
            Image.fromarray((img * 255).astype(np.uint8)).save(d / f"{i:03d}.png")
    return tmp_path


def test_quick_run(data_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "--tasks",
            "train,denoise,ct,deblur,convergence,speed,train-speed",
            "--quick",
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    train = json.loads((out / "inverse_train.json").read_text())
    assert set(train["strengths"]) == {"5", "15", "25"}
    assert train["data"].endswith("train")
    denoise = json.loads((out / "inverse_denoise.json").read_text())
    for row in denoise["results"].values():
        # a tuned convex regularizer never does worse than returning the noisy image
        assert row["convex_regularizer"] > row["noisy"]
        assert row["tv"] > row["noisy"]
    ct = json.loads((out / "inverse_ct.json").read_text())
    assert np.isfinite([ct["fbp"], ct["tv"], ct["convex_regularizer"]]).all()
    conv = json.loads((out / "inverse_convergence.json").read_text())
    assert conv["two_inits_relative_distance"] < 1e-4
    speed = json.loads((out / "inverse_speed.json").read_text())
    for sigma in ("5", "15", "25"):
        for solver in ("ours_tol0.001", "tv_tol0.001", "skimage_tv"):
            assert speed[sigma][solver]["seconds"] > 0
            assert speed[sigma][solver]["psnr"] > denoise["results"][sigma]["noisy"] - 5
    train_speed = json.loads((out / "inverse_train_speed.json").read_text())
    archs = [r["arch"] for r in train_speed["networks"]]
    assert archs == ["crr", "cascade", "modular", "crr", "modular"]
    assert all(r["parameters"] > 0 for r in train_speed["networks"])
    for name in ("denoise", "ct", "deblur", "convergence"):
        assert (out / f"inverse_{name}.png").stat().st_size > 1000
    assert "sigma=25" in capsys.readouterr().out
    assert train["command"].startswith("python -m applications.inverse --tasks")
    assert train["provenance"]["command"] == train["command"]

    # the architecture table gathers train,denoise runs (here the one above)
    assert main(["--tasks", "architectures", "--runs", str(out), "--out", str(out / "t")]) == 0
    (row,) = json.loads((out / "t" / "inverse_architectures.json").read_text())["runs"]
    assert row["arch"] == "crr" and row["parameters"] == train["parameters"]
    assert row["validation_psnr"] == train["validation_psnr"]
    assert row["bsd68_psnr"] == {k: r["convex_regularizer"] for k, r in denoise["results"].items()}
    with pytest.raises(SystemExit, match="needs inverse_train.json"):
        main(["--tasks", "architectures", "--runs", str(tmp_path), "--out", str(out / "t")])


def test_training_in_sessions(data_dir, tmp_path, capsys):
    """With --time-limit, a session stops at an epoch boundary with exit status RESUME and
    the same command continues the run from its checkpoint."""
    out = tmp_path / "out"
    argv = ["--tasks", "train", "--quick", "--data-dir", str(data_dir), "--out", str(out)]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--time-limit", "1e-6", "--no-figures"])
    assert stop.value.code == RESUME
    assert "stopped after 2 of 4 iterations" in capsys.readouterr().out
    assert (out / "train_state.pt").exists() and not (out / "inverse_train.json").exists()
    assert main([*argv, "--no-figures"]) == 0
    train = json.loads((out / "inverse_train.json").read_text())
    assert train["finished"] and train["iterations"] == 4


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["--tasks", "train,bogus", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="methods"):
        main(["--tasks", "denoise", "--methods", "bm3d", "--out", str(tmp_path)])
