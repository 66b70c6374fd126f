"""The optimal transport benchmarks: the Gaussian pairs, the report and a quick run."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from applications.ot_maps.__main__ import main
from applications.ot_maps.data import gaussian_pair, load_w2bench
from applications.ot_maps.peers import OTT, ott_available
from applications.ot_maps.report import tables
from otgrad.ot import l2_uvp


def test_gaussian_pair_is_consistent():
    data = gaussian_pair(3, 20000, 20000, seed=2)
    T = data["T_test"]
    # the true map pushes the source onto the target: same moments as the target samples
    np.testing.assert_allclose(T.mean(0), data["Y"].mean(0), atol=0.05)
    np.testing.assert_allclose(np.cov(T.T), np.cov(data["Y"].T), rtol=0.05, atol=0.05)
    ev = np.linalg.eigvalsh(np.cov(data["Y"].T))
    assert ev.max() / ev.min() > 8  # anisotropic (×16 by construction)
    assert data["var"] == pytest.approx(np.trace(np.cov(data["Y"].T)), rel=0.05)


def test_true_affine_matches_the_pair():
    data = gaussian_pair(4, 10, 50, seed=5)
    A, b = data["A"], data["b"]
    np.testing.assert_allclose(data["X_test"] @ A + b, data["T_test"])


def test_report_renders_every_task():
    rows = [
        dict(d=2, method="BrenierMap", l2_uvp=0.1, seconds=1.0, cosine=0.99, steps=10),
        dict(d=2, method="linear (Bures)", l2_uvp=0.2, seconds=0.0, cosine=0.98),
    ]
    text = tables({"gaussian": {"rows": rows}, "w2bench": {"rows": rows}})
    assert "| BrenierMap | 0.10 (1 s) |" in text
    assert "best published" in text


W2_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "w2bench")


def test_w2bench_arrays_when_available():
    if not os.path.isdir(os.path.join(W2_ROOT, "arrays")):
        pytest.skip("the W2 benchmark data is not next to this checkout")
    data = load_w2bench(W2_ROOT, 2)
    assert data["X"].shape == (32768, 2) and data["T_test"].shape == (4096, 2)
    # the identity baseline of the benchmark's README (32.6 %)
    assert l2_uvp(data["X_test"], data["T_test"], data["var"]) == pytest.approx(32.6, abs=2.0)


def test_quick_run(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["--quick", "--out", str(out), "--tasks", "gaussian,toy2d", "--gaussian-dims", "2"]
    assert main([*args, "--workers", "1"]) == 0
    g = json.loads((out / "ot_gaussian.json").read_text())
    methods = {r["method"] for r in g["rows"]}
    assert {"BrenierMap", "linear (Bures)", "POT LinearTransport"} <= methods
    assert all(math.isfinite(r["l2_uvp"]) for r in g["rows"])
    assert g["command"].startswith("python -m applications.ot_maps --quick")
    assert "load_average" in g["provenance"]
    t = json.loads((out / "ot_toy2d.json").read_text())
    assert any((out / r["figure"]).stat().st_size > 10_000 for r in t["rows"] if "figure" in r)
    assert "| BrenierMap |" in capsys.readouterr().out
    assert "| BrenierMap |" in (out / "results.md").read_text()


def test_w2bench_both_protocols_within_a_budget(tmp_path):
    if not os.path.isdir(os.path.join(W2_ROOT, "arrays")):
        pytest.skip("the W2 benchmark data is not next to this checkout")
    out = tmp_path / "w2"
    args = ["--quick", "--out", str(out), "--tasks", "w2bench", "--w2-root", W2_ROOT]
    args += ["--w2-protocols", "fixed,fresh", "--budget", "4", "--workers", "1"]
    assert main(args) == 0
    w = json.loads((out / "ot_w2bench.json").read_text())
    rows = {r["method"]: r for r in w["rows"]}
    fixed, fresh = rows["BrenierMap"], rows["BrenierMap (fresh samples)"]
    assert fresh["protocol"] == "fresh" and fresh["n_train"] is None
    for r in (fixed, fresh):
        assert r["options"]["time_limit"] == 4 and r["steps"] > 10
        assert r["train_seconds"] < 4 + 1  # the budget is a hard stop (plus the last step)
        assert r["l2_uvp"] < rows["linear (Bures)"]["l2_uvp"]  # d = 2: beats the linear map
    assert "BrenierMap (fresh samples) L2-UVP (%)" in (out / "results.md").read_text()


def test_peers_quick_run(tmp_path, capsys):
    if not os.path.isdir(os.path.join(W2_ROOT, "arrays")):
        pytest.skip("the W2 benchmark data is not next to this checkout")
    out = tmp_path / "peers"
    args = ["--quick", "--out", str(out), "--tasks", "peers", "--w2-root", W2_ROOT]
    assert main([*args, "--workers", "1"]) == 0
    p = json.loads((out / "ot_peers.json").read_text())
    rows = {r["method"]: r for r in p["rows"]}
    assert {r["d"] for r in p["rows"]} == {2}
    brenier = rows["BrenierMap"]
    assert brenier["budget"] == 3 and brenier["train_seconds"] < 3 + 1 and brenier["steps"] > 10
    assert brenier["l2_uvp"] < rows["POT LinearTransport"]["l2_uvp"]
    assert rows["POT MappingTransport (kernel)"]["budget"] is None
    if ott_available():
        assert rows[OTT]["steps"] >= 1 and math.isfinite(rows[OTT]["l2_uvp"])
    else:
        assert OTT not in rows and "peers: skipped OTT-JAX" in capsys.readouterr().out
    assert "d = 2, 0.05 min" in (out / "results.md").read_text()


def test_digits_quick_run(tmp_path):
    out = tmp_path / "digits"
    assert main(["--quick", "--tasks", "digits", "--out", str(out)]) == 0
    r = json.loads((out / "ot_digits.json").read_text())
    assert r["d"] == 64 and r["n_train"][0] > 100
    assert r["w2_mapped"] < 0.8 * r["w2_source"]  # the held-out ones move towards the target
    assert (out / r["figure"]).stat().st_size > 10_000


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="unknown tasks"):
        main(["--tasks", "bogus", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="positive"):
        main(["--workers", "0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="peer-budgets must be positive"):
        main(["--peer-budgets", "0,300", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="peer-dims must be positive"):
        main(["--peer-dims", "8.5", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown w2-protocols"):
        main(["--w2-protocols", "online", "--out", str(tmp_path)])
