"""Tests of l4theory.testing: its oracles catch what they claim to, its strategies stay in range."""

import importlib
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import l4theory.testing as T
from l4theory.testing import oracles
from l4theory.theory import ENCODERS, bernoulli_var, poisson_var, spike_cumulant

# --------------------------------------------------------------------------- the tiny-rate trap

TINY_RATES = np.array([3e-194, 1e-194, 0.0])
TINY_W = np.array([1.0, -0.5, 2.0])


def naive_poisson_envelope_check(rates, weights, tau):
    """The envelope check as one writes it by hand with np.linalg.norm (squares first)."""
    std = np.sqrt(poisson_var(rates, weights, tau))
    bound = np.sqrt(tau / 2 * np.linalg.norm(rates)) * np.sum(weights**4) ** 0.25
    assert std <= bound * (1 + 1e-12), (std, bound)


def test_envelope_oracle_holds_on_tiny_rates_where_the_naive_check_fails():
    tau = 2.0
    with pytest.raises(AssertionError):  # ||rates||_2 underflows to 0: a false alarm
        naive_poisson_envelope_check(TINY_RATES, TINY_W, tau)
    env = T.assert_poisson_envelope(TINY_RATES, TINY_W, tau)
    # exact: sqrt(tau/2 ||r||_2) ||w||_4 with ||r||_2 = sqrt(10) 1e-194, ||w||_4**4 = 17.0625
    expected = np.sqrt(tau / 2 * np.sqrt(10.0) * 1e-194) * 17.0625**0.25
    assert env == pytest.approx(expected, rel=1e-14)
    std = np.sqrt(poisson_var(TINY_RATES, TINY_W, tau))
    assert 0 < std < env


def test_exact_std_is_scaled():
    # r w**2 = 1e-394 underflows in the plain formula; the scaled std is 1e-197 exactly
    assert T.exact_std([1e-194], [1e-100]) == pytest.approx(1e-197, rel=1e-14)
    assert np.sqrt(np.sum(1e-194 * np.array([1e-100]) ** 2)) == 0.0
    rng = np.random.default_rng(0)
    r, w = rng.uniform(0, 3, 6), rng.normal(size=(4, 6))
    np.testing.assert_allclose(T.exact_std(r, w, 0.7), np.sqrt(0.7 * (w**2 @ r)), rtol=1e-13)
    np.testing.assert_allclose(T.envelope_std(r, w, 0.7),
                               np.sqrt(0.7 * np.sqrt(np.sum(r**2))) * np.sum(w**4, axis=1) ** 0.25,
                               rtol=1e-13)


# --------------------------------------------------------------------------- oracles fail when they should


def test_std_envelope_oracle_rejects_a_std_above_the_envelope():
    r, w = np.array([1.0, 2.0]), np.array([[0.5, 1.0], [1.0, 0.0]])
    env = T.envelope_std(r, w, 3.0)
    T.assert_std_envelope(env, r, w, 3.0)  # equality is allowed
    with pytest.raises(AssertionError, match=r"entry \(1,\)"):
        T.assert_std_envelope(env * np.array([1.0, 1.0 + 1e-9]), r, w, 3.0)
    with pytest.raises(AssertionError, match="NaN"):
        T.assert_std_envelope(np.nan, r, w[0])
    with pytest.raises(ValueError, match="weights must have 2 inputs"):
        T.envelope_std(r, [1.0, 2.0, 3.0])


def test_envelope_is_attained_when_r_is_parallel_to_w_squared():
    w = np.array([0.3, -1.2, 2.0])
    r = 4.0 * w**2
    env = T.assert_poisson_envelope(r, w, tau=1.0)
    assert np.sqrt(float(poisson_var(r, w, 1.0))) == pytest.approx(float(env), rel=1e-13)


def test_bernoulli_oracle_checks_the_exact_gap(monkeypatch):
    p, w = np.array([0.1, 0.5, 1.0]), np.array([2.0, -1.0, 3.0])
    var_b, var_p = T.assert_bernoulli_below_poisson(p, w, 0.5, 4)
    gain = (1 - 0.5**8) / (1 - 0.5**2)
    assert var_b == pytest.approx(gain * np.sum(p * (1 - p) * w**2), rel=1e-14)
    assert var_p - var_b == pytest.approx(gain * np.sum(p**2 * w**2), rel=1e-12)
    assert T.poisson_minus_bernoulli_var(p, w, 0.5, 4) == pytest.approx(var_p - var_b, rel=1e-12)
    # a Bernoulli variance that used p instead of p(1-p) passes the inequality but not the gap
    monkeypatch.setattr(oracles, "bernoulli_var",
                        lambda probs, weights, alpha, steps: 0.999 * bernoulli_var(probs, weights,
                                                                                   alpha, steps))
    with pytest.raises(AssertionError, match="differs from"):
        T.assert_bernoulli_below_poisson(p, w, 0.5, 4)
    monkeypatch.setattr(oracles, "bernoulli_var",
                        lambda probs, weights, alpha, steps: 20 * bernoulli_var(probs, weights,
                                                                                alpha, steps))
    with pytest.raises(AssertionError, match="Bernoulli variance <= Poisson variance"):
        T.assert_bernoulli_below_poisson(p, w, 0.5, 4)


