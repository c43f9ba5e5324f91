"""ShotNoise: exact anchors, consistency, and a seeded Monte Carlo check of rvs.

Monte Carlo tolerance: each statistical assertion is a z-test at |z| <= 4.5 (two-sided
false-failure probability 6.8e-6); this module makes 12 such assertions, so its chance of
a false failure is below 1e-4.
"""

import numpy as np
import pytest
from scipy import special

from l4theory.theory import ShotNoise, poisson_cumulant
from l4theory.theory.anchors import dickman_cdf, first_interval_cdf


@pytest.mark.parametrize("theta", [0.5, 1.0, 2.5])
def test_cdf_and_sf_match_dickman_first_interval(theta):
    w = 1.7
    ys = np.array([0.02, 0.2, 0.5, 0.8, 1.0])
    sn = ShotNoise([theta], [w], 1.0)
    np.testing.assert_allclose(sn.cdf(w * ys), dickman_cdf(ys, theta), atol=1e-6, rtol=0)
    np.testing.assert_allclose(sn.sf(w * ys), 1 - dickman_cdf(ys, theta), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("lam", "w", "tau", "t"), [(1.5, 2.0, 1.0, 1.0), (0.5, 1.0, 2.0, 1.0), (3.0, 0.5, 1.0, 0.5)])
def test_cdf_matches_first_interval_at_finite_time(lam, w, tau, t):
    a = np.exp(-t / tau)
    xs = w * a * np.linspace(1.02, min(2.0, 1 / a) - 0.02, 5)
    np.testing.assert_allclose(ShotNoise([lam], [w], tau, t).cdf(xs),
                               first_interval_cdf(xs, lam, w, tau, t), atol=1e-6, rtol=0)


def test_negative_weight_mirrors_positive_weight():
    ys = np.array([0.1, 0.6, 0.95])
    neg = ShotNoise([1.3], [-2.0], 1.0)
    np.testing.assert_allclose(neg.sf(-2.0 * ys), dickman_cdf(ys, 1.3), atol=1e-6, rtol=0)


def test_atom_and_cdf_below_zero():
    sn = ShotNoise([1.0, 2.0], [0.5, 1.0], 1.0, 0.4)
    assert sn.atom == pytest.approx(np.exp(-0.4 * 3.0))
    assert sn.cdf(-0.5) == pytest.approx(0.0, abs=1e-7)
    assert sn.cdf(0.0) == pytest.approx(sn.atom, abs=1e-7)
    assert ShotNoise([1.0], [1.0], 1.0).atom == 0.0


def test_cdf_plus_sf_is_one_and_cdf_is_monotone_for_signed_weights():
    sn = ShotNoise([1.0, 0.7, 2.0], [0.8, -1.1, 0.3], 1.5)
    x = np.linspace(-4, 6, 41)
    np.testing.assert_allclose(sn.cdf(x) + sn.sf(x), 1.0, atol=1e-12)
    assert np.all(np.diff(sn.cdf(x)) >= -1e-7)


def test_pdf_integrates_to_continuous_mass_and_matches_dickman_density():
    sn = ShotNoise([2.0], [1.0], 1.0)
    # Dickman density on (0, 1]: exp(-gamma theta) y^(theta-1) / Gamma(theta)
    y = np.array([0.3, 0.7])
    ref = np.exp(-np.euler_gamma * 2.0) * y / 1.0
    np.testing.assert_allclose(sn.pdf(y), ref, atol=1e-5)


@pytest.mark.parametrize("theta", [0.5, 1.5])
def test_pdf_matches_dickman_density_where_the_cf_decays_slowly(theta):
    # theta < 1: singular density, cf ~ k^-theta, so the oscillatory tail integral matters
    y = np.array([0.2, 0.5, 0.9])
    ref = np.exp(-np.euler_gamma * theta) * y ** (theta - 1) / special.gamma(theta)
    np.testing.assert_allclose(ShotNoise([theta], [1.0], 1.0).pdf(y), ref, atol=2e-6, rtol=0)


def test_moments_come_from_campbell():
    sn = ShotNoise([1.0, 3.0], [0.5, -0.25], 2.0, 0.7)
    for n in (1, 2, 3, 4):
        assert sn.cumulant(n) == pytest.approx(float(poisson_cumulant(n, [1.0, 3.0], [0.5, -0.25], 2.0, 0.7)))
    assert sn.std() ** 2 == pytest.approx(sn.var())
    assert sn.skew() == pytest.approx(sn.cumulant(3) / sn.var() ** 1.5)


def test_no_leak_law_refuses_tabulation_but_samples():
    sn = ShotNoise([1.0], [1.0], np.inf, 2.0)
    with pytest.raises(ValueError, match="compound-Poisson"):
        sn.cdf(1.0)
    x = sn.rvs(1000, rng=1)
    assert np.all(x == np.round(x))


def test_bad_inputs():
    with pytest.raises(ValueError, match="rates has shape"):
        ShotNoise([1.0, 2.0], [1.0], 1.0)
    with pytest.raises(ValueError, match="t must be a scalar"):
        ShotNoise([1.0], [1.0], 1.0, [1.0, 2.0])
    with pytest.raises(ValueError, match="rng must be"):
        ShotNoise([1.0], [1.0], 1.0).rvs(3, rng="seed")


def test_rvs_is_reproducible_from_a_seed():
    sn = ShotNoise([1.0, 2.0], [1.0, -0.5], 1.0, 2.0)
    np.testing.assert_array_equal(sn.rvs(100, rng=5), sn.rvs(100, rng=5))


def _z_moments(x, sn):
    """z-scores of the sample mean and variance against the exact values."""
    n = x.size
    mean, var = sn.mean(), sn.var()
    k4 = sn.cumulant(4)
    z_mean = (x.mean() - mean) / np.sqrt(var / n)
    # Var of the unbiased sample variance: kappa_4/n + 2 kappa_2^2/(n-1)
    z_var = (x.var(ddof=1) - var) / np.sqrt(k4 / n + 2 * var**2 / (n - 1))
    return z_mean, z_var


@pytest.mark.statistical
@pytest.mark.parametrize(
    ("rates", "weights", "tau", "t"),
    [([1.0], [2.0], 1.0, np.inf), ([2.0], [1.0], 1.0, 0.5), ([0.5, 3.0, 1.0], [1.0, -0.4, 0.2], 2.0, 3.0)],
)
def test_rvs_matches_exact_mean_and_variance(rates, weights, tau, t):
    sn = ShotNoise(rates, weights, tau, t)
    x = sn.rvs(200_000, rng=20261128)
    z_mean, z_var = _z_moments(x, sn)
    assert abs(z_mean) <= 4.5
    assert abs(z_var) <= 4.5


@pytest.mark.statistical
def test_rvs_matches_exact_cdf():
    sn = ShotNoise([1.0], [2.0], 1.0, 1.5)
    x = sn.rvs(200_000, rng=7)
    grid = np.array([0.0, 0.5, 1.2, 2.5, 4.0, 6.0])
    emp = (x[:, None] <= grid).mean(axis=0)
    exact = sn.cdf(grid)
    se = np.sqrt(exact * (1 - exact) / x.size)
    # 6 points but one assertion on the max: |z| <= 4.5 for each
    assert np.all(np.abs(emp - exact) <= 4.5 * se + 1e-12)
