"""Random gradient networks of every architecture, for property tests (float64)."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from otgrad.nn import (
    CRR,
    ICGN,
    ICNN,
    RR,
    ConicalSum,
    Difference,
    GradNetC,
    GradNetM,
    LipschitzShift,
    MLPPotential,
    SingleLayerGradNet,
    StronglyConvex,
    Sum,
    TransformedRidgeSum,
)

ELEMENTWISE = ["linear", "tanh", "sigmoid", "softplus", "wtanh", "learned", "spline"]
CASCADE = ["tanh", "sigmoid", "softplus", "wtanh", "learned"]  # smooth: quadrature potential
MODULAR = ["softmax", "wsoftmax", "logcosh"]
KINDS = [
    "single",
    "single-softmax",
    "cascade",
    "modular",
    "sum",
    "conical",
    "strong",
    "shift",
    "difference",
    "ridge",
    "icnn",
    "mlp",
    "crr",
    "icgn",
]


def perturb(net: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Adds N(0, scale²) noise to every parameter: random parameters, not just the init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def build(kind: str, dim: int, hidden: int, layers: int, monotone: bool, act: int, seed: int):
    torch.manual_seed(seed)
    if kind == "single":
        return SingleLayerGradNet(dim, hidden, monotone, ELEMENTWISE[act % len(ELEMENTWISE)])
    if kind == "single-softmax":
        return SingleLayerGradNet(dim, hidden, monotone, "softmax")
    if kind == "cascade":
        return GradNetC(dim, hidden, layers, monotone, CASCADE[act % len(CASCADE)])
    if kind == "modular":
        return GradNetM(dim, hidden, layers, monotone, MODULAR[act % len(MODULAR)])
    if kind == "sum":
        return Sum(
            [GradNetC(dim, hidden, 2, monotone), GradNetM(dim, hidden, 2, monotone)],
            weights=[0.7, 0.4] if monotone else [0.7, -0.4],
        )
    if kind == "conical":
        return ConicalSum([GradNetC(dim, hidden, 2), SingleLayerGradNet(dim, hidden)])
    if kind == "strong":
        return StronglyConvex(
            GradNetC(dim, hidden, layers, True, CASCADE[act % len(CASCADE)]), 0.3
        )
    if kind == "shift":
        return LipschitzShift(GradNetC(dim, hidden, layers, False, CASCADE[act % len(CASCADE)]))
    if kind == "difference":
        return Difference(GradNetC(dim, hidden, layers), GradNetM(dim, hidden, 2))
    if kind == "ridge":
        inner = SingleLayerGradNet(dim, hidden, monotone, ["tanh", "sigmoid", "wtanh"][act % 3])
        return TransformedRidgeSum(inner, monotone=monotone)
    if kind == "crr":
        return (CRR if monotone else RR)(dim, hidden, knots=2 + act % 6)
    if kind == "icgn":
        return ICGN(dim, hidden, nodes=None if monotone else 16)
    if kind == "icnn":
        return ICNN(dim, hidden, max(1, layers - 1))
    if kind == "mlp":
        return MLPPotential(dim, hidden, max(1, layers - 1))
    raise ValueError(kind)


@st.composite
def networks(draw, kinds=KINDS, max_dim: int = 5, perturbation: bool = True, monotone=None):
    kind = draw(st.sampled_from(kinds))
    dim = draw(st.integers(1, max_dim))
    hidden = draw(st.integers(1, 8))
    layers = draw(st.integers(1, 4))
    monotone = draw(st.booleans()) if monotone is None else monotone
    act = draw(st.integers(0, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.0, 0.3, 1.0])) if perturbation else 0.0
    net = build(kind, dim, hidden, layers, monotone, act, seed).double()
    return perturb(net, scale, seed + 1)


@st.composite
def inputs(draw, dim: int, n: int = 6, scale: float = 2.0):
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(n, dim, generator=gen, dtype=torch.float64)
