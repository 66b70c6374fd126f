import numpy as np
import pytest

from otgrad.data import TOY2D, sample_toy2d


@pytest.mark.parametrize("name", sorted(TOY2D))
def test_samplers_are_seeded_and_finite(name):
    a, b = sample_toy2d(name, 500, seed=3), sample_toy2d(name, 500, seed=3)
    assert a.shape == (500, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()
    assert not np.array_equal(a, sample_toy2d(name, 500, seed=4))


def test_eight_gaussians_has_eight_modes():
    x = sample_toy2d("8gaussians", 4000)
    angles = np.round(np.arctan2(x[:, 1], x[:, 0]) / (np.pi / 4)) % 8
    assert len(np.unique(angles)) == 8
    np.testing.assert_allclose(np.linalg.norm(x, axis=1).mean(), 2.0, atol=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        sample_toy2d("spiral", 10)
    with pytest.raises(ValueError, match="n must"):
        sample_toy2d("moons", 0)
