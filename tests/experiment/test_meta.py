"""The pooled statistics of a multi-network study (l4theory.experiment.meta).

Three tiers: against statsmodels (an independent implementation of the same estimators,
skipped where it is not installed), exact identities and limits, and seeded Monte Carlo
checks of the interval's coverage and of the power.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from l4theory.experiment import (
    equivalence,
    equivalence_paired,
    meta,
    paired_power,
    pooled_paired,
    power_t,
    random_effects,
    verdict,
)
from l4theory.experiment.meta import VERDICTS
from l4theory.experiment.stats import mean_ci

RTOL = 1e-10


def close(a, b, rtol=RTOL, atol=1e-15):
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=rtol, atol=atol)


def _random_study(rng):
    """k effects and variances on the scale of the study (fractions), some heterogeneous."""
    k = int(rng.integers(2, 11))
    v = rng.uniform(0.2, 5.0, k) * 10.0 ** rng.uniform(-7, -3)
    tau = math.sqrt(v.mean()) * rng.choice([0.0, 0.5, 2.0, 10.0])
    y = rng.normal(rng.normal(0, 0.01), 1.0, k) * np.sqrt(v + tau**2)
    return y, v


def _per_image_diffs(rng, k=5, n=12000):
    """k networks' per-image differences in {-1, 0, 1}, a few percent discordant."""
    out = []
    for i in range(k):
        p_up, p_down = 0.03 + 0.004 * i, 0.028
        out.append(rng.choice([1.0, -1.0, 0.0], size=n - 37 * i, p=[p_up, p_down, 1 - p_up - p_down]))
    return out


# ----------------------------------------------------------------- against statsmodels


def _check_against_combine_effects(res, y, v, level):
    meta = pytest.importorskip("statsmodels.stats.meta_analysis")
    with np.errstate(invalid="ignore", divide="ignore"):   # statsmodels' untruncated tau2 < 0
        sm = meta.combine_effects(y, v, method_re="dl", use_t=True)
        ci_fe, ci_re, ci_fe_hk, ci_re_hk = sm.conf_int(alpha=1 - level, use_t=True)
    assert close(res["q"], sm.q) and close(res["mean_fe"], sm.mean_effect_fe)
    assert close(res["se_fe"], sm.sd_eff_w_fe)
    assert res["df"] == sm.df_resid == len(y) - 1
    assert close(res["i2"], max(0.0, sm.i2), atol=1e-12)
    if sm.tau2 > 0:
        assert close(res["tau2"], sm.tau2)
        assert close(res["mean"], sm.mean_effect_re) and close(res["se"], sm.sd_eff_w_re_hksj)
        assert close([res["lo"], res["hi"]], ci_re_hk) and close(res["weights"], sm.weights_rel_re)
    else:
        # statsmodels leaves DL's tau2 negative; truncated at 0 the random-effects weights are
        # the fixed-effect ones, so the interval is statsmodels' HKSJ interval of the FE mean
        assert res["tau2"] == 0.0
        assert close(res["mean"], sm.mean_effect_fe) and close(res["se"], sm.sd_eff_w_fe_hksj)
        assert close([res["lo"], res["hi"]], ci_fe_hk) and close(res["weights"], sm.weights_rel_fe)


def test_random_effects_equals_statsmodels_dl_hksj():
    pytest.importorskip("statsmodels")
    rng = np.random.default_rng(20261207)
    truncated = 0
    for _ in range(300):
        y, v = _random_study(rng)
        level = float(rng.choice([0.8, 0.9, 0.95, 0.99]))
        res = random_effects(y, v, level=level)
        _check_against_combine_effects(res, y, v, level)
        truncated += res["tau2"] == 0
    assert 20 < truncated < 280      # both branches of the truncation were exercised


def test_pooled_paired_on_per_image_differences_equals_statsmodels():
    pytest.importorskip("statsmodels")
    diffs = _per_image_diffs(np.random.default_rng(7))
    res = pooled_paired(diffs)
    y = np.array([d.mean() for d in diffs])
    v = np.array([d.var(ddof=1) / d.size for d in diffs])
    assert res["effects"] == y.tolist() and res["variances"] == v.tolist()
    assert res["n"] == [d.size for d in diffs]
    _check_against_combine_effects(res, y, v, 0.95)
    for level in (0.9, 0.95):
        assert {k: val for k, val in pooled_paired(diffs, level).items()
                if k not in ("effects", "variances", "n")} == random_effects(y, v, level)


