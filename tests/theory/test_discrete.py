import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from l4theory.testing import (
    assert_bernoulli_below_poisson,
    assert_bernoulli_envelope,
    encoded_inputs,
    leaks,
    probs_and_weights,
)
from l4theory.theory import (
    bernoulli_cumulant,
    bernoulli_mean,
    bernoulli_var,
    current_cumulant,
    leak_gain,
    poisson_var,
    spike_cumulant,
)


def exact_cumulants(values, probs, n_max=4):
    """Cumulants 1..n_max of a discrete law given by (values, probabilities), via moments."""
    m = [np.sum(probs * values**k) for k in range(n_max + 1)]
    k1 = m[1]
    c = [np.sum(probs * (values - k1) ** k) for k in range(n_max + 1)]
    return [k1, c[2], c[3], c[4] - 3 * c[2] ** 2]


@pytest.mark.parametrize("alpha", [1.0, 0.8, 0.3])
@pytest.mark.parametrize("steps", [1, 2, 3])
def test_cumulants_against_exact_enumeration_of_all_spike_patterns(alpha, steps):
    # Independent reference: enumerate every spike pattern of 2 inputs over `steps` steps.
    probs, weights = np.array([0.3, 0.85]), np.array([0.7, -1.2])
    values, pr = [], []
    for pattern in itertools.product([0, 1], repeat=2 * steps):
        s = np.array(pattern).reshape(steps, 2)
        v = 0.0
        for row in s:
            v = alpha * v + row @ weights
        values.append(v)
        pr.append(np.prod(np.where(s == 1, probs, 1 - probs)))
    ref = exact_cumulants(np.array(values), np.array(pr))
    for n in range(1, 5):
        assert bernoulli_cumulant(n, probs, weights, alpha, steps) == pytest.approx(ref[n - 1], abs=1e-12)


def test_known_bernoulli_cumulants_and_saturation():
    p = np.array([0.0, 0.2, 0.5, 1.0])
    np.testing.assert_allclose(spike_cumulant(2, "bernoulli", p), p * (1 - p))
    np.testing.assert_allclose(spike_cumulant(3, "bernoulli", p), p * (1 - p) * (1 - 2 * p))
    np.testing.assert_allclose(spike_cumulant(4, "bernoulli", p), p * (1 - p) * (1 - 6 * p * (1 - p)))
    # saturated and silent inputs carry no variance
    assert bernoulli_var([1.0, 0.0], [3.0, 5.0], 1.0, 10) == 0.0


def test_encoders():
    x = np.array([-1.5, -0.4, 0.0, 0.3, 2.0])
    q = np.minimum(np.abs(x), 1)
    np.testing.assert_allclose(spike_cumulant(1, "signed", x), np.sign(x) * q)
    np.testing.assert_allclose(spike_cumulant(2, "signed", x), q * (1 - q))
    np.testing.assert_allclose(spike_cumulant(3, "signed", x), np.sign(x) * q * (1 - q) * (1 - 2 * q))
    np.testing.assert_allclose(spike_cumulant(1, "bernoulli", x), np.clip(x, 0, 1))
    np.testing.assert_allclose(spike_cumulant(3, "poisson", [0.1, 2.0]), [0.1, 2.0])
    np.testing.assert_allclose(spike_cumulant(1, "constant", x), x)
    np.testing.assert_allclose(spike_cumulant(2, "constant", x), 0.0)
    with pytest.raises(ValueError, match="encoder must be one of"):
        spike_cumulant(1, "rate", x)
    with pytest.raises(ValueError, match="poisson encoder"):
        spike_cumulant(1, "poisson", x)


def test_current_cumulant_for_rows_of_a_layer():
    w = np.array([[0.5, -1.0, 2.0], [1.0, 1.0, 1.0]])
    x = np.array([0.2, -0.7, 0.9])
    got = current_cumulant(2, "signed", x, w)
    q = np.abs(x)
    np.testing.assert_allclose(got, (w**2 * q * (1 - q)).sum(axis=1))


def test_leak_gain_limits():
    assert leak_gain(2, 1.0, 7) == 7
    assert leak_gain(1, 0.5, np.inf) == pytest.approx(2.0)
    assert leak_gain(2, 0.5, np.inf) == pytest.approx(1 / (1 - 0.25))
    # alpha -> 1 approaches the no-leak count; expm1 keeps it accurate
    assert leak_gain(3, 1 - 1e-12, 50) == pytest.approx(50, rel=1e-9)
    np.testing.assert_array_equal(leak_gain(1, 0.9, [0, 1]), [0.0, 1.0])
    with pytest.raises(ValueError, match="steps = inf needs alpha < 1"):
        leak_gain(1, 1.0, np.inf)
    with pytest.raises(ValueError, match="alpha must be a scalar in"):
        leak_gain(1, 1.5, 3)
    with pytest.raises(ValueError, match="alpha must be a scalar in"):
        leak_gain(1, 0.0, 3)
    with pytest.raises(ValueError, match="whole numbers"):
        leak_gain(1, 0.5, 2.5)


def test_bad_probabilities_are_named():
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        bernoulli_mean([1.2], [1.0], 1.0, 3)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_continuum_limit_recovers_campbell(n):
    lam, w, tau, t = 1.3, 0.8, 2.0, 1.5
    dt = 1e-5
    got = bernoulli_cumulant(n, [lam * dt], [w], np.exp(-dt / tau), round(t / dt))
    from l4theory.theory import poisson_cumulant

    assert got == pytest.approx(poisson_cumulant(n, [lam], [w], tau, t), rel=1e-4)


@given(probs_and_weights(), leaks(0.05), st.integers(1, 40))
def test_bernoulli_variance_never_exceeds_poisson_variance(pw, alpha, steps):
    probs, w = pw
    _, var_p = assert_bernoulli_below_poisson(probs, w, alpha, steps)
    if alpha == 1.0:
        assert var_p == pytest.approx(float(poisson_var(probs, w, np.inf, steps)), abs=1e-9)


@given(probs_and_weights(rows=(1, 4)), leaks(0.05), st.one_of(st.integers(0, 40), st.just(np.inf)))
def test_bernoulli_std_below_its_l4_envelope(pw, alpha, steps):
    probs, w = pw
    if alpha == 1.0 and steps == np.inf:
        steps = 40  # no stationary state without leak
    assert_bernoulli_envelope(probs, w, alpha, steps)


@given(probs_and_weights(), leaks(0.05))
def test_variance_grows_monotonically_with_steps(pw, alpha):
    probs, w = pw
    v = bernoulli_var(probs, w, alpha, np.arange(0, 30))
    assert np.all(np.diff(v) >= -1e-12)


@given(encoded_inputs(), st.integers(1, 4))
def test_every_encoder_has_the_variance_its_spike_law_gives(ex, n):
    encoder, x = ex
    kappa = spike_cumulant(n, encoder, x)
    assert kappa.shape == x.shape and np.all(np.isfinite(kappa))
    if n == 2:  # variances are >= 0, and 0 only for the deterministic encoder
        assert np.all(kappa >= -1e-15)
        if encoder == "constant":
            assert np.all(kappa == 0)
