from __future__ import annotations

import json
import math
import subprocess
import sys

from otgrad.cli import main


def test_help_lists_the_tasks(capsys):
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_demo_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
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