def test_equivalence_paired_equals_statsmodels_ttost_paired():
    weightstats = pytest.importorskip("statsmodels.stats.weightstats")
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(2, 3000))
        d = rng.choice([-1.0, 0.0, 1.0], size=n, p=[0.05, 0.9, 0.05]) + rng.normal(0, 0.01) * (n < 10)
        if d.std() == 0:
            continue
        margin = float(rng.uniform(0.001, 0.05))
        alpha = float(rng.choice([0.025, 0.05, 0.1]))
        res = equivalence_paired(d, margin, alpha=alpha)
        p, (t1, p1, df1), (t2, p2, df2) = weightstats.ttost_paired(d, np.zeros(n), -margin, margin)
        assert close(res["p"], p) and close(res["p_lower"], p1) and close(res["p_upper"], p2)
        assert close(res["t_lower"], t1) and close(res["t_upper"], t2) and res["df"] == df1 == n - 1
        assert res["equivalent"] == (p < alpha)
        # the 1 - 2 alpha interval is the two-sided t interval at that level
        ci = mean_ci(d, level=1 - 2 * alpha)
        assert close([res["lo"], res["hi"]], [ci["lo"], ci["hi"]])


def test_paired_power_equals_statsmodels_ttestpower():
    power = pytest.importorskip("statsmodels.stats.power")
    tp = power.TTestPower()
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.choice([2, 3, 5, 30, 500, 10000]))
        sd = float(rng.uniform(0.05, 0.5))
        effect = float(rng.normal(0, 3 * sd / math.sqrt(n)))
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        want = tp.power(effect_size=effect / sd, nobs=n, alpha=alpha, alternative="two-sided")
        assert close(paired_power(effect, sd, n, alpha), want)


# ----------------------------------------------------------------- identities and limits


def test_equal_effects_give_tau2_zero_and_a_point_interval():
    v = [1e-5, 4e-5, 2e-6, 3e-5]
    res = random_effects([0.004] * 4, v)
    assert res["tau2"] == 0.0 and res["q"] == 0.0 and res["i2"] == 0.0
    assert res["mean"] == pytest.approx(0.004, rel=1e-15) and res["se"] == pytest.approx(0, abs=1e-18)
    u = 1 / np.array(v)
    assert close(res["weights"], u / u.sum()) and close(res["se_fe"], 1 / math.sqrt(u.sum()))


@pytest.mark.parametrize("spread", [0.0, 1e-4, 0.01])     # tau2 = 0 and tau2 > 0
def test_equal_variances_give_the_one_sample_t_interval(spread):
    rng = np.random.default_rng(5)
    y = 0.002 + spread * rng.standard_normal(5)
    y[0] += 1e-4                                           # effects not all equal
    for level in (0.9, 0.95):
        res = random_effects(y, [3e-6] * 5, level=level)
        ci = mean_ci(y, level=level)
        assert close(res["mean"], ci["mean"]) and close([res["lo"], res["hi"]], [ci["lo"], ci["hi"]])
        assert close(res["se"], ci["sd"] / math.sqrt(5)) and close(res["weights"], [0.2] * 5)
    assert (res["tau2"] > 0) == (spread > 1e-4)


def test_dl_tau2_by_hand_and_i2():
    y, v = np.array([0.01, -0.02, 0.03]), np.array([1e-4, 2e-4, 4e-4])
    u = 1 / v
    mfe = (u * y).sum() / u.sum()
    q = (u * (y - mfe) ** 2).sum()
    tau2 = (q - 2) / (u.sum() - (u**2).sum() / u.sum())
    res = random_effects(y, v)
    assert tau2 > 0 and close(res["tau2"], tau2) and close(res["q"], q) and close(res["i2"], (q - 2) / q)
    w = 1 / (v + tau2)
    mu = (w * y).sum() / w.sum()
    se = math.sqrt((w * (y - mu) ** 2).sum() / (2 * w.sum()))
    assert close(res["mean"], mu) and close(res["se"], se)
    assert close(res["hi"] - res["mean"], stats.t.ppf(0.975, 2) * se)


