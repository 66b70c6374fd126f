import numpy as np
import pytest

from otgrad.data import FFJORD_SETS, TOY2D, sample_toy2d, toy2d_log_prob


@pytest.mark.parametrize("name", sorted(TOY2D))
def test_samplers_are_seeded_and_finite(name):
    a, b = sample_toy2d(name, 501, seed=3), sample_toy2d(name, 501, seed=3)
    assert a.shape == (501, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()
    assert not np.array_equal(a, sample_toy2d(name, 501, seed=4))


def test_the_eight_ffjord_sets():
    assert set(FFJORD_SETS) <= set(TOY2D) and len(FFJORD_SETS) == 8


def test_eight_gaussians_has_eight_modes_at_ffjord_scale():
    x = sample_toy2d("8gaussians", 4000)
    angles = np.round(np.arctan2(x[:, 1], x[:, 0]) / (np.pi / 4)) % 8
    assert len(np.unique(angles)) == 8
    np.testing.assert_allclose(np.linalg.norm(x, axis=1).mean(), 4 / 1.414, atol=0.05)


def test_checkerboard_lives_on_eight_squares():
    x = sample_toy2d("checkerboard", 4000)
    assert np.abs(x).max() <= 4
    cells = np.floor(x / 2).astype(int)  # 4 x 4 cells of side 2, alternate ones occupied
    assert np.all((cells[:, 0] + cells[:, 1]) % 2 == 0)


def test_rings_have_four_radii():
    r = np.linalg.norm(sample_toy2d("rings", 4000), axis=1)
    hist = np.histogram(r, bins=[0, 1.1, 1.9, 2.6, 3.5])[0]
    assert (hist > 800).all()


def test_log_prob_is_a_density_and_matches_the_entropy():
    g = np.linspace(-6, 6, 601)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    for name in ("gaussian", "8gaussians"):
        mass = np.exp(toy2d_log_prob(name, grid)).sum() * (g[1] - g[0]) ** 2
        np.testing.assert_allclose(mass, 1.0, atol=1e-3)
    x = sample_toy2d("8gaussians", 100_000)
    entropy = np.log(8) + 1 + np.log(2 * np.pi * (0.5 / 1.414) ** 2)
    np.testing.assert_allclose(-toy2d_log_prob("8gaussians", x).mean(), entropy, atol=0.01)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name"):
        sample_toy2d("spiral", 10)
    with pytest.raises(ValueError, match="n must"):
        sample_toy2d("moons", 0)
    with pytest.raises(ValueError, match="closed-form"):
        toy2d_log_prob("moons", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        toy2d_log_prob("gaussian", np.zeros(2))


def _first_component(name: str, x: np.ndarray) -> np.ndarray:
    if name == "circles":  # radii 3 and 1.5, noise 0.24
        return np.linalg.norm(x, axis=1) > 2.25
    # moons: arcs of radius 2 about (-1, -0.2) (upper) and (1, 0.8) (lower), noise 0.2
    upper = np.abs(np.linalg.norm(x - [-1.0, -0.2], axis=1) - 2)
    lower = np.abs(np.linalg.norm(x - [1.0, 0.8], axis=1) - 2)
    return upper < lower


@pytest.mark.parametrize("name", ["moons", "circles"])
def test_two_component_sets_are_iid_not_evenly_split(name):
    # an i.i.d. sample of the equal-weight mixture has a binomial(n, 1/2) count per component
    n = 400
    counts = [_first_component(name, sample_toy2d(name, n, seed)).sum() for seed in range(200)]
    assert abs(np.mean(counts) - n / 2) < 5
    assert 0.7 * np.sqrt(n / 4) < np.std(counts) < 1.4 * np.sqrt(n / 4)
