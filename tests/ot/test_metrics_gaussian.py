import numpy as np
import ot
import pytest
import torch

from otgrad.ot import (
    GaussianMap,
    bures_map,
    cosine_similarity,
    l2_uvp,
    transport_cost,
    wasserstein2,
)


def test_l2_uvp_definition():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(1000, 3)) * [1.0, 2.0, 3.0]
    # the constant map at the target mean explains nothing: 100 %
    assert l2_uvp(np.tile(ref.mean(0), (1000, 1)), ref) == pytest.approx(100.0)
    assert l2_uvp(ref + 0.1, ref, variance=14.0) == pytest.approx(100 * 0.03 / 14.0)


def test_cosine_similarity():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 2))
    assert cosine_similarity(x, 2 * x, 3 * x) == pytest.approx(1.0)
    assert cosine_similarity(x, 0 * x, 2 * x) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="zero"):
        cosine_similarity(x, x, 2 * x)


def test_wasserstein2_of_a_shift_and_transport_cost():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 2))
    shift = np.array([3.0, -4.0])
    assert wasserstein2(x, x + shift) == pytest.approx(5.0)
    assert transport_cost(x, x + shift) == pytest.approx(25.0)


def test_metrics_reject_bad_input():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="same shape"):
        l2_uvp(x, np.zeros((9, 2)))
    with pytest.raises(ValueError, match="NaN"):
        l2_uvp(x + np.nan, x)
    with pytest.raises(TypeError, match="floating"):
        l2_uvp(np.zeros((10, 2), dtype=int), x)
    with pytest.raises(ValueError, match="2 features"):
        wasserstein2(x, np.zeros((10, 3)))


def test_bures_map_against_the_closed_form():
    rng = np.random.default_rng(3)
    d = 4
    a = rng.normal(size=(d, d))
    cs, ct = a @ a.T + np.eye(d), np.diag(rng.uniform(0.5, 2, d))
    A, b = bures_map(np.zeros(d), cs, np.ones(d), ct)
    np.testing.assert_allclose(A, A.T)
    # the map pushes N(0, cs) onto N(1, ct): A cs A = ct
    np.testing.assert_allclose(A @ cs @ A, ct, atol=1e-8)
    np.testing.assert_allclose(b, np.ones(d))
    with pytest.raises(ValueError, match="cov_target"):
        bures_map(np.zeros(d), cs, np.ones(d), ct[:2])


def test_gaussian_map_estimator_roundtrip_and_types():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(4000, 3))
    Y = X @ np.diag([2.0, 1.0, 0.5]) + 1.0
    g = GaussianMap().fit(X, Y)
    Xt = rng.normal(size=(5, 3))
    np.testing.assert_allclose(g.inverse_transform(g.transform(Xt)), Xt, atol=1e-10)
    t = g.transform(torch.as_tensor(Xt, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    # the potential's gradient is the map (finite differences)
    h = 1e-5
    e = np.eye(3)
    fd = np.stack(
        [(g.potential(Xt + h * e[i]) - g.potential(Xt - h * e[i])) / (2 * h) for i in range(3)], -1
    )
    np.testing.assert_allclose(fd, g.transform(Xt), atol=1e-6)
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianMap().transform(Xt)
    # the same as POT's estimator
    A, b = ot.gaussian.empirical_bures_wasserstein_mapping(X, Y)
    np.testing.assert_allclose(g.transform(Xt), Xt @ A + b)
