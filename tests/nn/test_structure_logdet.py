"""The low-rank log-determinant (matrix determinant lemma) of StructuredJacobian against the
dense one, in value and gradient, for random networks, parameters and inputs (float64)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from otgrad.calculus import invert
from otgrad.nn import (
    GradNetC,
    GradNetM,
    LipschitzShift,
    SingleLayerGradNet,
    StronglyConvex,
    Sum,
)
from otgrad.nn.structure import RidgeTerm, StructuredJacobian

from .factory import build, inputs, perturb

F64 = torch.float64
# kinds of factory.build that are monotone for monotone=True, and their rank R per (h, layers)
RANK = {
    "single": lambda h, L: h,
    "single-softmax": lambda h, L: h,
    "cascade": lambda h, L: h,
    "modular": lambda h, L: L * h,  # GradNetM(dim, h, modules=layers)
    "sum": lambda h, L: 3 * h,  # GradNetC(h) + GradNetM(h, modules=2)
    "conical": lambda h, L: 2 * h,
    "ridge": lambda h, L: h + 1,  # TransformedRidgeSum: an outer term
}
WRAPPERS = ["strong", "sum-of-strong", "shift"]


@st.composite
def strongly_convex(draw, dims: tuple[int, int], hidden: tuple[int, int]):
    r"""A positive definite network :math:`\mu I + F C F^\top`: a float :math:`\mu`
    (StronglyConvex), a 0-dim tensor one (a Sum of StronglyConvex) or a learned one
    (LipschitzShift), around random monotone networks of every kind."""
    kind = draw(st.sampled_from(sorted(RANK)))
    wrapper = draw(st.sampled_from(WRAPPERS))
    dim = draw(st.integers(*dims))
    h = draw(st.integers(*hidden))
    layers = draw(st.integers(1, 3))
    act = draw(st.integers(0, 10))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.0, 0.3, 1.0]))
    mu = draw(st.sampled_from([0.01, 0.1, 1.0]))
    if wrapper == "shift":
        torch.manual_seed(seed)
        net = LipschitzShift(GradNetC(dim, h, layers, monotone=False))
        rank = h
    else:
        net = StronglyConvex(build(kind, dim, h, layers, True, act, seed), mu)
        rank = RANK[kind](h, layers)
        if wrapper == "sum-of-strong":
            other = StronglyConvex(SingleLayerGradNet(dim, 1), mu)
            net = Sum([net, other], weights=[0.7, 0.4])
            rank += 1
    return perturb(net.double(), scale, seed + 1), rank


def check_against_dense(net, x):
    x = x.requires_grad_()
    params = [p for p in net.parameters() if p.requires_grad]
    value = net.logdet(x)
    sign, ref = torch.linalg.slogdet(net.jacobian(x))
    assert bool((sign > 0).all())
    assert torch.allclose(value, ref, atol=1e-8, rtol=0)
    grads = torch.autograd.grad(value.sum(), [x, *params], allow_unused=True)
    refs = torch.autograd.grad(ref.sum(), [x, *params], allow_unused=True)
    for g, r in zip(grads, refs, strict=True):
        assert (g is None) == (r is None)
        if g is not None:
            assert torch.allclose(g, r, atol=1e-7 * max(1.0, float(r.abs().max())), rtol=0)


@given(st.data())
def test_lowrank_logdet_equals_dense_in_value_and_gradient(data):
    net, rank = data.draw(strongly_convex(dims=(12, 12), hidden=(2, 3)))
    assert rank < net.dim  # the determinant lemma applies
    check_against_dense(net, data.draw(inputs(net.dim)))


@given(st.data())
def test_logdet_falls_back_to_cholesky_in_small_dimension(data):
    # mostly R >= d (Cholesky of the dense Jacobian), sometimes R < d (the lemma)
    net, _ = data.draw(strongly_convex(dims=(1, 4), hidden=(2, 4)))
    check_against_dense(net, data.draw(inputs(net.dim)))


@st.composite
def structures(draw):
    r"""A random positive definite :math:`\mu I + F C F^\top` with elementwise terms,
    softmax-like terms (:math:`s < 0`, :math:`H \succeq 0`), outer terms and a float, 0-dim
    or per-point :math:`\mu`."""
    dim = draw(st.integers(1, 10))
    batch = draw(st.sampled_from([(), (3,), (2, 3)]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))

    def rand(*shape):
        return torch.randn(shape, generator=gen, dtype=F64)

    terms = []
    for _ in range(draw(st.integers(0, 2))):
        M, h = draw(st.integers(1, 2)), draw(st.integers(1, 3))
        D = rand(*batch, M, h).exp()
        if draw(st.booleans()):  # beta (diag p - p p^T) + D, as a softmax module
            p = torch.softmax(rand(*batch, M, h), -1)
            beta = rand(*batch, M, 1).exp()
            terms.append(RidgeTerm(rand(M, h, dim), D + beta * p, p[..., None], -beta))
        else:
            terms.append(RidgeTerm(rand(M, h, dim), D))
    outer = [
        (rand(*batch, dim, r), rand(*batch, r).exp()) for r in range(1, draw(st.integers(1, 3)))
    ]
    if not terms and not outer:
        outer = [(rand(*batch, dim, 1), rand(*batch, 1).exp())]
    mu_kind = draw(st.sampled_from(["float", "0-dim", "per-point"]))
    mu = {"float": 0.1, "0-dim": torch.tensor(0.1, dtype=F64)}.get(mu_kind)
    if mu is None:
        mu = 0.05 + rand(*batch).exp()
    return StructuredJacobian(dim, terms, mu, outer)


@given(structures())
def test_structured_logdet_methods_agree(s):
    sign, ref = torch.linalg.slogdet(s.dense())
    assert bool((sign > 0).all())
    auto, ok = s.logdet()
    assert auto.shape == ref.shape and bool(ok.all())
    for method in ("lowrank", "dense"):
        value, ok = s.logdet(method)
        assert bool(ok.all())
        assert torch.allclose(value, ref, atol=1e-9, rtol=1e-9)
    # "auto" is the lemma exactly when R < d
    chosen = "lowrank" if s.rank_bound() < s.dim else "dense"
    assert torch.equal(auto, s.logdet(chosen)[0])


def test_lowrank_detects_non_positive_definite():
    torch.manual_seed(0)
    W = torch.randn(1, 3, 8, dtype=F64)
    D = torch.tensor([[[1.0, 2.0, -50.0]]], dtype=F64).expand(4, 1, 3)  # one negative eigenvalue
    s = StructuredJacobian(8, [RidgeTerm(W, D)], identity=0.1)
    assert not bool(s.logdet("lowrank")[1].any())
    assert not bool(s.logdet("dense")[1].any())
    # mu <= 0 with R < d: mu is an eigenvalue of J
    mu = torch.tensor([0.1, 0.0, -0.1, 0.2], dtype=F64)
    s = StructuredJacobian(8, [RidgeTerm(W, D.abs())], identity=mu)
    assert s.logdet()[1].tolist() == [True, False, False, True]


def test_singular_jacobian_is_still_reported():
    x = torch.randn(4, 12)
    # a float mu = 0 (Cholesky path), a tensor mu = 0 with R < d (lemma path)
    for net in (SingleLayerGradNet(12, 2), Sum([GradNetC(12, 2), GradNetM(12, 2)])):
        with pytest.raises(ValueError, match="singular"):
            net.logdet(x)


def test_logdet_composes_with_vmap_and_float32():
    net = StronglyConvex(Sum([GradNetC(12, 3), GradNetM(12, 2)]), 0.1)
    x = torch.randn(5, 12)
    value = net.logdet(x)
    assert value.dtype == torch.float32
    assert torch.allclose(torch.func.vmap(net.logdet)(x), value, atol=1e-5)
    ref = torch.linalg.slogdet(net.jacobian(x).double())[1]
    assert torch.allclose(value.double(), ref, atol=1e-4)


def test_logdet_method_is_validated():
    s = StructuredJacobian(3, [RidgeTerm(torch.randn(1, 1, 3), torch.ones(2, 1, 1))])
    with pytest.raises(ValueError, match="method"):
        s.logdet("bogus")
    with pytest.raises(ValueError, match="identity > 0"):
        s.logdet("lowrank")
    with pytest.raises(ValueError, match="empty"):
        StructuredJacobian(3, identity=1.0).logdet()


@given(structures(), st.data())
def test_rows_is_the_structure_of_the_selected_points(s, data):
    n = s.dense().shape[0] if s.dense().dim() == 3 else None
    if n is None:  # no batch dimension: nothing to select
        return
    idx = torch.tensor(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4)))
    v = torch.randn(len(idx), s.dim, dtype=F64)
    sub = s.rows(idx)
    assert torch.allclose(sub.dense(), s.dense()[idx], atol=1e-12, rtol=0)
    assert torch.allclose(sub.matvec(v), (s.dense()[idx] @ v[..., None])[..., 0], atol=1e-10)


@given(st.data())
def test_newton_cg_reusing_the_line_search_structure_follows_the_plain_iteration(data):
    """GradientNetwork.inverse keeps the structure evaluated at each full Newton step for
    the next iteration; its iterates are those of the solve that evaluates it again."""
    net, _ = data.draw(strongly_convex(dims=(2, 8), hidden=(2, 4)))
    x_true = data.draw(inputs(net.dim, n=8))
    y = net(x_true).detach()
    mine, plain = [], []
    x = net.inverse(y, 1e-9, method="newton-cg", history=mine, strict=False)
    ref = invert(
        net.forward, y, jvp=net.jvp, jacobian=net.jacobian, tol=1e-9, method="newton-cg",
        strict=False, history=plain,
    )  # fmt: skip
    assert mine == plain
    assert torch.allclose(x, ref, atol=1e-10, rtol=0)
