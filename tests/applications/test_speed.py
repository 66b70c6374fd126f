"""The speed benchmarks run end to end in --quick mode (no timing is asserted)."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from applications.speed.core_speed import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(module: str, *args: str) -> None:
    cmd = [sys.executable, "-m", f"applications.speed.{module}", "--quick", *args]
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)


def test_core_speed_quick(tmp_path):
    out = tmp_path / "speed.json"
    run("core_speed", "--out", str(out))
    r = json.loads(out.read_text())
    for row in r["calculus"]:
        assert row["max_abs_diff_trace"] < 1e-3 * max(1.0, row["dim"])
        assert row["max_abs_diff_logdet"] < 1e-2
        assert row["trace_closed"] > 0 and row["logdet_autograd"] > 0
    models = {"mGradNet-C", "mGradNet-M", "MLP field", "ICNN gradient"}
    row = r["training_step"][0]
    assert models <= set(row)
    for m in models:  # the arithmetic floor is below the measured step
        assert row[f"{m} GFLOP"] > 0 and 0 < row[f"{m} floor ms"] < row[m]
    assert all(q["max_relative_error"] < 1e-2 for q in r["quadrature"])
    assert r["provenance"]["command"] == r["command"]


def test_core_speed_sections():
    assert build_parser().parse_args([]).sections == {"calculus", "training", "quadrature"}
    with pytest.raises(SystemExit):  # an unknown section is a usage error
        build_parser().parse_args(["--sections", "calculus,nope"])


def test_scale_quick(tmp_path):
    out = tmp_path / "scale.json"
    # the before/after section, this checkout against itself
    run("scale", "--out", str(out), "--baseline", str(ROOT))
    r = json.loads(out.read_text())
    b = r["brenier"]
    assert b["steps"] == 10 and b["samples_per_second"] > 0 and b["peak_rss_mb"] > b["data_mb"]
    assert b["l2_uvp_percent"] < 10  # the Gaussian initialization alone is close here
    assert [(x["processes"], x["threads"]) for x in r["scaling"]] == [(1, 1), (2, 1), (1, 2)]
    assert all(x["samples_per_second"] > 0 for x in r["scaling"])
    o = r["overhead"]["fit_tiny_ms_per_step"]
    assert o["this checkout"] > 0 and o["baseline"] > 0


def test_logdet_lowrank_quick(tmp_path):
    out = tmp_path / "logdet.json"
    run("logdet_lowrank", "--out", str(out))
    for row in json.loads(out.read_text())["rows"]:
        assert row["rank"] < row["dim"]  # the lemma's regime
        assert row["max_abs_diff_f64"] < 1e-9 and row["lowrank_ms"] > 0
