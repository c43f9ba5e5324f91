"""Rate matching and overshoot-aware scaling: known optima, held-out improvement, errors."""

import json

import numpy as np
import pytest

from l4theory.calibrate import (
    OvershootAdjuster,
    OvershootResult,
    RateMatcher,
    RateMatchResult,
    adjusted_first_layer,
    overshoot_factors,
    overshoot_scales,
    rate_matching_factors,
    rate_matching_scales,
    scale_first_layer,
)
from l4theory.convert.fidelity import first_layer_rates, first_layer_target
from l4theory.convert.network import Conv2d, Flatten, Linear, Network, ReLU
from l4theory.theory.rates import if_hard_rate_bernoulli


def dense_net(w, bias=None):
    w = np.asarray(w, np.float32)
    return Network((w.shape[1],), [Linear(w, bias, name="l1"), ReLU(),
                                   Linear(np.ones((2, w.shape[0]), np.float32), name="out")])


def conv_net(seed=0, c_out=6):
    rng = np.random.default_rng(seed)
    return Network((1, 8, 8), [
        Conv2d(rng.normal(0, 0.5, (c_out, 1, 3, 3)).astype(np.float32), padding=1, name="c1"),
        ReLU(), Flatten(), Linear(np.ones((3, c_out * 64), np.float32), name="out")])


def test_scale_first_layer_scales_rows_and_bias():
    net = dense_net([[1.0, 2.0], [3.0, 4.0]], bias=[0.5, -1.0])
    out = scale_first_layer(net, [2.0, 0.25])
    np.testing.assert_array_equal(out.layers[0].weight, [[2, 4], [0.75, 1]])
    np.testing.assert_array_equal(out.layers[0].bias, [1.0, -0.25])
    np.testing.assert_array_equal(net.layers[0].weight, [[1, 2], [3, 4]])  # not in place
    with pytest.raises(ValueError, match="row_factors must be 2 positive"):
        scale_first_layer(net, [1.0, 0.0])


# constant input 1: reference currents 0.5, 0.25, 0.75 per step, v_th 1, T 16 -> targets
# are multiples of 1/16 and a soft-reset IF neuron without leak reproduces them exactly.
REF = dense_net([[0.5], [0.25], [0.75]])
C = np.array([0.5, 2.0, 1.0])              # the test layer is the reference / C
TEST = scale_first_layer(REF, 1 / C)
ONE = np.ones((1, 1))


def test_rate_matching_recovers_known_factors_on_the_grid():
    res = rate_matching_factors(TEST, ONE, v_th=1.0, steps=16, grid=[0.25, 0.5, 1, 2, 4],
                                refine=0, reference=REF, encoder="constant")
    np.testing.assert_array_equal(res.row_factors, C)
    np.testing.assert_array_equal(res.error, 0.0)
    assert (res.error_before[:2] > 0).all() and res.error_before[2] == 0
    assert res.n_runs == 5 and not res.at_edge.any()


def test_rate_matching_refined_stays_in_the_zero_error_interval():
    # floor(16 k I / c) = 16 I exactly for k in [c, c (1 + 1/(16 I)))
    res = rate_matching_factors(TEST, ONE, v_th=1.0, steps=16, reference=REF,
                                encoder="constant")
    np.testing.assert_array_equal(res.error, 0.0)
    hi = C * (1 + 1 / (16 * np.array([0.5, 0.25, 0.75])))
    assert (res.row_factors >= C * (1 - 1e-6)).all() and (res.row_factors < hi).all()  # fp32 weights
    assert res.row_factors[2] == 1.0  # ties go to the factor nearest 1


@pytest.mark.statistical
@pytest.mark.parametrize(("alpha", "reset", "factor"),
                         [(1.0, "hard", 0.8), (0.9, "hard", 0.8), (0.9, "soft", 0.9)])
def test_rate_matching_reduces_held_out_error(alpha, reset, factor):
    # hard reset loses the overshoot and the leak loses charge: rates fall short of the
    # target, a factor above 1 should help on images and spikes it was not fitted on
    net = conv_net()
    rng = np.random.default_rng(0)
    x_cal, x_new = rng.uniform(-1, 1, (2, 16, 1, 8, 8))
    v_th = 1.0
    kw = dict(steps=30, alpha=alpha, reset=reset)
    m = RateMatcher(seed=1, **kw).fit(net, x_cal, v_th)
    assert m.fit(net, x_cal, v_th) is m
    assert (m.error_ <= m.error_before_).all()
    target = first_layer_target(net, x_new, v_th)
    before = first_layer_rates(net, x_new, v_th=v_th, seed=99, **kw)
    after = first_layer_rates(m.adjust(net), x_new, v_th=v_th, seed=99, **kw)
    mse_b, mse_a = np.mean((before - target) ** 2), np.mean((after - target) ** 2)
    assert mse_a < factor * mse_b, (mse_a, mse_b)
    assert np.median(m.row_factors_) > 1


def test_overshoot_restores_the_exact_hard_reset_rate():
    # non-negative, non-lattice weights, Bernoulli inputs, no leak: the exact renewal rate
    # of the hard-reset neuron is below the soft-reset rate m1 / v_th by the overshoot;
    # the compensated weights bring it back to within a small fraction of the loss
    p = np.array([0.3, 0.5, 0.6])
    w = np.array([0.1, 0.1 * np.sqrt(2), 0.1 * np.sqrt(3)])
    v_th = 1.5
    m1 = p @ w
    res = overshoot_factors(w[None], p[None], v_th)
    k = res.row_factors[0]
    assert res.overshoot[0] == pytest.approx((p * (1 - p)) @ w**2 / (2 * m1) + m1 / 2)
    before = if_hard_rate_bernoulli(p, w, v_th)
    after = if_hard_rate_bernoulli(p, k * w, v_th)
    soft = m1 / v_th
    assert soft - before > 0.05 * soft
    assert abs(after - soft) < 0.15 * (soft - before), (before, after, soft)


