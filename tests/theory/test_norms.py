import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from l4theory.testing import (
    assert_eq3,
    assert_hadamard_drift,
    assert_l4_between_l2,
    assert_std_envelope,
    envelope_std,
    rates_and_weights,
    weight_vectors,
)
from l4theory.theory import (
    bernoulli_var,
    hadamard_angle,
    hadamard_drift,
    l4_norm,
    lp_norm,
    poisson_var,
    variance_decomposition,
)

# magnitudes whose fourth power neither underflows nor overflows a float64 (the strategy's default)
vectors = weight_vectors()


@given(vectors)
def test_eq3_l2_of_hadamard_square_is_squared_l4(w):
    assert_eq3(w)


@given(vectors)
def test_l4_between_scaled_l2_and_l2(w):
    assert_l4_between_l2(w)


@given(vectors, st.floats(-50, 50), st.randoms(use_true_random=False))
def test_homogeneity_and_permutation_invariance(w, c, rnd):
    np.testing.assert_allclose(l4_norm(c * w), abs(c) * l4_norm(w), rtol=1e-12, atol=1e-300)
    perm = list(range(w.size))
    rnd.shuffle(perm)
    np.testing.assert_allclose(l4_norm(w[perm]), l4_norm(w), rtol=1e-12)


def test_lp_norm_handles_extreme_magnitudes_and_axes():
    assert l4_norm([1e200, 1e200]) == pytest.approx(1e200 * 2**0.25)
    assert l4_norm([1e-200]) == pytest.approx(1e-200)
    m = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(lp_norm(m, 2), [5.0, 0.0])
    np.testing.assert_allclose(lp_norm(m, np.inf, axis=0), [3.0, 4.0])
    with pytest.raises(ValueError, match="p must be > 0"):
        lp_norm(m, 0)


@given(rates_and_weights(), st.floats(0.01, 10))
@example(rw=(np.array([6.17591071e-252]), np.array([1.0])), gain=1.0)  # found on a fresh clone
def test_variance_envelope_cauchy_schwarz(rw, gain):
    r, w = rw
    d = variance_decomposition(r, w, gain)
    assert d.variance <= d.envelope * (1 + 1e-12) + 1e-300
    # the oracle's envelope is scaled: np.linalg.norm underflows to 0 for |r| ~ 1e-252
    env = assert_std_envelope(np.sqrt(d.variance), r, w, gain, atol=1e-150)
    np.testing.assert_allclose(env, d.std_envelope, rtol=1e-12)
    if d.envelope > 0:
        np.testing.assert_allclose(d.variance, d.envelope * d.cos_psi, rtol=1e-12)


@given(weight_vectors((1, 10)), st.floats(0.01, 100))
def test_envelope_is_attained_when_r_is_parallel_to_w_squared(w, scale):
    assume(np.any(w != 0))
    d = variance_decomposition(scale * w**2, w)
    np.testing.assert_allclose(d.variance, d.envelope, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(d.variance), envelope_std(scale * w**2, w), rtol=1e-10)
    np.testing.assert_allclose(d.cos_psi, 1.0, rtol=1e-10)


def test_envelope_is_strict_when_r_is_not_parallel():
    w = np.array([1.0, 0.3])
    d = variance_decomposition([1.0, 1.0], w)  # flat input: variance follows the L2 norm
    assert d.variance == pytest.approx(np.sum(w**2))
    assert d.variance < d.envelope
    assert 0 < d.psi < np.pi / 2


def test_decomposition_matches_poisson_and_bernoulli_variances():
    rates, w = np.array([0.5, 1.0, 2.0]), np.array([0.2, -0.7, 1.1])
    d = variance_decomposition(rates, w, gain=1.5 / 2)
    assert d.variance == pytest.approx(float(poisson_var(rates, w, 1.5)))
    p = np.array([0.1, 0.5, 0.9])
    d = variance_decomposition(p * (1 - p), w, gain=1 / (1 - 0.8**2))
    assert d.variance == pytest.approx(float(bernoulli_var(p, w, 0.8)))


@given(st.floats(0, np.pi / 2))
def test_hadamard_drift_points_to_the_nearer_axis(theta):
    assert_hadamard_drift([theta, 0.0, np.pi / 4, np.pi / 2])


def test_hadamard_drift_vanishes_at_0_quarter_and_half_pi_and_points_to_nearer_axis():
    np.testing.assert_allclose(hadamard_drift([0.0, np.pi / 4, np.pi / 2]), 0.0, atol=1e-15)
    theta = np.linspace(0.01, np.pi / 2 - 0.01, 50)
    drift = hadamard_drift(theta)
    assert np.all(drift[theta < np.pi / 4 - 1e-9] < 0)
    assert np.all(drift[theta > np.pi / 4 + 1e-9] > 0)
    np.testing.assert_allclose(hadamard_angle(theta), np.arctan(np.tan(theta) ** 2))
    with pytest.raises(ValueError, match=r"theta must lie in \[0, pi/2\]"):
        hadamard_angle(2.0)


def test_variance_decomposition_errors():
    with pytest.raises(ValueError, match="r must be >= 0"):
        variance_decomposition([-1.0], [1.0])
    with pytest.raises(ValueError, match="inputs on its last axis"):
        variance_decomposition([1.0, 1.0], [1.0])


def test_envelope_does_not_underflow_for_tiny_rates():
    # r**2 underflows to 0 here; the norm must be computed scaled.
    d = variance_decomposition([1.66583825e-286], [1.0])
    assert d.envelope == pytest.approx(1.66583825e-286)
    assert d.cos_psi == pytest.approx(1.0)
