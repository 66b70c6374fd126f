"""The flow benchmarks: a quick run end to end, the mixture, the report and the step cost."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from applications.flows.__main__ import main
from applications.flows.report import tables
from applications.flows.study import gaussian_mixture

ROOT = pathlib.Path(__file__).resolve().parents[2]
HAS_ZUKO = importlib.util.find_spec("zuko") is not None


def test_quick_run(tmp_path):
    models = "cpflow,nsf" if HAS_ZUKO else "cpflow"
    out = tmp_path / "flows"
    args = ["--quick", "--sets", "8gaussians,rings", "--models", models]
    assert main([*args, "--workers", "1", "--out", str(out)]) == 0
    toy = json.loads((out / "flows_toy2d.json").read_text())
    rows = {(r["set"], r["model"]): r for r in toy["rows"]}
    assert set(rows) == {(s, m) for s in ("8gaussians", "rings") for m in models.split(",")}
    for (_, m), r in rows.items():
        assert np.isfinite(r["nll"]) and r["nonfinite_samples"] == 0
        assert 0.5 < r["grid_mass"] <= 1.01  # a normalized density, even barely trained
        if m == "cpflow":
            assert r["inversion_residual"] < 1e-3
    assert (out / "flows_toy2d.png").stat().st_size > 10_000
    mix = json.loads((out / "flows_mixture.json").read_text())
    assert all(np.isfinite(r["nll"]) and r["nll"] > r["nll_true"] - 0.5 for r in mix["rows"])
    assert "| 8gaussians |" in (out / "results.md").read_text()
    assert toy["command"].startswith("python -m applications.flows --quick")


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match="unknown tasks"):
        main(["--tasks", "nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown sets"):
        main(["--sets", "nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="positive"):
        main(["--steps", "0", "--models", "cpflow", "--out", str(tmp_path)])


def test_gaussian_mixture_density_is_normalized_and_matches_samples():
    sample, log_prob = gaussian_mixture(2, components=3, seed=1)
    x = sample(20000, 0)
    # importance check: E_q[p/q] = 1 with q a wide Gaussian
    rng = np.random.default_rng(0)
    q = 8.0 * rng.standard_normal((200000, 2))
    log_q = -0.5 * (q**2).sum(-1) / 64 - np.log(2 * np.pi * 64)
    assert abs(np.exp(log_prob(q) - log_q).mean() - 1) < 0.03
    assert np.isfinite(log_prob(x)).all() and sample(5, 3).shape == (5, 2)
    np.testing.assert_array_equal(sample(5, 3), sample(5, 3))


def test_report_marks_missing_models():
    row = {"set": "moons", "model": "cpflow", "nll": 2.4, "w2": 0.1, "grid_mass": 1.0,
           "params": 10, "fit_seconds": 1.0, "sample_seconds_per_1k": 0.1,
           "inversion_residual": 1e-6}  # fmt: skip
    text = tables({"toy2d": {"rows": [row]}})
    assert "| moons | 2.400 |" in text and "CP-Flow − NSF" not in text


def test_cost_quick(tmp_path):
    out = tmp_path / "cost.json"
    cmd = [sys.executable, "-m", "applications.flows.cost", "--quick", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    r = json.loads(out.read_text())
    for row in r["rows"]:  # the benchmark itself asserts the pairs agree in float64
        assert row["logprob_max_abs_diff_f64"] < 1e-9
        assert row["stochastic_logprob_max_abs_diff_f64"] < 1e-7
        assert row["inverse_residual_float64"] < 1e-5
        assert row["step_s_closed"] > 0 and row["step_s_autograd_stochastic"] > 0
    assert r["command"] == "python -m applications.flows.cost --quick --out " + str(out)
