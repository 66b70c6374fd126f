r"""Renders ``docs/benchmarks.md`` from the template ``docs/benchmarks.md.in``.

The template is Markdown with placeholders ``{{ app.name }}``: each is replaced by the
string returned by ``name()``, a public function of ``applications/<app>/report.py`` (one
defined there, not imported), which reads that application's committed results and
builds its tables with :func:`applications.common.markdown_table`. The prose lives in the
template; the numbers come from the JSON files::

    python -m applications.report            # writes docs/benchmarks.md
    python -m applications.report --check    # exits 1 if docs/benchmarks.md is out of date
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import pathlib
import re
import sys
from collections.abc import Sequence

from .common import DOCS

__all__ = ["TEMPLATE", "OUTPUT", "placeholders", "resolve", "render", "main"]

TEMPLATE = DOCS / "benchmarks.md.in"
OUTPUT = DOCS / "benchmarks.md"

_ANY = re.compile(r"\{\{(.*?)\}\}")
_NAME = re.compile(r"\s*([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s*")


def placeholders(template: str) -> list[tuple[str, str]]:
    r"""The ``(application, function)`` of every placeholder of ``template``, in order.

    Raises:
        ValueError: A ``{{ ... }}`` is not of the form ``{{ app.name }}``.
    """
    found = []
    for m in _ANY.finditer(template):
        name = _NAME.fullmatch(m.group(1))
        if name is None:
            raise ValueError(f"malformed placeholder {m.group(0)!r}")
        found.append((name.group(1), name.group(2)))
    return found


def resolve(app: str, name: str) -> str:
    r"""Calls ``applications.<app>.report.<name>()``, a public function of that module."""
    module = importlib.import_module(f"applications.{app}.report")
    fn = getattr(module, name, None)
    if name.startswith("_") or getattr(fn, "__module__", None) != module.__name__:
        raise KeyError(f"applications.{app}.report has no placeholder function {name!r}")
    text = fn()
    if not isinstance(text, str):
        raise TypeError(f"applications.{app}.report.{name}() returned {type(text).__name__}")
    return text.strip("\n")


def render(template: str) -> str:
    r"""The template with every placeholder replaced (trailing spaces of lines removed)."""
    placeholders(template)  # malformed placeholders fail before anything runs
    cache: dict[tuple[str, str], str] = {}

    def sub(m: re.Match) -> str:
        key = _NAME.fullmatch(m.group(1)).groups()
        if key not in cache:
            cache[key] = resolve(*key)
        return cache[key]

    text = _ANY.sub(sub, template)
    return "\n".join(line.rstrip() for line in text.split("\n"))


def main(argv: Sequence[str] | None = None) -> int:
    r"""Renders the template to the output file, or with ``--check`` compares them."""
    parser = argparse.ArgumentParser(
        prog="python -m applications.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--template", type=pathlib.Path, default=TEMPLATE)
    parser.add_argument("--out", type=pathlib.Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render(args.template.read_text())
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current == text:
            print(f"{args.out} is up to date")
            return 0
        diff = difflib.unified_diff(
            current.splitlines(), text.splitlines(), "current", "rendered", lineterm=""
        )
        print("\n".join(diff))
        return 1
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
