r"""otgrad — gradient networks for optimal transport and generative modeling.

The submodules load on first use, so ``import otgrad`` stays light:

* :mod:`otgrad.nn` — GradNets and mGradNets, combinators, baselines;
* :mod:`otgrad.calculus` — quadrature potentials, inverse maps, log-determinants;
* :mod:`otgrad.ot` — :class:`~otgrad.ot.BrenierMap` (optimal transport maps);
* :mod:`otgrad.score` — :class:`~otgrad.score.ScoreModel` (conservative score models);
* :mod:`otgrad.flows` — :class:`~otgrad.flows.ConvexPotentialFlow` (normalizing flows);
* :mod:`otgrad.inverse` — :class:`~otgrad.inverse.ConvexRegularizer` and ``reconstruct``;
* :mod:`otgrad.data`, :mod:`otgrad.train`, :mod:`otgrad.io` — data, the training loop, files.

The heads are also importable from here: ``from otgrad import BrenierMap``.

References:
    | Gradient Networks (Chaudhari, Pranav, Moura, IEEE Trans. Signal Processing 73, 2025).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("calculus", "data", "flows", "inverse", "io", "nn", "ot", "score", "train")
_HEADS = {
    "BrenierMap": "ot",
    "ScoreModel": "score",
    "ConvexPotentialFlow": "flows",
    "ConvexRegularizer": "inverse",
}

__all__ = ["__version__", *_SUBMODULES, *_HEADS]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _HEADS:
        return getattr(importlib.import_module(f".{_HEADS[name]}", __name__), name)
    raise AttributeError(f"module 'otgrad' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