def test_overshoot_adjuster_conv_and_soft_reset():
    net = conv_net(c_out=3)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 8, 8))
    w = net.layers[0].weight
    hard = OvershootAdjuster("hard").fit(net, x, 1.0)
    assert (hard.row_factors_ >= 1).all() and (hard.row_factors_ <= 2).all()
    assert (hard.row_factors_ > 1).any()
    assert hard.summary_ == hard.result_.summary() and hard.summary_["method"] == "overshoot"
    np.testing.assert_array_equal(OvershootAdjuster("soft").fit(net, x, 1.0).row_factors_, 1.0)
    out = hard.adjust(net)
    assert isinstance(out, Network)
    np.testing.assert_allclose(out.layers[0].weight, w * hard.row_factors_[:, None, None, None],
                               rtol=1e-6)
    ref = overshoot_factors(w, x, 1.0, padding=1)
    assert isinstance(ref, OvershootResult) and ref.network is None
    np.testing.assert_array_equal(ref.row_factors, hard.row_factors_)
    np.testing.assert_array_equal(ref.weights, out.layers[0].weight)
    with pytest.raises(ValueError, match="not fitted"):
        OvershootAdjuster().adjust(net)
    with pytest.raises(ValueError, match="reset"):
        OvershootAdjuster("none").fit(net, x, 1.0)
    with pytest.raises(ValueError, match=r"\|inputs\| <= 1"):
        overshoot_factors(w, 2 * np.ones((1, 1, 8, 8)), 1.0, padding=1)


def test_deprecated_calibration_forms_warn_and_match():
    net = conv_net(c_out=3)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 8, 8))
    w = net.layers[0].weight
    b = np.ones(3, np.float32)
    new = overshoot_factors(w, x, 1.0, padding=1, bias=b)
    with pytest.warns(DeprecationWarning, match="overshoot_factors"):
        old = overshoot_scales(w, x, 1.0, padding=1, bias=b)
    np.testing.assert_array_equal(old["scales"], new.row_factors)
    np.testing.assert_array_equal(old["overshoot"], new.overshoot)
    assert old["n_capped"] == new.n_capped
    est = OvershootAdjuster("hard", padding=1)
    with pytest.warns(DeprecationWarning, match=r"fit\(net, x, v_th\)"):
        est.fit(w, x, 1.0, b)
    with pytest.warns(DeprecationWarning, match="row_factors_"):
        np.testing.assert_array_equal(est.scales_, new.row_factors)
    with pytest.warns(DeprecationWarning, match="Network"):
        w2, b2 = est.adjust(w, b)
    np.testing.assert_array_equal(w2, new.weights)
    np.testing.assert_array_equal(b2, new.bias)
    with pytest.warns(DeprecationWarning, match="rate_matching_factors"):
        old_rm = rate_matching_scales(TEST, ONE, v_th=1.0, steps=16, grid=[0.5, 1, 2],
                                      refine=0, encoder="constant")
    with pytest.warns(DeprecationWarning, match="row_factors"):
        np.testing.assert_array_equal(old_rm.scales, old_rm.row_factors)
    m = RateMatcher(16, grid=[0.5, 1, 2], refine=0, encoder="constant").fit(TEST, ONE, 1.0)
    with pytest.warns(DeprecationWarning, match="row_factors_"):
        np.testing.assert_array_equal(m.scales_, old_rm.row_factors)
    for method, kw in (("ratematch", {"grid": [0.5, 1, 2]}), ("overshoot", {})):
        fit = adjusted_first_layer(net, x, method, v_th=1.0, steps=10, reset="hard", **kw)
        with pytest.warns(DeprecationWarning, match=r"result\.network"):
            out, summary = fit
        assert out is fit.network and summary == fit.summary()


def test_adjusted_first_layer_both_methods():
    net = conv_net(c_out=3)
    x = np.random.default_rng(0).uniform(-1, 1, (4, 1, 8, 8))
    for method in ("ratematch", "overshoot"):
        kw = {"grid": [0.5, 1, 2]} if method == "ratematch" else {"max_scale": 1.5}
        fit = adjusted_first_layer(net, x, method, v_th=1.0, steps=10, reset="hard", **kw)
        assert isinstance(fit, (RateMatchResult, OvershootResult))
        assert fit.summary()["method"] == fit.method == method and fit.layer == 0
        out = fit.network
        assert out.layers[0].weight.shape == net.layers[0].weight.shape
        np.testing.assert_array_equal(out.layers[0].weight, fit.weights)
        np.testing.assert_array_equal(
            out.layers[0].weight, scale_first_layer(net, fit.row_factors).layers[0].weight)
        assert json.loads(json.dumps(fit.summary())) == fit.summary()
    with pytest.raises(ValueError, match="method must be"):
        adjusted_first_layer(net, x, "l4", v_th=1.0)
    with pytest.raises(ValueError, match="not fitted"):
        RateMatcher().adjust(net)
    with pytest.raises(ValueError, match="grid"):
        rate_matching_factors(net, x, v_th=1.0, steps=5, grid=[-1.0])