def test_hadamard_oracle_rejects_a_drift_away_from_the_axes(monkeypatch):
    theta = np.linspace(0, np.pi / 2, 41)
    drift = T.assert_hadamard_drift(theta)
    assert drift[5] < 0 < drift[35]
    monkeypatch.setattr(oracles, "hadamard_drift", lambda th: -np.arctan(np.tan(th) ** 2) + th)
    with pytest.raises(AssertionError, match="nearer axis"):
        T.assert_hadamard_drift(theta)


def test_norm_oracles_reject_broken_norms(monkeypatch):
    w = np.array([[1.0, 2.0, -3.0], [0.0, 0.0, 1e-3]])
    np.testing.assert_allclose(T.assert_eq3(w), np.sqrt(np.sum(w**4, axis=1)), rtol=1e-13)
    np.testing.assert_allclose(T.assert_l4_between_l2(w), np.sum(w**4, axis=1) ** 0.25, rtol=1e-13)
    monkeypatch.setattr(oracles, "l4_norm", lambda x: 1.01 * np.sum(np.asarray(x) ** 4, -1) ** 0.25)
    with pytest.raises(AssertionError, match="Eq. 3"):
        T.assert_eq3(w)
    with pytest.raises(AssertionError, match=r"\|\|w\|\|_4 <= \|\|w\|\|_2"):
        T.assert_l4_between_l2([[1.0, 0.0]])


# --------------------------------------------------------------------------- strategies


@given(T.weight_vectors(), T.rate_vectors(), T.bernoulli_probs(), T.leaks())
def test_strategies_stay_clear_of_underflow_and_overflow(w, r, p, alpha):
    aw = np.abs(w)
    assert w.ndim == 1 and 1 <= w.size <= 12 and np.all((aw == 0) | ((aw >= 1e-30) & (aw <= 1e3)))
    assert np.all(np.isfinite(w**4)) and np.all((w == 0) | (w**4 > 0))
    assert np.all((r == 0) | ((r >= 1e-30) & (r <= 1e3))) and np.all((r == 0) | (r**2 > 0))
    assert np.all((p == 0) | ((p >= 1e-30) & (p <= 1)))
    assert 0.01 <= alpha <= 1.0


@given(T.rates_and_weights(rows=(2, 3)), T.probs_and_weights(size=4))
def test_pairs_share_their_number_of_inputs(rw, pw):
    r, w = rw
    assert w.ndim == 2 and 2 <= w.shape[0] <= 3 and w.shape[1] == r.size
    p, w = pw
    assert p.shape == w.shape == (4,) and np.all(np.abs(w) <= 3)


@given(T.encoded_inputs())
def test_encoded_inputs_are_valid_for_their_encoder(ex):
    encoder, x = ex
    assert encoder in ENCODERS
    spike_cumulant(1, encoder, x)  # raises for an invalid input
    lo, hi = {"bernoulli": (0, 1), "signed": (-1, 1), "poisson": (0, 5), "constant": (-3, 3)}[encoder]
    assert np.all((x >= lo) & (x <= hi))


@given(T.first_layers("dense"), T.first_layers("conv"))
def test_first_layers_are_on_their_grids(dense, conv):
    w, x, geo = dense
    assert w.ndim == 2 and x.shape[1] == w.shape[1] and geo == {} and np.any(w)
    w, x, geo = conv
    assert w.ndim == 4 and x.ndim == 4 and x.shape[1] == w.shape[1] and set(geo) == {"stride", "padding"}
    np.testing.assert_array_equal(np.round(w * 10) / 10, w)
    np.testing.assert_array_equal(np.round(x * 20) / 20, x)
    assert np.all((x >= 0) & (x <= 1)) and np.all(np.abs(w) <= 2)


@given(st.data())
def test_strategy_arguments_are_checked(data):
    with pytest.raises(ValueError, match="min_alpha"):
        T.leaks(0.0)
    with pytest.raises(ValueError, match="size"):
        data.draw(T.weight_vectors((3, 1)))
    with pytest.raises(ValueError, match="min_magnitude <= max_magnitude"):
        T.weight_vectors(min_magnitude=10.0, max_magnitude=1.0)
    with pytest.raises(ValueError, match="encoder"):
        T.encoded_inputs(encoder="morse")
    with pytest.raises(ValueError, match="kind"):
        T.first_layers("pool")


# --------------------------------------------------------------------------- without hypothesis


def test_oracles_work_without_hypothesis_and_strategies_name_the_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "l4theory.testing" or m.startswith("l4theory.testing.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("hypothesis", "hypothesis.strategies", "hypothesis.extra", "hypothesis.extra.numpy"):
        monkeypatch.setitem(sys.modules, name, None)
    fresh = importlib.import_module("l4theory.testing")
    assert fresh is not T
    fresh.assert_poisson_envelope(TINY_RATES, TINY_W, 1.0)
    for strategy in (fresh.weight_vectors, fresh.rate_vectors, fresh.first_layers, fresh.encoders,
                     fresh.load_profile):
        with pytest.raises(ImportError, match=r"pip install 'l4theory\[testing\]'"):
            strategy()


# --------------------------------------------------------------------------- the user guide's tests run


def test_the_user_guide_property_tests_pass(tmp_path):
    import re
    import subprocess
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "testing.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "@given" in b]
    assert len(blocks) == 1 and blocks[0].count("\ndef test_") == 3
    (tmp_path / "test_guide.py").write_text(blocks[0])
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-W", "error", "test_guide.py"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "3 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
