"""The helpers shared by the applications."""

from __future__ import annotations

import json

import pytest

from applications.common import (
    command_line,
    machine,
    markdown_table,
    provenance,
    save_json,
    split_list,
    where,
)


def test_markdown_table():
    text = markdown_table(["a", "b", "c"], [[1, "x", 2.5]], align="-lc")
    assert text.splitlines() == ["| a | b | c |", "|---|:---|:---:|", "| 1 | x | 2.5 |"]
    assert markdown_table(["a", "b"], [], align="r").splitlines()[1] == "|---:|---:|"
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a", "b"], [[1]])
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a", "b"], [[1, 2]], align="rrr")


def test_provenance_is_recorded_and_rendered(tmp_path):
    p = provenance("python -m applications.demo --quick")
    for key in ("machine", "torch", "threads", "load_average", "date", "git_commit", "command"):
        assert key in p
    assert p["cuda_device"] is None and p["machine"]["cores"] >= 1
    save_json({"provenance": p}, tmp_path / "r.json")
    r = json.loads((tmp_path / "r.json").read_text())
    assert f"{r['provenance']['machine']['cores']} cores" in machine(r)
    assert machine({}) == "machine not recorded"
    assert machine({"device": "x86_64, 2 threads"}) == "x86_64, 2 threads"
    assert where({"provenance": {"machine": "CPU", "note": "shared"}}) == "CPU; shared"


def test_command_line_helpers():
    assert command_line("applications.fields", ["--dims", ""]) == (
        "python -m applications.fields --dims ''"
    )
    assert split_list("2,,8", int) == [2, 8]
