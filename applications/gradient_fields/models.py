r"""The networks and fields of the gradient-field study."""

from __future__ import annotations

import math
from collections.abc import Callable

from otgrad.data.fields import ConvexField, GradientField, NonconvexField
from otgrad.nn import CRR, ICGN, ICNN, RR, GradientNetwork, GradNetC, GradNetM, MLPPotential

__all__ = ["TABLES", "POLYMAX_WIDTHS", "make_model", "polymax_model"]

_MODELS: dict[str, Callable[[], GradientNetwork]] = {
    "ICNN": lambda: ICNN(2, 7, layers=2),
    "ICGN": lambda: ICGN(2, 32, nodes=None),  # the exact path integral
    "CRR": lambda: CRR(2, ridges=10, knots=7),
    "mGradNet-C": lambda: GradNetC(2, 7, layers=4, activation="tanh"),
    "mGradNet-M": lambda: GradNetM(2, 7, modules=4, activation="softmax", beta=5.0),
    "MLP": lambda: MLPPotential(2, 8, layers=2),
    "RR": lambda: RR(2, ridges=10, knots=7),
    "GradNet-C": lambda: GradNetC(2, 7, layers=4, monotone=False, activation="tanh"),
    "GradNet-M": lambda: GradNetM(2, 7, modules=4, monotone=False, activation="softmax", beta=5.0),
}

#: The fields of Tables 1 and 2.
TABLES: dict[str, Callable[[], GradientField]] = {
    "convex": ConvexField,
    "nonconvex": NonconvexField,
}

#: The authors' hidden widths of the PolyMax models at a budget of 1024 d parameters.
POLYMAX_WIDTHS = {
    "mGradNet-C": {2: 93, 32: 629, 256: 948, 1024: 1003},
    "mGradNet-M": {2: 169, 32: 247, 256: 254, 1024: 255},
}


def make_model(name: str) -> GradientNetwork:
    r"""The study's model called ``name`` (a key of the paper's tables)."""
    if name not in _MODELS:
        raise ValueError(f"model must be one of {sorted(_MODELS)}, got {name!r}")
    return _MODELS[name]()


def _width(a: float, b: float, budget: float) -> int:
    # the positive root of h^2 a + h b = budget
    if a == 0:
        return max(1, round(budget / b))
    return max(1, round((-b + math.sqrt(b * b + 4 * a * budget)) / (2 * a)))


def polymax_model(name: str, d: int) -> GradientNetwork:
    r"""A PolyMax model at the budget of :math:`1024 d` parameters (the authors' widths)."""
    budget = 1024 * d
    if name == "mGradNet-C":
        h = POLYMAX_WIDTHS[name].get(d) or _width(0, d + 20, budget - d)
        return GradNetC(d, h, layers=4, activation="wtanh")
    if name == "mGradNet-M":
        h = POLYMAX_WIDTHS[name].get(d) or _width(0, 4 * (d + 1), budget - d - 12)
        return GradNetM(d, h, modules=4, activation="wsoftmax")
    if name == "ICNN":  # 2 (d h + h) + h^2 + h + d + 1
        return ICNN(d, _width(1, 2 * d + 3, budget - d - 1), layers=2)
    if name == "MLP":  # d h + h + h^2 + h + h + 1
        return MLPPotential(d, _width(1, d + 3, budget - 1), layers=2)
    raise ValueError(f"model must be mGradNet-C, mGradNet-M, ICNN or MLP, got {name!r}")
