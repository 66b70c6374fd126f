r"""Runnable studies of otgrad: benchmarks, paper reproductions and speed measurements.

Each study lives in its own folder and runs from a checkout of the repository as
``python -m applications.<name> ... [--quick]``; ``python -m applications.report`` renders
``docs/benchmarks.md`` from the committed results. This package is not part of the
installed ``otgrad`` distribution (``pyproject.toml`` packages ``otgrad*`` only).
"""
