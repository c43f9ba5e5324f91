import numpy as np
import pytest

from l4theory.theory import poisson_cumulant, poisson_mean, poisson_var, time_factor


def test_paper_fig1_example_equal_mean_variances_two_to_one():
    assert poisson_mean([1.0], [2.0], 1.0) == pytest.approx(2.0)
    assert poisson_mean([2.0], [1.0], 1.0) == pytest.approx(2.0)
    assert poisson_var([1.0], [2.0], 1.0) == pytest.approx(2.0)
    assert poisson_var([2.0], [1.0], 1.0) == pytest.approx(1.0)


def test_jump_w_convention_scales_with_tau_not_tau_squared():
    # dV/dt = -V/tau + w*delta: stationary mean tau*lam*w, variance tau*lam*w^2/2.
    assert poisson_mean([3.0], [0.5], 4.0) == pytest.approx(4.0 * 3.0 * 0.5)
    assert poisson_var([3.0], [0.5], 4.0) == pytest.approx(4.0 * 3.0 * 0.25 / 2)


def test_cumulants_sum_over_inputs_and_broadcast_over_rows_and_time():
    rates = np.array([0.5, 1.5, 2.0])
    weights = np.array([[0.3, -0.2, 0.9], [1.0, 0.0, -1.0]])
    t = np.array([0.1, 1.0, np.inf])
    got = poisson_cumulant(3, rates, weights[:, None, :], 2.0, t)
    assert got.shape == (2, 3)
    for r in range(2):
        for j, tj in enumerate(t):
            pairs = zip(rates, weights[r], strict=True)
            ref = sum(2.0 / 3 * lam * w**3 * (1 - np.exp(-3 * tj / 2.0)) for lam, w in pairs)
            assert got[r, j] == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_limits_small_t_large_t_and_no_leak(n):
    rates, weights, tau = np.array([0.7, 1.3]), np.array([0.4, -1.1]), 1.7
    strength = np.sum(rates * weights**n)
    # t -> 0: kappa_n ~ t * strength (expm1 keeps full relative accuracy)
    assert poisson_cumulant(n, rates, weights, tau, 1e-12) == pytest.approx(1e-12 * strength, rel=1e-9)
    # t -> inf: stationary tau/n * strength
    assert poisson_cumulant(n, rates, weights, tau, 1e3) == pytest.approx(tau / n * strength, rel=1e-14)
    assert poisson_cumulant(n, rates, weights, tau) == pytest.approx(tau / n * strength, rel=1e-14)
    # tau -> inf at fixed t: compound Poisson t * strength
    assert poisson_cumulant(n, rates, weights, np.inf, 2.5) == pytest.approx(2.5 * strength)
    assert poisson_cumulant(n, rates, weights, 1e9, 2.5) == pytest.approx(2.5 * strength, rel=1e-8)


def test_time_factor_is_monotone_in_t():
    t = np.linspace(0, 3, 31)
    for n in (1, 2, 5):
        assert np.all(np.diff(time_factor(n, 1.3, t)) > 0)
        assert np.all(np.diff(time_factor(n, 1.3, np.linspace(3, 100, 50))) >= 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n=2, rates=[-1.0], weights=[1.0], tau=1.0), "rates must be >= 0"),
        (dict(n=2, rates=[1.0], weights=[1.0], tau=0.0), "tau must be > 0"),
        (dict(n=2, rates=[1.0], weights=[1.0], tau=-2.0), "tau must be > 0"),
        (dict(n=0, rates=[1.0], weights=[1.0], tau=1.0), "n must be >= 1"),
        (dict(n=1.5, rates=[1.0], weights=[1.0], tau=1.0), "n must be an integer"),
        (dict(n=2, rates=[1.0, 2.0], weights=[1.0], tau=1.0), "number of inputs"),
        (dict(n=2, rates=[np.nan], weights=[1.0], tau=1.0), "rates must not contain NaN"),
        (dict(n=2, rates=[1.0], weights=[np.inf], tau=1.0), "weights must be finite"),
        (dict(n=2, rates=[1.0], weights=[1.0], tau=1.0, t=-1.0), "t must be >= 0"),
        (dict(n=2, rates=[1.0], weights=[1.0], tau=np.inf, t=np.inf), "t = inf needs a finite tau"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        poisson_cumulant(**kwargs)
