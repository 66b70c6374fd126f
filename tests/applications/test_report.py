"""``docs/benchmarks.md`` is rendered from its template and the committed results."""

from __future__ import annotations

import pytest

from applications import report
from applications.common import DOCS


def test_every_placeholder_resolves(tmp_path):
    template = report.TEMPLATE.read_text()
    found = report.placeholders(template)
    assert len(found) > 50
    out = tmp_path / "benchmarks.md"
    assert report.main(["--out", str(out)]) == 0
    text = out.read_text()
    assert "{{" not in text and "}}" not in text
    for app, name in set(found):  # each resolves to non-empty text
        assert report.resolve(app, name) or name.endswith("gemm_rate"), (app, name)
    assert text.count("\n| ") > 150  # the tables are there


def test_committed_page_is_up_to_date():
    assert report.render(report.TEMPLATE.read_text()) == (DOCS / "benchmarks.md").read_text()


def test_malformed_and_unknown_placeholders():
    with pytest.raises(ValueError, match="malformed"):
        report.render("{{ speed }}")
    for name in ("nothing_here", "_core", "markdown_table"):  # private or imported: no
        with pytest.raises(KeyError, match="no placeholder function"):
            report.render(f"{{{{ speed.{name} }}}}")
    assert report.render("no placeholders  \n") == "no placeholders\n"
