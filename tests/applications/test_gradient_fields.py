"""The gradient-field study: model sizes, the PolyMax budget and a quick run end to end."""

from __future__ import annotations

import json
import math

import pytest

from applications.gradient_fields.__main__ import main
from applications.gradient_fields.models import make_model, polymax_model
from applications.gradient_fields.published import PAPER


def test_models_match_the_paper_sizes():
    sizes = {
        m: sum(p.numel() for p in make_model(m).parameters()) for t in PAPER for m in PAPER[t]
    }
    assert sizes["mGradNet-C"] == sizes["GradNet-C"] == 100
    assert sizes["mGradNet-M"] == sizes["GradNet-M"] == 94
    assert sizes["ICGN"] == 96 and sizes["CRR"] == sizes["RR"] == 102
    for t in PAPER:
        for m, (published, _, _) in PAPER[t].items():
            assert abs(sizes[m] - published) <= 8, m
    assert make_model("mGradNet-C").monotone and not make_model("GradNet-M").monotone


@pytest.mark.parametrize("d", [2, 32])
def test_polymax_budget(d):
    for m in ("mGradNet-C", "mGradNet-M", "ICNN", "MLP"):
        n = sum(p.numel() for p in polymax_model(m, d).parameters())
        assert abs(n - 1024 * d) / (1024 * d) < 0.06, (m, n)


def test_quick_run(tmp_path, capsys):
    out = tmp_path / "fields"
    assert main(["--quick", "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "Table 1" in text and "PolyMax" in text
    tables = json.loads((out / "tables.json").read_text())
    polymax = json.loads((out / "polymax.json").read_text())
    for name in ("fields.png", "errors_convex_paper.png", "errors_nonconvex_improved.png"):
        assert (out / name).stat().st_size > 5_000
    convex = tables["convex"]
    for protocol in ("paper", "improved"):
        for e in convex.values():
            assert math.isfinite(e[protocol]["mse_db"][0])
        # the paper's headline holds even after a few epochs
        assert convex["mGradNet-C"][protocol]["mse_db"][0] < convex["ICNN"][protocol]["mse_db"][0]
    assert set(polymax) >= {"2", "8"} and polymax["8"]["mGradNet-C"]["params"] > 7000
    assert tables["command"].startswith("python -m applications.gradient_fields --quick")
    assert tables["provenance"]["machine"]["cores"] >= 1

    # the improved protocol's L-BFGS phase alone, from the saved Adam-phase weights
    again = tmp_path / "again"
    args = ["--protocols", "improved", "--init-from", str(out / "weights_paper.pt")]
    args += ["--trials", "1", "--refine-iterations", "20", "--polymax-dims", ""]
    assert main([*args, "--workers", "1", "--out", str(again)]) == 0
    redo = json.loads((again / "tables.json").read_text())["convex"]["mGradNet-C"]["improved"]
    assert redo["mse_db"][0] == pytest.approx(
        convex["mGradNet-C"]["improved"]["mse_db"][0], abs=0.5
    )


def test_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--trials", "0"])
    with pytest.raises(ValueError, match="model must be"):
        make_model("resnet")