def test_all_zero_variances_are_the_limit_of_equal_variances():
    y = np.array([0.0, 0.001, -0.002, 0.0005, 0.003])
    limit = random_effects(y, np.zeros(5))
    near = random_effects(y, np.full(5, 1e-14))
    for key in ("mean", "se", "lo", "hi", "tau2", "mean_fe"):
        assert close(limit[key], near[key], rtol=1e-6, atol=1e-12), key
    assert limit["q"] == math.inf and limit["i2"] == 1.0 and limit["se_fe"] == 0.0
    ci = mean_ci(y)
    assert close([limit["lo"], limit["hi"]], [ci["lo"], ci["hi"]])
    # a method that changes no prediction on any network: a zero-width interval at 0
    same = pooled_paired([np.zeros(100)] * 5)
    assert same["mean"] == same["lo"] == same["hi"] == same["tau2"] == same["q"] == 0.0
    assert verdict(same["lo"], same["hi"], same["lo"], same["hi"], 0.003)["verdict"] == "equivalent"


def test_tost_on_the_margin_is_one_half():
    for mean, side in ((0.003, "p_upper"), (-0.003, "p_lower")):
        for se, df in ((0.001, 4), (0.02, 1), (1e-4, math.inf), (0.0, 7)):
            res = equivalence(mean, se, df, 0.003)
            assert res[side] == pytest.approx(0.5, abs=1e-15) and res["p"] == res[side]
            assert not res["equivalent"]


def test_tost_identities():
    res = equivalence(0.0005, 0.001, 4, 0.003, alpha=0.05)
    t = stats.t.isf(0.05, 4)
    assert close([res["lo"], res["hi"]], [0.0005 - t * 0.001, 0.0005 + t * 0.001])
    assert close(res["p_lower"], stats.t.sf(3.5, 4)) and close(res["p_upper"], stats.t.cdf(-2.5, 4))
    # equivalent <=> the 1 - 2 alpha interval inside the open margin, on random inputs
    rng = np.random.default_rng(2)
    for _ in range(200):
        m, se, df = rng.normal(0, 0.004), rng.uniform(1e-4, 3e-3), float(rng.choice([1, 4, 30, 1e6]))
        r = equivalence(m, se, df, 0.003)
        assert r["equivalent"] == (-0.003 < r["lo"] and r["hi"] < 0.003)
        assert r["equivalent"] == verdict(r["lo"] - 1e-9, r["hi"] + 1e-9, r["lo"], r["hi"], 0.003)["within_margin"]
    # zero se: the limits
    assert equivalence(0.001, 0.0, 4, 0.003)["p"] == 0.0 and equivalence(0.004, 0, 4, 0.003)["p"] == 1.0


def test_power_identities():
    for df in (1, 4, 30, 11999, math.inf):
        for alpha in (0.01, 0.05, 0.2):
            assert power_t(0.0, 0.001, df, alpha) == pytest.approx(alpha, abs=1e-14)
            assert power_t(0.002, 0.001, df, alpha) == pytest.approx(power_t(-0.002, 0.001, df, alpha), abs=1e-14)
    # df -> inf is the z test; large df approaches it; power grows with the effect
    z = stats.norm.isf(0.025)
    assert close(power_t(0.003, 0.001, math.inf), stats.norm.sf(z - 3) + stats.norm.cdf(-z - 3))
    assert power_t(0.003, 0.001, 1e6) == pytest.approx(power_t(0.003, 0.001, math.inf), abs=1e-5)
    grid = [power_t(e, 0.001, 4) for e in np.linspace(0, 0.01, 21)]
    assert np.all(np.diff(grid) > 0) and grid[-1] > 0.9
    assert power_t(0.001, 0.0, 4) == 1.0 and power_t(0.0, 0.0, 4, 0.05) == 0.05
    assert paired_power(0.01, 0.1, 400, 0.05) == power_t(0.01, 0.1 / 20, 399, 0.05)


def _power_by_quadrature(effect, se, df, alpha):
    """Slow reference: E over V ~ chi2(df) of P(|Z + nc| > c sqrt(V / df)), by quadrature."""
    from scipy import integrate

    nc, c = effect / se, stats.t.isf(alpha / 2, df)

    def rejected(s):
        r = c * math.sqrt(s / df)
        return stats.chi2.pdf(s, df) * (stats.norm.sf(r - nc) + stats.norm.cdf(-r - nc))

    spread = 12 * math.sqrt(2 * df)
    cuts = [0.0, max(0.0, df - spread), float(df), df + spread, math.inf]
    return sum(integrate.quad(rejected, a, b, epsabs=1e-14, epsrel=1e-11, limit=400)[0]
               for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a)


