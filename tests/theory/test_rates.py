import functools
import math

import numpy as np
import pytest
from scipy import integrate, special

from l4theory.theory import rates as thr


def _siegert_reference(mu, sigma_b, tau, v_th, v_r=0.0):
    # Independent form: 1/nu = tau sqrt(pi) int exp(u^2) erfc(-u) du (moderate range)
    lo, hi = (v_r - mu) / sigma_b, (v_th - mu) / sigma_b
    val = integrate.quad(lambda u: math.exp(u * u) * special.erfc(-u), lo, hi,
                         epsrel=1e-11, limit=400)[0]
    return 1.0 / (tau * math.sqrt(math.pi) * val)


@pytest.mark.parametrize(("lam", "w", "tau", "v_th"),
                         [(50.0, 0.02, 1.0, 1.0), (20.0, 0.05, 2.0, 1.5), (100.0, 0.01, 0.5, 0.3)])
def test_siegert_matches_independent_integral(lam, w, tau, v_th):
    got = thr.siegert_rate([lam], [w], tau, v_th)
    mu, sb = tau * lam * w, math.sqrt(tau * lam * w * w)
    assert got == pytest.approx(_siegert_reference(mu, sb, tau, v_th), rel=1e-8)


def test_siegert_uses_diffusion_constant_twice_the_variance():
    lam, w, tau = 40.0, 0.05, 1.0
    got = float(thr.siegert_rate([lam], [w], tau, 2.6))
    mu = tau * lam * w
    right = _siegert_reference(mu, math.sqrt(tau * lam * w * w), tau, 2.6)
    wrong = _siegert_reference(mu, math.sqrt(tau * lam * w * w / 2), tau, 2.6)
    assert got == pytest.approx(right, rel=1e-8)
    assert abs(got / wrong - 1) > 0.5


def test_siegert_limits_and_shapes():
    # vanishing noise, suprathreshold: deterministic LIF rate
    lam, w = 1e6, 1.5e-6
    det = 1.0 / math.log(1.5 / 0.5)
    assert float(thr.siegert_rate([lam], [w], 1.0, 1.0)) == pytest.approx(det, rel=1e-2)
    assert float(thr.siegert_rate([1.0], [0.0], 1.0, 1.0)) == 0.0
    assert float(thr.siegert_rate([1.0], [0.01], 1.0, 5.0)) == 0.0  # underflow guard
    out = thr.siegert_rate([10.0, 5.0], np.array([[0.1, 0.05], [0.05, 0.1]]), 1.0, [[0.8], [1.2]])
    assert out.shape == (2, 2)
    assert np.all(np.diff(out, axis=0) < 0)  # higher threshold, lower rate
    r0 = float(thr.siegert_rate([10.0], [0.1], 1.0, 1.0))
    r1 = float(thr.siegert_rate([10.0], [0.1], 1.0, 1.0, t_ref=0.2))
    assert 1 / r1 == pytest.approx(1 / r0 + 0.2)


def test_soft_rate():
    assert float(thr.if_soft_rate([1.0, 2.0], [0.5, 0.25], 2.0)) == pytest.approx(0.5)
    assert float(thr.if_soft_rate([1.0], [-0.5], 2.0)) == 0.0


@functools.cache
def _brute(level, values, probs):
    # exact recursion on the remaining level (finite for a small level / min jump)
    if level <= 1e-12:
        return 0.0
    return 1.0 + sum(p * _brute(round(level - v, 12), values, probs)
                     for v, p in zip(values, probs, strict=True))


@pytest.mark.parametrize(("values", "probs", "level"), [
    ((0.3, 0.7), (0.4, 0.6), 2.0),
    ((0.5, 1.0 / math.pi), (0.5, 0.5), 1.7),
    ((0.9, 0.45, 0.2), (0.2, 0.3, 0.5), 1.3),
])
def test_expected_steps_exact_or_bracketed(values, probs, level):
    truth = _brute(level, values, probs)
    m, lo, hi = thr.expected_steps_to_threshold(values, probs, level)
    assert lo <= truth + 1e-9 and truth <= hi + 1e-9
    assert m == pytest.approx(truth, rel=1e-3)


def test_expected_steps_closed_forms():
    assert thr.expected_steps_to_threshold([1.0], [1.0], 2.5)[0] == pytest.approx(3.0)
    # Bernoulli(p) increments of 1: negative binomial mean n / p
    assert thr.expected_steps_to_threshold([0.0, 1.0], [0.75, 0.25], 4.0)[0] == pytest.approx(16)
    assert thr.if_hard_rate_bernoulli([0.5], [1.0], 3.0) == pytest.approx(1 / 6)
    assert np.isinf(thr.expected_steps_to_threshold([0.0], [1.0], 1.0)[0])


def test_hard_rate_approaches_asymptotic_and_soft():
    r, w = np.array([1.0, 2.0]), np.array([0.3, 1.0 / math.pi])
    exact = thr.if_hard_rate(r, w, 30.0)
    asy = float(thr.if_hard_rate_asymptotic(r, w, 30.0))
    soft = float(thr.if_soft_rate(r, w, 30.0))
    assert exact == pytest.approx(asy, rel=2e-3)
    assert exact < soft
    rate, lo, hi = thr.if_hard_rate(r, w, 2.0, return_bounds=True)
    assert lo <= rate <= hi and hi - lo < 1e-3 * rate


@pytest.mark.parametrize(("call", "name"), [
    (lambda: thr.siegert_rate([-1.0], [1.0], 1.0, 1.0), "rates"),
    (lambda: thr.siegert_rate([1.0], [1.0, 2.0], 1.0, 1.0), "weights"),
    (lambda: thr.siegert_rate([1.0], [1.0], 0.0, 1.0), "tau"),
    (lambda: thr.siegert_rate([1.0], [1.0], 1.0, -1.0), "v_th"),
    (lambda: thr.if_soft_rate([1.0], [1.0], 0.0), "v_th"),
    (lambda: thr.if_hard_rate([1.0], [-1.0], 1.0), "weights"),
    (lambda: thr.if_hard_rate_bernoulli([1.5], [1.0], 1.0), "probs"),
    (lambda: thr.expected_steps_to_threshold([1.0, 2.0], [0.5, 0.6], 1.0), "probs"),
    (lambda: thr.expected_steps_to_threshold([1.0], [1.0], 0.0), "level"),
])
def test_rates_reject_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()
