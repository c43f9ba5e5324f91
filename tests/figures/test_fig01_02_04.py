"""Data checks of Figs. 1, 2 and 4 (the arrays they plot, not the pixels)."""

import numpy as np
import pytest

from figures import fig01, fig04

# Statistical tests use fixed seeds; each compares a Monte Carlo estimate with its exact
# value at 5 SE. Under a normal approximation a single |z| > 5 has probability 5.7e-7, so
# even the ~100 comparisons below have a false-failure chance < 1e-4.
Z = 5.0


def test_fig01_exact_means_equal_variances_2_to_1(quick_data):
    d = quick_data("fig01")
    assert d["mean_A"] == pytest.approx(2.0, rel=1e-12)
    assert d["mean_B"] == pytest.approx(2.0, rel=1e-12)
    assert d["var_A"] / d["var_B"] == pytest.approx(2.0, rel=1e-12)
    assert d["var_B"] == pytest.approx(1.0, rel=1e-12)


@pytest.mark.statistical
def test_fig01_simulated_moments_and_histogram(quick_data):
    d = quick_data("fig01")
    for k, var in (("A", 2.0), ("B", 1.0)):
        assert abs(d[f"sim_mean_{k}"] - 2.0) < Z * d[f"sim_mean_se_{k}"]
        assert abs(d[f"sim_var_{k}"] - var) < Z * d[f"sim_var_se_{k}"]
        _, _, z = fig01.bin_errors(d, k)
        assert np.abs(z).max() < Z
    # the exact bin probabilities are a distribution (cdf consistency)
    for k in "AB":
        total = d[f"p_bin_{k}"].sum() + d[f"p_over_{k}"]
        assert total == pytest.approx(1.0, abs=1e-6)


def test_fig01_approximations_have_the_exact_moments(quick_data):
    d = quick_data("fig01")
    for k in "AB":
        g, ln = fig01.approximations(d, k)
        x = d["x"]
        dx = np.diff(x)
        for dens in (g, ln):
            m = np.sum(0.5 * (dens[1:] * x[1:] + dens[:-1] * x[:-1]) * dx)
            assert m == pytest.approx(2.0, abs=0.1)


def test_fig02_theory_band_is_eqs_1_2(quick_data):
    d = quick_data("fig02")
    t = d["t_band"]
    np.testing.assert_allclose(d["mean_A"], 2.0 * (1 - np.exp(-t)), atol=1e-12)
    np.testing.assert_allclose(d["sd_B"] ** 2, 2.0 / 2 * (1 - np.exp(-2 * t)), atol=1e-12)
    np.testing.assert_allclose(d["mean_A"], d["mean_B"], atol=1e-12)


@pytest.mark.statistical
def test_fig02_exceedance_higher_variance_neuron_above(quick_data):
    d = quick_data("fig02")
    # exact, stationary and at the last time
    assert d["sf_stat_A"] > d["sf_stat_B"] + 0.03
    assert d["sf_A"][-1] > d["sf_B"][-1]
    # simulated at the last (near-stationary) time, by more than 5 SE of the difference
    gap = d["p_sim_A"][-1] - d["p_sim_B"][-1]
    assert gap > Z * np.hypot(d["p_se_A"][-1], d["p_se_B"][-1])
    # simulation agrees with the exact curve at every time
    for k in "AB":
        assert np.all(np.abs(d[f"p_sim_{k}"] - d[f"sf_{k}"]) < Z * d[f"p_se_{k}"])
    # and the exact curve approaches its stationary value
    for k in "AB":
        assert abs(d[f"sf_{k}"][-1] - d[f"sf_stat_{k}"]) < 0.01


def test_fig04_drift_vanishes_exactly_at_0_45_90(quick_data):
    d = quick_data("fig04")
    th, drift = d["theta_line"], d["drift_line"]
    eps = np.finfo(float).eps
    for target in (0.0, np.pi / 4, np.pi / 2):
        i = np.argmin(np.abs(th - target))
        assert abs(th[i] - target) < 4 * eps
        assert abs(drift[i]) <= 4 * eps
    inner = (th > 1e-9) & (np.abs(th - np.pi / 4) > 1e-9) & (th < np.pi / 2 - 1e-9)
    assert np.all(np.abs(drift[inner]) > 1e-6)
    # toward the nearer axis: negative below 45 deg, positive above
    assert np.all(drift[inner & (th < np.pi / 4)] < 0)
    assert np.all(drift[inner & (th > np.pi / 4)] > 0)
    # the arrows end at the element-wise squares
    np.testing.assert_allclose(d["w_sq"], d["w"] ** 2, atol=0)


@pytest.mark.statistical
def test_fig04_simulated_angle_matches(quick_data):
    d = quick_data("fig04")
    from l4theory.theory import hadamard_angle

    exact = hadamard_angle(d["theta_mc"])
    se = d["angle_mc_se"]
    interior = se > 0
    assert np.all(np.abs(d["angle_mc"] - exact)[interior] < Z * se[interior])
    # at 0 and 90 deg one variance is exactly zero, so the measured angle is exact
    assert np.abs(d["angle_mc"] - exact)[~interior].max(initial=0.0) < 1e-12


def test_fig04_caption_states_parameters(quick_data):
    d = quick_data("fig04")
    cap = fig04.caption(d)
    assert "tau = 1" in cap and "rate 5" in cap