def test_power_t_against_quadrature():
    # nc >= 6.6 puts scipy's wrong-side tail in NaN for some df; the fallback covers it
    for df, nc, alpha in ((1, 0.3, 0.05), (2, 20.0, 0.05), (4, -1.5, 0.01), (4, 9.5, 0.05),
                          (4, -9.5, 0.05), (30, 3.0, 0.05), (11999, 2.0, 0.01), (11999, 40.0, 0.05)):
        got = power_t(nc * 0.001, 0.001, df, alpha)
        assert math.isfinite(got) and got == pytest.approx(
            _power_by_quadrature(nc * 0.001, 0.001, df, alpha), abs=1e-9), (df, nc, alpha)
    # the fallback itself, where scipy's noncentral t is finite
    for df, nc in ((1, 2.0), (4, 5.0), (11999, 3.0)):
        c = stats.t.isf(0.025, df)
        assert meta._wrong_side_quad(c, df, nc) == pytest.approx(stats.nct.cdf(-c, df, nc), rel=1e-6)


@pytest.mark.statistical
def test_paired_power_by_simulation():
    """Rejection rate of scipy's one-sample t test on normal samples, 20,000 draws per case."""
    rng = np.random.default_rng(99)
    reps = 20000
    for n, effect, sd in ((5, 0.4, 0.5), (12, 0.1, 0.2), (40, 0.0, 1.0)):
        x = rng.normal(effect, sd, size=(reps, n))
        rate = (stats.ttest_1samp(x, 0.0, axis=1).pvalue < 0.05).mean()
        want = paired_power(effect, sd, n, 0.05)
        assert abs(rate - want) < 4 * math.sqrt(want * (1 - want) / reps)


@pytest.mark.statistical
def test_hartung_knapp_covers_at_its_level_with_five_networks():
    """2,000 seeded studies of k = 5 networks with heterogeneity (tau2 near the mean v).

    The variances differ by up to a factor of 2, as for five folds of equal size; the
    interval's known under-coverage when they differ much more is documented, not tested.
    """
    rng = np.random.default_rng(2026)
    draws, mu, tau2 = 2000, 0.002, 5e-7
    v = np.array([4e-7, 5e-7, 6e-7, 7e-7, 8e-7])
    hits = hits_fe = 0
    for _ in range(draws):
        y = mu + rng.standard_normal(5) * np.sqrt(v + tau2)
        res = random_effects(y, v)
        hits += res["lo"] <= mu <= res["hi"]
        hits_fe += abs(res["mean_fe"] - mu) <= stats.norm.isf(0.025) * res["se_fe"]
    se = math.sqrt(0.95 * 0.05 / draws)
    assert abs(hits / draws - 0.95) < 3 * se
    assert hits_fe / draws < 0.95 - 3 * se     # the fixed-effect interval under-covers


# ----------------------------------------------------------------- the reading rule


@pytest.mark.parametrize(("bounds", "want", "within"), [
    ((0.001, 0.004, 0.0015, 0.0035), "better", False),
    ((0.0002, 0.0025, 0.0005, 0.002), "better", True),        # better, but within the margin
    ((-0.004, -0.001, -0.0035, -0.0015), "worse", False),
    ((-0.0025, -0.0001, -0.002, -0.0004), "worse", True),
    ((-0.002, 0.0025, -0.0015, 0.002), "equivalent", True),
    ((-0.002, 0.004, -0.0015, 0.0035), "inconclusive", False),
    ((0.0, 0.002, 0.0005, 0.0015), "equivalent", True),        # lo95 = 0 is not above 0
    ((-0.004, 0.0035, -0.003, 0.0025), "inconclusive", False),  # lo90 on the margin: not inside
])
def test_verdict_rule(bounds, want, within):
    res = verdict(*bounds, margin=0.003)
    assert res == {"verdict": want, "within_margin": within} and res["verdict"] in VERDICTS


