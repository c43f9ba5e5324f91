"""Data checks of Figs. 3 and 5 (the arrays they plot, not the pixels).

Statistical tolerances use Student's t for the number of replicate seeds with a two-sided
level of 1e-3 per check; the fixed seeds make each test deterministic, and across the 6
checks that are null hypotheses (equal to 2 at 0° and 90°, both resets; the fig. 3 race/theory
agreement) the chance that a correct implementation fails for a fresh seed is < 1e-2.
"""

import numpy as np
import pytest
from scipy import stats

from figures import fig05

ALPHA = 1e-3


def t_crit(n_rep):
    return stats.t.ppf(1 - ALPHA / 2, n_rep - 1)


def test_fig03_weights_equal_l2_different_l4(quick_data):
    d = quick_data("fig03")
    np.testing.assert_allclose(d["l2"], 1.0, atol=1e-15)
    assert d["l4"][0] == pytest.approx(2 ** -0.25, rel=1e-12)
    assert d["l4"][0] < d["l4"][1]
    assert np.degrees(d["phi_dot"]) == pytest.approx(27.5, abs=1e-12)
    # the dot products cross at the dot-product boundary
    diff = d["dot"][:, 0] - d["dot"][:, 1]
    assert np.all(diff[d["phi"] < d["phi_dot"]] < 0) and np.all(diff[d["phi"] > d["phi_dot"]] > 0)


@pytest.mark.statistical
def test_fig03_spiking_boundary_shifted_toward_lower_l4_neuron(quick_data):
    d = quick_data("fig03")
    shift = d["phi_race"] - d["phi_dot"]
    # A (45 deg) has the lower L4 norm: B keeps the input beyond the dot-product boundary,
    # toward A's side, by more than the boundary's standard error (here: many SE)
    assert shift > t_crit(int(d["n_rep"])) * d["phi_race_se"]
    assert d["phi_race"] < np.radians(45.0)
    # the exact stationary-exceedance boundary is shifted the same way
    assert d["phi_exc"] > d["phi_dot"]
    # the race curve crosses 1/2 at the boundary it reports
    p = np.interp(d["phi_race"], d["phi"], d["p_race"])
    se = np.interp(d["phi_race"], d["phi"], d["se_race"])
    assert abs(p - 0.5) < 5 * se + 0.02


@pytest.mark.statistical
def test_fig03_simulated_exceedance_matches_exact(quick_data):
    d = quick_data("fig03")
    p = d["exc_exact"]
    # SE from the exact probability (the simulated one is 0 where p ~ 1e-7)
    z = (d["exc_sim"] - p) / np.sqrt(p * (1 - p) / d["exc_trials"])
    # 2 x n_phi comparisons at 5 SE: false-failure probability < 40 * 5.7e-7
    assert np.abs(z).max() < 5.0


def test_fig05_predictions_limits():
    p = fig05.predictions(np.array([0.0, np.pi / 2]))
    for k in ("l4", "exact_var", "siegert"):
        np.testing.assert_allclose(p[k], 2.0, atol=1e-8)


@pytest.mark.statistical
@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_fig05_needed_threshold(quick_data, reset):
    d = quick_data("fig05")
    th, v, se = np.degrees(d["theta"]), d[f"v_{reset}"], d[f"v_{reset}_se"]
    tc = t_crit(int(d["n_rep"]))
    # 2 at 0 and at 90 deg within error
    for i in (0, -1):
        assert abs(v[i] - 2.0) < tc * se[i] + 2 * float(d["xtol"])
    # below 2 in between, by more than the error
    inner = (th > 0) & (th < 90)
    assert np.all(v[inner] < 2.0 - tc * se[inner])
    # not symmetric about 45 deg: 30 deg vs 60 deg
    i30, i60 = int(np.argmin(np.abs(th - 30))), int(np.argmin(np.abs(th - 60)))
    assert abs(v[i30] - v[i60]) > tc * np.hypot(se[i30], se[i60])
    # the sweeping neuron is the one that has lost variance at 60 deg: lower needed threshold
    assert v[i60] < v[i30]


def test_fig05_roots_are_roots():
    """For one realisation, the count difference changes sign across the returned root."""
    from validation.simulators import lif_event

    cfg = dict(fig05.CONFIGS["quick"], n_trials=20)
    theta = np.radians(30.0)
    v, _, _ = fig05.needed_threshold(cfg, theta, "hard", 99)
    lam, ws, wv = fig05.setup(theta)
    args = (1.0, cfg["t_run"], cfg["n_trials"], 99)
    n_s = lif_event(lam, ws, 1.0, [2.0], *args[1:], t_warmup=cfg["t_warmup"])[0].sum()
    lo, hi = v - 2 * cfg["xtol"], v + 2 * cfg["xtol"]
    c = lif_event(lam, wv, 1.0, [lo, hi], *args[1:], t_warmup=cfg["t_warmup"])[0].sum(axis=0)
    assert c[0] - n_s - 0.5 > 0 > c[1] - n_s - 0.5
