"""Random networks of every registered architecture, for property and round-trip tests.

``build(kind, ...)`` makes a gradient network of each kind (float64 in the property tests);
``MODULES`` makes the registered modules that are not gradient networks of one input (image
networks, noise-conditional score models, the heads' modules), each with a probe that
evaluates it. ``tests/test_io.py`` checks that together they cover ``otgrad.io.registered()``.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from otgrad import nn as gn

ELEMENTWISE = ["linear", "tanh", "sigmoid", "softplus", "wtanh", "learned", "spline"]
CASCADE = ["tanh", "sigmoid", "softplus", "wtanh", "learned"]  # smooth: quadrature potential
MODULAR = ["softmax", "wsoftmax", "logcosh"]


def perturb(net: torch.nn.Module, scale: float, seed: int) -> torch.nn.Module:
    """Adds N(0, scale²) noise to every parameter: random parameters, not just the init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def _cascade(d, h, layers, monotone, act):
    return gn.GradNetC(d, h, layers, monotone, CASCADE[act % len(CASCADE)])


#: kind -> (dim, hidden, layers, monotone, act) -> network
BUILDERS = {
    "single": lambda d, h, n, m, a: gn.SingleLayerGradNet(
        d, h, m, ELEMENTWISE[a % len(ELEMENTWISE)]
    ),
    "single-softmax": lambda d, h, n, m, a: gn.SingleLayerGradNet(d, h, m, "softmax"),
    "cascade": _cascade,
    "modular": lambda d, h, n, m, a: gn.GradNetM(d, h, n, m, MODULAR[a % len(MODULAR)]),
    "sum": lambda d, h, n, m, a: gn.Sum(
        [gn.GradNetC(d, h, 2, m), gn.GradNetM(d, h, 2, m)],
        weights=[0.7, 0.4] if m else [0.7, -0.4],
    ),
    "conical": lambda d, h, n, m, a: gn.ConicalSum(
        [gn.GradNetC(d, h, 2), gn.SingleLayerGradNet(d, h)]
    ),
    "strong": lambda d, h, n, m, a: gn.StronglyConvex(_cascade(d, h, n, True, a), 0.3),
    "shift": lambda d, h, n, m, a: gn.LipschitzShift(_cascade(d, h, n, False, a)),
    "difference": lambda d, h, n, m, a: gn.Difference(gn.GradNetC(d, h, n), gn.GradNetM(d, h, 2)),
    "ridge": lambda d, h, n, m, a: gn.TransformedRidgeSum(
        gn.SingleLayerGradNet(d, h, m, ["tanh", "sigmoid", "wtanh"][a % 3]), monotone=m
    ),
    "crr": lambda d, h, n, m, a: gn.CRR(d, h, knots=2 + a % 6),
    "rr": lambda d, h, n, m, a: gn.RR(d, h, knots=2 + a % 6),
    "icgn": lambda d, h, n, m, a: gn.ICGN(d, h, nodes=None if m else 16),
    "icnn": lambda d, h, n, m, a: gn.ICNN(d, h, max(1, n - 1)),
    "mlp": lambda d, h, n, m, a: gn.MLPPotential(d, h, max(1, n - 1)),
}
KINDS = list(BUILDERS)


def build(kind: str, dim: int, hidden: int, layers: int, monotone: bool, act: int, seed: int):
    """A network of ``kind`` with the given sizes, initialized from ``seed``."""
    torch.manual_seed(seed)
    return BUILDERS[kind](dim, hidden, layers, monotone, act)


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


def _like(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x.to(next(m.parameters()).dtype)


def _image_net():
    from otgrad.nn import ConvGradNet

    net = ConvGradNet((1, 3, 4), kernel_size=3, layers=2, activation="softplus")
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return net, lambda m: m(_like(m, x))


def _modular_image_net():
    from otgrad.nn import ConvGradNetM

    net = ConvGradNetM((1, 3, 4), modules=2, kernel_size=3)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return net, lambda m: m(_like(m, x))


def _score_net(name: str):
    def make():
        from otgrad import score

        net = (
            getattr(score, name)(3, hidden=4, modules=2)
            if name.endswith("GradNet")
            else (getattr(score, name)(3, hidden=8, layers=2))
        )
        x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
        return net, lambda m: m(_like(m, x), 0.2)

    return make


def _flow():
    from otgrad.flows import FlowNetwork, block_networks

    flow = FlowNetwork(2, block_networks("modular", 2, blocks=2, hidden=4, layers=2))
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    return flow, lambda m: m.log_prob(_like(m, x))


def _regularizer():
    from otgrad.inverse import RegularizerNetwork
    from otgrad.nn import ConvGradNet

    reg = RegularizerNetwork(ConvGradNet((1, 3), kernel_size=3, knots=5), lmbda=2.0, mu=0.5)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return reg, lambda m: m.grad(_like(m, x))


#: Registered modules that are not built by :func:`build`: name -> () -> (module, probe).
MODULES = {
    "ConvGradNet": _image_net,
    "ConvGradNetM": _modular_image_net,
    "NoiseConditionalGradNet": _score_net("NoiseConditionalGradNet"),
    "NoiseConditionalTwoLayerGradNet": _score_net("NoiseConditionalTwoLayerGradNet"),
    "NoiseConditionalDeepGradNet": _score_net("NoiseConditionalDeepGradNet"),
    "NoiseConditionalMLP": _score_net("NoiseConditionalMLP"),
    "NoiseConditionalGradMLP": _score_net("NoiseConditionalGradMLP"),
    "FlowNetwork": _flow,
    "RegularizerNetwork": _regularizer,
}
