"""The speed benchmark runs end to end in --quick mode (no timing is asserted)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_core_speed_quick(tmp_path):
    out = tmp_path / "speed.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "core_speed.py"), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    r = json.loads(out.read_text())
    for row in r["calculus"]:
        assert row["max_abs_diff_trace"] < 1e-3 * max(1.0, row["dim"])
        assert row["max_abs_diff_logdet"] < 1e-2
        assert row["trace_closed"] > 0 and row["logdet_autograd"] > 0
    assert {"mGradNet-C", "MLP field", "ICNN gradient"} <= set(r["training_step"][0])
    assert all(q["max_relative_error"] < 1e-2 for q in r["quadrature"])


def test_flows_cost_quick(tmp_path):
    out = tmp_path / "cost.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "flows_cost.py"), "--quick", "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    r = json.loads(out.read_text())
    for row in r["rows"]:  # the script itself asserts the pairs agree in float64
        assert row["logprob_max_abs_diff_f64"] < 1e-9
        assert row["stochastic_logprob_max_abs_diff_f64"] < 1e-7
        assert row["inverse_residual_float64"] < 1e-5
        assert row["step_s_closed"] > 0 and row["step_s_autograd_stochastic"] > 0
