"""The documentation's examples run as doctests, each in a fresh temporary folder (the
files they save stay out of the checkout)."""

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