def test_verdict_of_a_pooled_result():
    diffs = _per_image_diffs(np.random.default_rng(7))
    r95, r90 = pooled_paired(diffs, 0.95), pooled_paired(diffs, 0.90)
    res = verdict(r95["lo"], r95["hi"], r90["lo"], r90["hi"], margin=0.003)
    tost = equivalence(r95["mean"], r95["se"], r95["df"], 0.003)
    assert close([tost["lo"], tost["hi"]], [r90["lo"], r90["hi"]])
    assert res["within_margin"] == tost["equivalent"]


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(("call", "name"), [
    (lambda: random_effects([0.1], [0.01]), "effects"),
    (lambda: random_effects([[0.1, 0.2]], [[0.01, 0.02]]), "effects"),
    (lambda: random_effects([0.1, np.nan], [0.01, 0.02]), "effects"),
    (lambda: random_effects([0.1, 0.2], [0.01, -0.02]), "variances"),
    (lambda: random_effects([0.1, 0.2], [0.01, np.inf]), "variances"),
    (lambda: random_effects([0.1, 0.2], [0.01, 0.0]), "variances"),
    (lambda: random_effects([0.1, 0.2, 0.3], [0.01, 0.02]), "effects and variances"),
    (lambda: random_effects([0.1, 0.2], [0.01, 0.02], level=1.0), "level"),
    (lambda: random_effects([0.1, 0.2], [0.01, 0.02], level="high"), "level"),
    (lambda: pooled_paired([np.ones(3)]), "diffs"),
    (lambda: pooled_paired(np.ones(5)), "diffs"),
    (lambda: pooled_paired(5), "diffs"),
    (lambda: pooled_paired([np.array([0.0, 1.0]), np.array([1.0])]), r"diffs\[1\]"),
    (lambda: pooled_paired([np.array([0.0, 1.0]), np.ones((2, 2))]), r"diffs\[1\]"),
    (lambda: pooled_paired([np.array([0.0, 1.0]), np.zeros(4)]), "variances"),
    (lambda: equivalence(0.0, -0.001, 4, 0.003), "se"),
    (lambda: equivalence(0.0, 0.001, 0, 0.003), "df"),
    (lambda: equivalence(0.0, 0.001, 4, 0.0), "margin"),
    (lambda: equivalence(0.0, 0.001, 4, 0.003, alpha=0.5), "alpha"),
    (lambda: equivalence(np.inf, 0.001, 4, 0.003), "mean"),
    (lambda: equivalence([0.0, 1.0], 0.001, 4, 0.003), "mean"),
    (lambda: equivalence_paired([1.0], 0.003), "diff"),
    (lambda: equivalence_paired([0.0, 1.0], -0.003), "margin"),
    (lambda: power_t(0.001, 0.001, -1), "df"),
    (lambda: power_t(0.001, -0.001, 4), "se"),
    (lambda: power_t(np.nan, 0.001, 4), "effect"),
    (lambda: power_t(0.001, 0.001, 4, alpha=0.0), "alpha"),
    (lambda: paired_power(0.001, 0.1, 1), "n"),
    (lambda: paired_power(0.001, 0.1, 10.5), "n"),
    (lambda: paired_power(0.001, -0.1, 10), "sd"),
    (lambda: verdict(0.002, 0.001, 0.0015, 0.0015, 0.003), "lo95"),
    (lambda: verdict(0.0, 0.004, 0.003, 0.001, 0.003), "lo90"),
    (lambda: verdict(0.001, 0.004, 0.0, 0.003, 0.003), "90% interval"),
    (lambda: verdict(0.0, 0.004, 0.001, 0.003, -0.003), "margin"),
    (lambda: verdict(True, 0.004, 0.001, 0.003, 0.003), "lo95"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_the_library_does_not_import_statsmodels():
    code = ("import sys, l4theory, l4theory.experiment, l4theory.experiment.meta; "
            "from l4theory.experiment import pooled_paired, power_t; "
            "pooled_paired([[0., 1., 0.], [1., 0., 0.]]); power_t(0.1, 0.1, 4); "
            "assert 'statsmodels' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pooled_paired_takes_a_2d_array_row_per_network():
    rows = np.random.default_rng(4).choice([-1.0, 0.0, 1.0], size=(5, 300), p=[0.1, 0.75, 0.15])
    assert pooled_paired(rows) == pooled_paired(list(rows)) == pooled_paired([r.tolist() for r in rows])
