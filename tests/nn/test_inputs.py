"""Hostile inputs get a clear error that names the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otgrad.nn import (
    Difference,
    GradNetC,
    GradNetM,
    LipschitzShift,
    MLPPotential,
    SingleLayerGradNet,
    StronglyConvex,
    Sum,
    TransformedRidgeSum,
    set_validation,
    validation,
)

METHODS = ["forward", "potential", "jacobian", "jacobian_trace", "logdet", "inverse"]


def call(net, method, x):
    if method == "forward":
        return net(x)
    if method == "inverse":
        return net.inverse(x)
    return getattr(net, method)(x)


@pytest.fixture
def net():
    return StronglyConvex(GradNetC(3, 8), 0.1)


@pytest.mark.parametrize("method", METHODS)
def test_wrong_dimension(net, method):
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        call(net, method, torch.randn(4, 2))


@pytest.mark.parametrize("method", METHODS)
def test_scalar_input(net, method):
    with pytest.raises(ValueError, match="shape"):
        call(net, method, torch.tensor(1.0))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_inf(net, method, bad):
    x = torch.randn(4, 3)
    x[2, 1] = bad
    name = "y" if method == "inverse" else "x"
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinite"):
        call(net, method, x)


@pytest.mark.parametrize("method", METHODS)
def test_empty(net, method):
    with pytest.raises(ValueError, match="empty"):
        call(net, method, torch.zeros(0, 3))


@pytest.mark.parametrize("method", METHODS)
def test_wrong_dtype_is_not_cast(net, method):
    with pytest.raises(TypeError, match="dtype torch.float64"):
        call(net, method, torch.randn(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating"):
        call(net, method, torch.ones(4, 3, dtype=torch.int64))


@pytest.mark.parametrize("method", METHODS)
def test_not_a_tensor(net, method):
    with pytest.raises(TypeError, match="torch.Tensor"):
        call(net, method, np.zeros((4, 3), dtype=np.float32))


def test_wrong_device(net):
    meta = torch.empty(4, 3, device="meta")
    with pytest.raises(ValueError, match="device"):
        net(meta)


def test_jvp_shapes(net):
    with pytest.raises(ValueError, match="v must have the shape of x"):
        net.jvp(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="v contains NaN"):
        net.jvp(torch.randn(4, 3), torch.full((4, 3), float("nan")))


def test_inverse_warm_start_shape(net):
    with pytest.raises(ValueError, match="x0 must have the shape of y"):
        net.inverse(torch.randn(4, 3), x0=torch.randn(3, 3))


def test_non_monotone_where_convexity_is_required():
    g = GradNetC(3, 8, monotone=False)
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="monotone"):
        g.logdet(x)
    with pytest.raises(ValueError, match="monotone"):
        g.inverse(x)
    with pytest.raises(ValueError, match="net must be monotone"):
        StronglyConvex(g, 0.1)
    with pytest.raises(ValueError, match="plus must be monotone"):
        Difference(g, GradNetC(3, 8))
    with pytest.raises(ValueError, match="g must be monotone"):
        TransformedRidgeSum(SingleLayerGradNet(3, 4, monotone=False), monotone=True)
    with pytest.raises(ValueError, match="logdet needs a monotone"):
        Difference(GradNetC(3, 4), GradNetC(3, 4)).logdet(x)


def test_singular_jacobian_is_reported():
    net = SingleLayerGradNet(3, 1)  # rank-one Jacobian: singular everywhere
    with pytest.raises(ValueError, match="singular"):
        net.logdet(torch.randn(4, 3))


def test_inverse_that_cannot_converge_raises_with_residual():
    from otgrad.calculus import InverseError

    net = GradNetC(2, 4, activation="tanh")  # bounded field: large targets are unreachable
    with pytest.raises(InverseError, match="residual"):
        net.inverse(torch.full((3, 2), 1e3), max_iter=20)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GradNetC(0, 4), "dim"),
        (lambda: GradNetC(2, 0), "hidden"),
        (lambda: GradNetC(2, 4, layers=0), "layers"),
        (lambda: GradNetC(2.5, 4), "dim"),
        (lambda: GradNetC(2, 4, activation="relu"), "activation"),
        (lambda: GradNetM(2, 4, activation="tanh"), "activation"),
        (lambda: GradNetM(2, 4, modules=0), "modules"),
        (lambda: GradNetM(2, 4, beta=0.0), "beta"),
        (lambda: GradNetM(2, 4, beta=float("inf")), "beta"),
        (lambda: SingleLayerGradNet(2, 4, activation="wsoftmax"), "activation"),
        (lambda: StronglyConvex(GradNetC(2, 4), 0.0), "mu"),
        (lambda: StronglyConvex(GradNetC(2, 4), float("nan")), "mu"),
        (lambda: StronglyConvex(torch.nn.Linear(2, 2), 0.1), "net must be a GradientNetwork"),
        (lambda: Sum([]), "at least one"),
        (lambda: Sum([GradNetC(2, 4), GradNetC(3, 4)]), "dim"),
        (lambda: Sum([GradNetC(2, 4)], weights=[1.0, 2.0]), "weights"),
        (lambda: LipschitzShift(GradNetM(2, 4, activation="logcosh")), "Lipschitz"),
        (lambda: LipschitzShift(MLPPotential(2, 4)), "Lipschitz"),
    ],
)
def test_bad_constructor_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_value_checks_can_be_switched_off_for_speed():
    net = GradNetC(2, 4)
    x = torch.full((2, 2), float("nan"))
    with validation(False):
        assert bool(net(x).isnan().all())
    with pytest.raises(ValueError):
        net(x)
    set_validation(False)
    try:
        net(x)
    finally:
        set_validation(True)
