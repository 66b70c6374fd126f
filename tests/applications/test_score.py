"""The score benchmarks: the metrics, the matched baseline, the report and a quick run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from applications.score.__main__ import main
from applications.score.metrics import mmd
from applications.score.report import tables
from applications.score.study import matched_mlp_width
from otgrad.data import sample_toy2d


def test_mmd_separates_distributions_and_not_samples_of_one():
    a, b = sample_toy2d("moons", 1500, 0), sample_toy2d("moons", 1500, 1)
    c = sample_toy2d("circles", 1500, 2)
    same, diff = mmd(a, b), mmd(a, c)
    assert abs(same) < 2e-3 < diff


def test_matched_mlp_width_matches_the_parameter_count():
    from otgrad.score import build_score_model, parameter_count

    ref = parameter_count(build_score_model("gradnet", 2))
    w = matched_mlp_width(ref)
    assert abs(parameter_count(build_score_model("mlp", 2, hidden=w)) - ref) < 0.02 * ref


def test_report_renders_every_task(monkeypatch):
    results = {
        "toy2d": {
            "rows": [
                {"set": "moons", "model": "gradnet", "nll_ode": 1.0, "w2": 0.1, "mmd": 1e-3,
                 "nll_grid": 1.1, "w2_floor": 0.05, "mmd_floor": 1e-4},
                {"set": "moons", "model": "mlp", "nll_ode": 1.2, "w2": 0.2, "mmd": 2e-3},
                {"set": "moons", "model": "gradmlp", "nll_ode": 0.9, "w2": 0.2, "mmd": 2e-3},
            ]
        },
        "mala": {"rows": [{"step": 0.01, "ula_w2": 0.3, "mala_w2": 0.2, "mala_acceptance": 0.7}],
                 "start_w2": 0.1},
        "trace": {"rows": [{"d": 2, "exact_us_per_sample": 10.0, "autograd_us_per_sample": 20.0,
                            "hutchinson_us_per_sample": 12.0, "autograd_over_exact": 2.0,
                            "hutchinson_over_exact": 1.2}]},
    }  # fmt: skip
    text = tables(results)
    assert "| moons | 1.000 | 0.100 |" in text and "0.70" in text and "2.0×" in text
    from applications.score import report

    def toy_result(head: str, name: str) -> dict:
        rows = [{**r, "fit_seconds": 1.0} for r in results["toy2d"]["rows"]]
        return {"rows": rows, "protocol": {"steps": 10, "n_test": 1}}

    monkeypatch.setattr(report, "load_result", toy_result)
    assert "below both MLP baselines on 0 of 1 sets" in report.toy2d()


def test_quick_run(tmp_path, capsys):
    out = tmp_path / "score"
    args = ["--quick", "--out", str(out), "--sets", "8gaussians", "--models", "gradnet,mlp"]
    assert main([*args, "--workers", "1", "--tasks", "toy2d,trace"]) == 0
    text = capsys.readouterr().out
    assert "| 8gaussians |" in text and "| 2 |" in text
    for f in ("score_toy2d.json", "score_trace.json", "score_samples.png", "score_fields.png"):
        assert (out / f).exists()
    rows = json.loads((out / "score_toy2d.json").read_text())["rows"]
    assert {r["model"] for r in rows} == {"gradnet", "mlp"}
    assert all(np.isfinite(r["nll_ode"]) for r in rows)
    with pytest.raises(SystemExit, match="unknown tasks"):
        main(["--out", str(out), "--tasks", "bogus"])
