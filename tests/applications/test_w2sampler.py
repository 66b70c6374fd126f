"""The fresh-sample W2 benchmark pair: its source, its true map and its arrays."""

from __future__ import annotations

import importlib.util
import os
import pathlib

import numpy as np
import pytest
import torch

from applications.ot_maps.w2sampler import (
    W2BenchmarkPair,
    available_dims,
    mixture_log_density,
    source_mixture,
)
from otgrad.ot import l2_uvp

# the benchmark folder as the command line finds it ($OTGRAD_W2BENCH), else next to the checkout
ROOT = os.environ.get(
    "OTGRAD_W2BENCH",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "w2bench"),
)
needs_data = pytest.mark.skipif(
    not os.path.isdir(os.path.join(ROOT, "arrays")),
    reason="the W2 benchmark data is not next to this checkout (nor at $OTGRAD_W2BENCH)",
)


def _arrays(d: int) -> dict[str, np.ndarray]:
    with np.load(os.path.join(ROOT, "arrays", f"D{d}.npz")) as z:
        return {k: z[k].astype(np.float64) for k in z.files}


def _cov_gap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_source_mixture_is_standardized():
    centers, factors = source_mixture(5)
    # per axis, the centers are -1, 0, 1 in some order before the common division
    for axis in centers.T:
        np.testing.assert_allclose(np.sort(axis / axis.max()), [-1.0, 0.0, 1.0])
    second = ((centers**2).sum(1) + (factors**2).sum((1, 2))).mean() / 5
    assert second == pytest.approx(1.0)
    assert not np.allclose(factors, source_mixture(5, seed=1)[1])


def test_mixture_log_density_matches_torch_distributions():
    centers, factors = source_mixture(6, seed=2)
    x = np.random.default_rng(0).normal(size=(50, 6))
    loc, cov = torch.as_tensor(centers), torch.as_tensor(factors @ factors.transpose(0, 2, 1))
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(3, dtype=torch.float64)),
        torch.distributions.MultivariateNormal(loc, scale_tril=torch.linalg.cholesky(cov)),
    )
    expected = reference.log_prob(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(mixture_log_density(centers, factors, x), expected, rtol=1e-10)
    # float32 inputs are computed in float64
    out = mixture_log_density(centers.astype(np.float32), factors, x.astype(np.float32))
    assert out.dtype == np.float64 and out.shape == (50,)


def test_bad_root_or_dim(tmp_path):
    assert available_dims(str(tmp_path / "missing")) == []
    with pytest.raises(ValueError, match="no W2 benchmark potentials"):
        W2BenchmarkPair(str(tmp_path), 2)


@needs_data
def test_bad_dim():
    with pytest.raises(ValueError, match=r"dim must be one of \[2, 4, 8"):
        W2BenchmarkPair(ROOT, 3)
    with pytest.raises(ValueError, match="standardize"):
        W2BenchmarkPair(ROOT, 2, standardize="bogus")


@needs_data
@pytest.mark.parametrize("d", [2, 8])
def test_transport_reproduces_T_test(d):
    data = _arrays(d)
    pair = W2BenchmarkPair(ROOT, d)
    mapped = pair.transport(data["X_test"]).double().numpy()
    assert np.abs(mapped - data["T_test"]).max() < 1e-4
    assert l2_uvp(mapped, data["T_test"], pair.var) < 1e-6  # percent
    # the benchmark's own standardization (s, m on 2^14 fresh samples) is close, not equal
    sampled = W2BenchmarkPair(ROOT, d, standardize="sample")
    assert sampled.scale == pytest.approx(pair.scale, rel=0.01)
    assert l2_uvp(sampled.transport(data["X_test"]).numpy(), data["T_test"], pair.var) < 0.05
    assert pair.var == pytest.approx(d, rel=0.02)


@needs_data
def test_fresh_source_matches_X_train():
    d = 8
    X = _arrays(d)["X_train"]
    pair = W2BenchmarkPair(ROOT, d)
    fresh = pair.sample_source(16384, torch.Generator().manual_seed(0)).double().numpy()
    assert np.linalg.norm(fresh.mean(0) - X.mean(0)) < 0.1  # sampling noise: about 0.03
    assert _cov_gap(np.cov(fresh.T), np.cov(X.T)) < 0.05  # about 0.015
    # the exact moments of the seed-0 mixture fit X_train; another seed's do not
    for seed, close in ((0, True), (1, False)):
        centers, factors = source_mixture(d, seed)
        cov = sum(f @ f.T + np.outer(c, c) for c, f in zip(centers, factors, strict=True)) / 3
        assert (_cov_gap(cov, np.cov(X.T)) < 0.03) == close  # seed 0: 0.009, seed 1: 1.25


@needs_data
def test_samples_devices_and_no_grad():
    pair = W2BenchmarkPair(ROOT, 2)
    x = pair.sample_source(64, torch.Generator().manual_seed(3))
    assert x.shape == (64, 2) and x.dtype == torch.float32
    assert torch.equal(x, pair.sample_source(64, torch.Generator().manual_seed(3)))
    y = pair.transport(x)
    assert not y.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(pair.transport(x), y)
    with torch.inference_mode():
        torch.testing.assert_close(pair.transport(x), y)
    assert pair.sample_target(5).shape == (5, 2)
    with pytest.raises(ValueError, match="shape"):
        pair.transport(torch.zeros(3, 4))


@needs_data
def test_residual_of_the_stored_pair():
    pair = W2BenchmarkPair(ROOT, 2, dtype=torch.float64)
    assert pair.residual < 1e-5  # float32 rounding of T_test: 5e-7
    assert W2BenchmarkPair(ROOT, 2, standardize="sample").residual is None
    with pytest.raises(ValueError, match=r"not s \* \(grad"):
        W2BenchmarkPair(ROOT, 2, max_residual=1e-9)


def _prepare_script():
    path = pathlib.Path(__file__).resolve().parents[2] / "datasets" / "prepare_w2bench.py"
    spec = importlib.util.spec_from_file_location("prepare_w2bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_data
def test_prepare_script_checks_and_builds_on_the_sampler():
    script = _prepare_script()
    row = script.check(pathlib.Path(ROOT), 2)
    assert row["ok"] and row["residual"] < 1e-6  # 5.2e-7
    assert row["scale"] == pytest.approx(0.5025, abs=1e-4)
    assert row["shift_norm"] == pytest.approx(0.0231, abs=1e-4)
    built = script.build(pathlib.Path(ROOT), 2, seed=0)
    assert {k: v.shape for k, v in built.items()} == {
        "X_train": (32768, 2),
        "Y_train": (32768, 2),
        "X_test": (4096, 2),
        "T_test": (4096, 2),
    }
    assert all(v.dtype == np.float32 for v in built.values())
    # T_test is the transport of X_test; Y_train is standardized like the stored pair
    pair = W2BenchmarkPair(ROOT, 2, dtype=torch.float64, standardize="sample")
    np.testing.assert_allclose(pair.transport(built["X_test"]).numpy(), built["T_test"], atol=1e-5)
    assert built["Y_train"].astype(np.float64).var(0).sum() == pytest.approx(2.0, rel=0.03)
