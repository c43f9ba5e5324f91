"""Tests of the L4 adjustment (Eqs. 6-9) in l4theory.adjust."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from l4theory.adjust import L4Adjuster, NotFittedError, adjust_weights, mean_patch
from l4theory.testing import first_layers

PROFILE = settings(derandomize=True, deadline=None, max_examples=60,
                   suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- references


def im2col_reference(x, kh, kw, stride, padding):
    """Slow explicit im2col: every (sample, window) patch, flattened (C, kh, kw)."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    h, w = xp.shape[2:]
    patches = []
    for n in range(x.shape[0]):
        for i in range(0, h - kh + 1, sh):
            for j in range(0, w - kw + 1, sw):
                patches.append(xp[n, :, i:i + kh, j:j + kw].reshape(-1))
    return np.array(patches)


def reference_adjust(w2d, patches, v_th0, r_s, bias=None, spread=None):
    """Eqs. 6-9 written out directly from the theory notes, one neuron at a time."""
    n_out = w2d.shape[0]
    mu = np.array([np.mean(patches @ w2d[j]) + (0.0 if bias is None else bias[j])
                   for j in range(n_out)])
    l4 = np.array([np.sum(w2d[j] ** 4) ** 0.25 for j in range(n_out)]) if spread is None \
        else spread
    mul4 = l4.mean()
    s_hat = np.ones(n_out)
    for j in range(n_out):
        rho = (l4[j] + r_s * mul4) / (1 + r_s) / mul4
        v_hat = mu[j] + rho * (v_th0 - mu[j])
        if v_hat > 0:
            s_hat[j] = (v_th0 / v_hat + r_s) / (1 + r_s)
    scaled = w2d * s_hat[:, None]
    c = np.abs(w2d).mean() / np.abs(scaled).mean()
    return mu, s_hat, c, scaled * c


def simulate_if(currents, th, alpha, reset):
    """Discrete IF/LIF: V = alpha V + I; spike if V >= th; soft: V -= th, hard: V = 0."""
    v = np.zeros(currents.shape[1])
    spikes = np.zeros(currents.shape, dtype=bool)
    for t in range(currents.shape[0]):
        v = alpha * v + currents[t]
        fired = v >= th
        spikes[t] = fired
        if reset == "soft":
            v = np.where(fired, v - th, v)
        else:
            v = np.where(fired, 0.0, v)
    return spikes


# --------------------------------------------------------------------------- strategies

# first layers on exact grids (weights 0.1, inputs 0.05), dense or convolutional: the
# strategy is public, l4theory.testing.first_layers
conv_layers = functools.partial(first_layers, "conv")
layers = first_layers()
v_ths = st.integers(1, 50).map(lambda k: k / 10)
r_ss = st.sampled_from([0.0, 0.25, 1.0, 4.0])


def patches_of(w, x, geo):
    if w.ndim == 2:
        return x
    return im2col_reference(x, w.shape[2], w.shape[3], geo["stride"], geo["padding"])


# --------------------------------------------------------------------------- hand-computed


def test_dense_hand_computed():
    # W = [[1, 0], [0, 3]], mean input (0.5, 0.5): mu = (0.5, 1.5); L4 = (1, 3), muL4 = 2.
    # r_s = 1: L4s = (1.5, 2.5), rho = (3/4, 5/4); v_th0 = 2:
    # v_hat = (0.5 + 3/4 * 1.5, 1.5 + 5/4 * 0.5) = (13/8, 17/8); s = (16/13, 16/17);
    # s_hat = (29/26, 33/34); c = 4 / (29/26 + 3 * 33/34) = 442/445.
    w = np.array([[1.0, 0.0], [0.0, 3.0]])
    x = np.array([[1.0, 0.5], [0.0, 0.5]])
    r = adjust_weights(w, x, 2.0, 1.0)
    np.testing.assert_allclose(r.mu, [0.5, 1.5], rtol=1e-15)
    np.testing.assert_allclose(r.l4, [1.0, 3.0], rtol=1e-15)
    assert r.mu_l4 == pytest.approx(2.0, rel=1e-15)
    np.testing.assert_allclose(r.rho, [0.75, 1.25], rtol=1e-15)
    np.testing.assert_allclose(r.v_hat, [13 / 8, 17 / 8], rtol=1e-15)
    np.testing.assert_allclose(r.s, [16 / 13, 16 / 17], rtol=1e-15)
    np.testing.assert_allclose(r.s_hat, [29 / 26, 33 / 34], rtol=1e-15)
    assert r.c == pytest.approx(442 / 445, rel=1e-15)
    np.testing.assert_allclose(r.weights, [[29 / 26 * 442 / 445, 0], [0, 99 / 34 * 442 / 445]],
                               rtol=1e-14)
    assert r.n_guarded == 0 and not r.guarded.any() and r.bias is None


def test_dense_hand_computed_with_bias():
    # Same layer, bias (0.5, -0.5): mu = (1, 1); v_hat = (1 + 3/4, 1 + 5/4) = (7/4, 9/4);
    # s = (8/7, 8/9); s_hat = (15/14, 17/18); c = 4 / (15/14 + 3 * 17/18) = 42/41;
    # bias -> (0.5 * 15/14 * 42/41, -0.5 * 17/18 * 42/41) = (45/82, -119/246).
    w = np.array([[1.0, 0.0], [0.0, 3.0]])
    x = np.array([[1.0, 0.5], [0.0, 0.5]])
    r = adjust_weights(w, x, 2.0, 1.0, bias=[0.5, -0.5])
    np.testing.assert_allclose(r.mu, [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(r.v_hat, [7 / 4, 9 / 4], rtol=1e-15)
    np.testing.assert_allclose(r.s, [8 / 7, 8 / 9], rtol=1e-15)
    np.testing.assert_allclose(r.s_hat, [15 / 14, 17 / 18], rtol=1e-15)
    assert r.c == pytest.approx(42 / 41, rel=1e-15)
    np.testing.assert_allclose(r.bias, [45 / 82, -119 / 246], rtol=1e-14)


def test_conv_hand_computed_padding_and_stride():
    # Input [[1, 2], [3, 4]], 2x2 kernel, padding 1, stride 2: the padded 4x4 map has
    # windows at (0,0), (0,2), (2,0), (2,2). Offset (0,0) sees 0,0,0,4 -> 1; (0,1) sees
    # 0,0,3,0 -> 3/4; (1,0) sees 0,2,0,0 -> 1/2; (1,1) sees 1,0,0,0 -> 1/4.
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    np.testing.assert_allclose(mean_patch(x, 2, stride=2, padding=1), [1, 0.75, 0.5, 0.25])
    # Without padding there is one window, the image itself; with padding 1, stride 1 the
    # nine windows each contain all four pixels: 10/9 everywhere.
    np.testing.assert_allclose(mean_patch(x, 2), [1, 2, 3, 4])
    np.testing.assert_allclose(mean_patch(x, 2, padding=1), np.full(4, 10 / 9))
    # Kernels k1 = [[1,0],[0,0]] (L4 1), k2 = [[0,0],[0,3]] (L4 3): mu = (1, 3/4).
    # r_s = 1, v_th0 = 2: rho = (3/4, 5/4); v_hat = (7/4, 3/4 + 5/4 * 5/4) = (7/4, 37/16);
    # s = (8/7, 32/37); s_hat = (15/14, 69/74); c = 4 / (15/14 + 3 * 69/74) = 518/501.
    w = np.array([[[[1.0, 0.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 3.0]]]])
    r = adjust_weights(w, x, 2.0, 1.0, stride=2, padding=1)
    np.testing.assert_allclose(r.mu, [1.0, 0.75], rtol=1e-15)
    np.testing.assert_allclose(r.l4, [1.0, 3.0], rtol=1e-15)
    np.testing.assert_allclose(r.rho, [0.75, 1.25], rtol=1e-15)
    np.testing.assert_allclose(r.v_hat, [7 / 4, 37 / 16], rtol=1e-15)
    np.testing.assert_allclose(r.s, [8 / 7, 32 / 37], rtol=1e-15)
    np.testing.assert_allclose(r.s_hat, [15 / 14, 69 / 74], rtol=1e-15)
    assert r.c == pytest.approx(518 / 501, rel=1e-15)
    assert r.weights.shape == w.shape
    np.testing.assert_allclose(r.weights[1, 0, 1, 1], 3 * 69 / 74 * 518 / 501, rtol=1e-14)


# --------------------------------------------------------------------------- references


@PROFILE
@given(layer=layers, v_th0=v_ths, r_s=r_ss, with_bias=st.booleans())
def test_matches_slow_reference(layer, v_th0, r_s, with_bias):
    w, x, geo = layer
    n_out = w.shape[0]
    bias = np.linspace(-0.5, 0.5, n_out) if with_bias else None
    r = adjust_weights(w, x, v_th0, r_s, bias=bias, **geo)
    mu, s_hat, c, w_adj = reference_adjust(w.reshape(n_out, -1), patches_of(w, x, geo),
                                           v_th0, r_s, bias)
    np.testing.assert_allclose(r.mu, mu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.s_hat, s_hat, rtol=1e-9)
    assert r.c == pytest.approx(c, rel=1e-9)
    np.testing.assert_allclose(r.weights.reshape(n_out, -1), w_adj, rtol=1e-9, atol=1e-15)


@PROFILE
@given(layer=conv_layers())
def test_mean_patch_equals_explicit_im2col(layer):
    w, x, geo = layer
    patches = patches_of(w, x, geo)
    got = mean_patch(x, w.shape[2:], **geo)
    np.testing.assert_allclose(got, patches.mean(axis=0), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- properties


@PROFILE
@given(layer=layers, v_th0=v_ths)
def test_large_r_s_gives_no_change(layer, v_th0):
    w, x, geo = layer
    r_inf = adjust_weights(w, x, v_th0, np.inf, **geo)
    np.testing.assert_array_equal(r_inf.weights, w)
    assert r_inf.c == 1.0 and np.all(r_inf.s_hat == 1.0) and np.all(r_inf.rho == 1.0)
    r_s = 1e9
    r = adjust_weights(w, x, v_th0, r_s, **geo)
    # |s_hat - 1| = |s - 1| / (1 + r_s) exactly, so row factors c * s_hat are within
    # about 2 * max|s - 1| / r_s of 1.
    dev = 1e-14 + 4 * np.max(np.abs(r.s - 1)) / (1 + r_s)
    np.testing.assert_allclose(r.s_hat, 1.0, rtol=0, atol=dev)
    assert abs(r.c - 1.0) <= dev
    np.testing.assert_allclose(r.weights, w, rtol=dev, atol=0)


@PROFILE
@given(layer=layers, v_th0=v_ths, r_s=r_ss)
def test_neuron_at_mean_l4_keeps_unit_scale(layer, v_th0, r_s):
    w, x, geo = layer
    w = np.concatenate([w, w[:1]], axis=0)            # one more row to rescale
    rows = w.reshape(w.shape[0], -1)
    assume(np.any(rows[-1]))
    l4 = np.sum(rows**4, axis=1) ** 0.25
    others = l4[:-1].mean()
    assume(others > 0)
    # Last row gets L4 = mean of the others, hence L4 = muL4 of the whole layer.
    w[-1] *= others / l4[-1]
    r = adjust_weights(w, x, v_th0, r_s, **geo)
    assert r.l4[-1] == pytest.approx(r.mu_l4, rel=1e-12)
    assert r.rho[-1] == pytest.approx(1.0, rel=1e-12)
    assert r.s[-1] == pytest.approx(1.0, rel=1e-9)
    assert r.s_hat[-1] == pytest.approx(1.0, rel=1e-9)


@PROFILE
@given(layer=layers, v_th0=v_ths)
def test_zero_mean_and_zero_r_s_equalise_l4(layer, v_th0):
    w, x, geo = layer
    rows = w.reshape(w.shape[0], -1)
    assume(np.all(np.any(rows, axis=1)))                # every row non-zero
    # A bias cancelling the mean current makes mu = 0 with non-zero inputs.
    bias = -(rows @ mean_patch_of(w, x, geo))
    r = adjust_weights(w, x, v_th0, 0.0, bias=bias, **geo)
    np.testing.assert_allclose(r.mu, 0.0, atol=1e-12)
    assert r.n_guarded == 0
    l4_new = np.sum(r.weights.reshape(w.shape[0], -1) ** 4, axis=1) ** 0.25
    # Before the layer rescale every row has L4 = muL4; after it, c * muL4.
    np.testing.assert_allclose(l4_new / r.c, r.mu_l4, rtol=1e-9)


def mean_patch_of(w, x, geo):
    return x.mean(axis=0).reshape(-1) if w.ndim == 2 else mean_patch(x, w.shape[2:], **geo)


@PROFILE
@given(layer=layers, r_s=r_ss, k=st.integers(-3, 3).map(lambda e: 2.0**e),
       with_bias=st.booleans())
def test_scale_invariance_under_max_balancing(layer, r_s, k, with_bias):
    """Exact invariance tested, for k > 0 and v_th0 = max-balanced threshold:

    adjust(k W, x, k v, bias=k b) has the same s, s_hat, c and weights k * W_adj;
    adjust(W, k x, k v, bias=k b) has the same s, s_hat, c and the same weights.
    Max balancing (v_th0 = max pre-activation over the batch) satisfies v -> k v exactly.
    """
    w, x, geo = layer
    n_out = w.shape[0]
    bias = np.linspace(-0.3, 0.2, n_out) if with_bias else None
    pre = patches_of(w, x, geo) @ w.reshape(n_out, -1).T + (0 if bias is None else bias)
    v = pre.max()
    assume(v > 1e-3)
    base = adjust_weights(w, x, v, r_s, bias=bias, **geo)
    assume(np.all(np.abs(base.v_hat) > 1e-6 * v))       # away from the guard's edge
    kb = None if bias is None else k * bias
    v_w = (patches_of(w, x, geo) @ (k * w).reshape(n_out, -1).T + (0 if kb is None else kb)).max()
    v_x = (patches_of(w, k * x, geo) @ w.reshape(n_out, -1).T + (0 if kb is None else kb)).max()
    np.testing.assert_allclose([v_w, v_x], k * v, rtol=1e-12)
    for res, w_expect in ((adjust_weights(k * w, x, v_w, r_s, bias=kb, **geo), k * base.weights),
                          (adjust_weights(w, k * x, v_x, r_s, bias=kb, **geo), base.weights)):
        np.testing.assert_array_equal(res.guarded, base.guarded)
        np.testing.assert_allclose(res.s, base.s, rtol=1e-9)
        np.testing.assert_allclose(res.s_hat, base.s_hat, rtol=1e-9)
        assert res.c == pytest.approx(base.c, rel=1e-9)
        np.testing.assert_allclose(res.weights, w_expect, rtol=1e-9, atol=1e-15)


@PROFILE
@given(layer=layers, v_th0=v_ths, r_s=r_ss)
def test_rescale_restores_mean_abs_and_bias_follows_row(layer, v_th0, r_s):
    w, x, geo = layer
    n_out = w.shape[0]
    bias = np.linspace(-1.0, 1.0, n_out)
    r = adjust_weights(w, x, v_th0, r_s, bias=bias, **geo)
    assert np.abs(r.weights).mean() == pytest.approx(np.abs(w).mean(), rel=1e-12)
    np.testing.assert_allclose(r.scales, r.c * r.s_hat)
    np.testing.assert_allclose(r.weights.reshape(n_out, -1),
                               w.reshape(n_out, -1) * r.scales[:, None], rtol=1e-15)
    np.testing.assert_allclose(r.bias, bias * r.scales, rtol=1e-15)
    # The guard rule: unadjusted neurons have s = s_hat = 1 exactly.
    assert np.all(r.s[r.guarded] == 1.0) and np.all(r.s_hat[r.guarded] == 1.0)
    assert r.n_guarded == int(np.sum(~np.isfinite(r.v_hat) | (r.v_hat <= 0)))


# --------------------------------------------------------------------------- equivalence


@PROFILE
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(-4, 4).map(lambda e: 2.0**e),
       alpha=st.sampled_from([1.0, 0.9, 0.5]), reset=st.sampled_from(["soft", "hard"]),
       th=st.integers(1, 30).map(lambda t: t / 10))
def test_row_scaling_equals_threshold_division(seed, k, alpha, reset, th):
    """Row j scaled by k at threshold th == unscaled row at threshold th / k.

    k is a power of two so that k * V is computed without rounding; then V_k = k V holds
    bit for bit through leak, input, both resets, and the comparison V_k >= th is exactly
    V >= th / k: the spike trains are identical.
    """
    rng = np.random.default_rng(seed)
    n_in, n_out, steps = 6, 3, 60
    w = rng.normal(size=(n_out, n_in))
    spikes_in = rng.random((steps, n_in)) < rng.random(n_in)
    scale = np.ones(n_out)
    scale[1] = k
    scaled = simulate_if(spikes_in @ (w * scale[:, None]).T, th, alpha, reset)
    divided = simulate_if(spikes_in @ w.T, th / scale, alpha, reset)
    assume(scaled[:, 1].any())  # only cases where the scaled neuron fires say anything
    np.testing.assert_array_equal(scaled, divided)


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_adjusted_layer_equals_per_neuron_thresholds(reset):
    # The adjusted layer at v_th0 fires like the original layer with neuron j's threshold
    # divided by its total factor c * s_hat_j (no ties occur with continuous weights).
    rng = np.random.default_rng(7)
    w = rng.normal(size=(8, 20))
    probs = rng.random(20)
    x_cal = (rng.random((64, 20)) < probs).astype(float)
    v = float((x_cal @ w.T).max())
    r = adjust_weights(w, np.broadcast_to(probs, (16, 20)), v, 0.5)
    assert r.n_guarded == 0 and np.ptp(r.s_hat) > 0.05
    spikes_in = (rng.random((200, 20)) < probs).astype(float)
    adjusted = simulate_if(spikes_in @ r.weights.T, v, 0.95, reset)
    divided = simulate_if(spikes_in @ w.T, v / r.scales, 0.95, reset)
    np.testing.assert_array_equal(adjusted, divided)
    assert adjusted.sum() > 0


# --------------------------------------------------------------------------- guard


def test_guard_counts_and_strict_mode():
    # Row 0: L4 = 10, row 1: L4 = 1, muL4 = 5.5; r_s = 0: rho0 = 20/11. Input 1:
    # mu0 = 10 > v_th0 = 1, v_hat0 = 10 + 20/11 * (1 - 10) < 0 -> guarded.
    w = np.array([[10.0], [1.0]])
    x = np.ones((3, 1))
    r = adjust_weights(w, x, 1.0, 0.0)
    assert r.v_hat[0] == pytest.approx(10 - 180 / 11)
    assert r.guarded.tolist() == [True, False] and r.n_guarded == 1
    assert r.s[0] == 1.0 and r.s_hat[0] == 1.0
    assert r.s[1] == pytest.approx(1.0) and r.v_hat[1] == pytest.approx(1.0)
    assert r.summary()["n_guarded"] == 1
    with pytest.raises(ValueError, match=r"strict=True: 1 neuron.*neurons 0 \(v_hat="):
        adjust_weights(w, x, 1.0, 0.0, strict=True)
    with pytest.raises(ValueError, match="neurons 0"):
        L4Adjuster(0.0, strict=True).fit(w, x, 1.0)


def test_guard_zero_row_and_non_finite():
    # A zero row has L4 = 0: with r_s = 0, rho = 0 and v_hat = mu = 0 -> guarded.
    w = np.array([[0.0, 0.0], [1.0, 2.0]])
    r = adjust_weights(w, np.full((2, 2), 0.5), 1.0, 0.0)
    assert r.guarded.tolist() == [True, False]
    # Overflowing mean current: mu = inf, v_hat = nan -> guarded, not a crash.
    w = np.array([[1e300, 1e300], [1.0, 0.0]])
    r = adjust_weights(w, np.full((1, 2), 1e10), 1.0, 1.0)
    assert r.guarded.tolist() == [True, False] and not np.isfinite(r.v_hat[0])
    assert np.all(np.isfinite(r.weights))


def test_summary_is_json_safe_and_readonly_arrays():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 4))
    r = adjust_weights(w, rng.random((10, 4)), 2.0, np.inf)
    summ = json.loads(json.dumps(r.summary(), allow_nan=False))
    assert summ["r_s"] == "inf" and summ["c"] == 1.0 and summ["s_hat_max"] == 1.0
    assert set(summ) >= {"s_hat_min", "s_hat_median", "s_hat_max", "c", "n_guarded"}
    with pytest.raises(ValueError):
        r.s_hat[0] = 2.0
    with pytest.raises(AttributeError):
        r.c = 2.0  # frozen dataclass


def test_float32_weights_keep_dtype():
    w = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    r = adjust_weights(w, np.full((2, 3), 0.5), 3.0, 1.0, bias=np.ones(2, np.float32))
    assert r.weights.dtype == np.float32 and r.bias.dtype == np.float32
    assert r.mu.dtype == np.float64


def test_dense_accepts_image_shaped_inputs():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 12))
    x = rng.random((5, 1, 3, 4))
    a = adjust_weights(w, x, 1.5, 1.0)
    b = adjust_weights(w, x.reshape(5, 12), 1.5, 1.0)
    np.testing.assert_array_equal(a.weights, b.weights)


# --------------------------------------------------------------------------- estimator


def test_estimator_matches_function_dense_and_conv():
    rng = np.random.default_rng(3)
    cases = [(rng.normal(size=(6, 10)), rng.random((8, 10)), {}),
             (rng.normal(size=(4, 2, 3, 3)), rng.random((3, 2, 7, 6)),
              {"stride": (2, 1), "padding": 1})]
    for w, x, geo in cases:
        b = rng.normal(size=w.shape[0]) * 0.1
        est = L4Adjuster(0.5, **geo)
        assert est.get_params()["r_s"] == 0.5 and not hasattr(est, "s_hat_")
        assert est.fit(w, x, 2.0, b) is est
        r = adjust_weights(w, x, 2.0, 0.5, bias=b, **geo)
        for name in ("mu", "l4", "rho", "v_hat", "s", "s_hat", "guarded", "spread"):
            np.testing.assert_array_equal(getattr(est, name + "_"), getattr(r, name))
        assert est.c_ == r.c and est.mu_l4_ == r.mu_l4 and est.n_guarded_ == r.n_guarded
        w_adj, b_adj = est.adjust(w, b)
        np.testing.assert_array_equal(w_adj, r.weights)
        np.testing.assert_array_equal(b_adj, r.bias)
        np.testing.assert_array_equal(est.adjust(w), r.weights)
        w_fa, b_fa = L4Adjuster(0.5, **geo).fit_adjust(w, x, 2.0, b)
        np.testing.assert_array_equal(w_fa, r.weights)
        np.testing.assert_array_equal(b_fa, r.bias)
        assert est.summary() == r.summary()


def test_estimator_errors():
    est = L4Adjuster()
    with pytest.raises(NotFittedError, match="not fitted"):
        est.adjust(np.ones((2, 2)))
    est.fit(np.eye(3), np.ones((2, 3)) * 0.5, 1.0)
    with pytest.raises(ValueError, match=r"weights has shape \(3, 4\).*fitted on shape \(3, 3\)"):
        est.adjust(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        est.adjust(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="r_s must be >= 0"):
        L4Adjuster(r_s=-1).fit(np.eye(2), np.ones((1, 2)), 1.0)


# --------------------------------------------------------------------------- exact method


@PROFILE
@given(layer=layers, v_th0=v_ths, r_s=r_ss)
def test_exact_method_matches_per_window_reference(layer, v_th0, r_s):
    w, x, geo = layer
    n_out = w.shape[0]
    patches = patches_of(w, x, geo)
    rows = w.reshape(n_out, -1)
    sigma = np.sqrt((patches * (1 - patches)) @ (rows**2).T).mean(axis=0)
    assume(np.any(sigma > 0))
    r = adjust_weights(w, x, v_th0, r_s, method="exact", **geo)
    np.testing.assert_allclose(r.spread, sigma, rtol=1e-10, atol=1e-14)
    _, s_hat, c, w_adj = reference_adjust(rows, patches, v_th0, r_s, spread=sigma)
    np.testing.assert_allclose(r.s_hat, s_hat, rtol=1e-9)
    np.testing.assert_allclose(r.weights.reshape(n_out, -1), w_adj, rtol=1e-9, atol=1e-15)
    np.testing.assert_array_equal(r.l4, adjust_weights(w, x, v_th0, r_s, **geo).l4)


def test_exact_method_flat_variance_follows_l2():
    # With Var[s_i] the same constant for every input, sigma_j = sqrt(v) ||w_j||_2: the
    # exact spread follows the L2 norm, not the L4 norm (the paper's proxy).
    rng = np.random.default_rng(5)
    w = rng.normal(size=(5, 9))
    x = rng.random((4, 9))
    r = adjust_weights(w, x, 1.0, 0.0, method="exact", input_var=np.full(x.shape, 0.09))
    np.testing.assert_allclose(r.spread, 0.3 * np.linalg.norm(w, axis=1), rtol=1e-12)
    # Chunked conv path (forces several chunks) equals the one-shot path.
    import l4theory.adjust as adj
    wc, xc = rng.normal(size=(3, 2, 3, 3)), rng.random((7, 2, 6, 6))
    full = adjust_weights(wc, xc, 1.0, 1.0, method="exact", padding=1)
    old = adj._CHUNK_ELEMS
    try:
        adj._CHUNK_ELEMS = 18 * 36 * 2
        chunked = adjust_weights(wc, xc, 1.0, 1.0, method="exact", padding=1)
    finally:
        adj._CHUNK_ELEMS = old
    np.testing.assert_allclose(chunked.spread, full.spread, rtol=1e-13)


def test_exact_method_errors():
    with pytest.raises(ValueError, match=r"needs \|inputs\| <= 1"):
        adjust_weights(np.eye(2), np.full((1, 2), 2.0), 1.0, 1.0, method="exact")
    with pytest.raises(ValueError, match="zero input-current variance"):
        adjust_weights(np.eye(2), np.ones((1, 2)), 1.0, 1.0, method="exact")
    with pytest.raises(ValueError, match='input_var is used by method="exact" only'):
        adjust_weights(np.eye(2), np.ones((1, 2)), 1.0, 1.0, input_var=np.ones((1, 2)))
    with pytest.raises(ValueError, match="input_var must be >= 0"):
        adjust_weights(np.eye(2), np.ones((1, 2)), 1.0, 1.0, method="exact",
                       input_var=-np.ones((1, 2)))
    with pytest.raises(ValueError, match="method must be one of"):
        adjust_weights(np.eye(2), np.ones((1, 2)), 1.0, 1.0, method="l2")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weights": np.ones(3)}, r"weights must be a dense matrix .* got shape \(3,\)"),
        ({"weights": np.zeros((2, 2))}, "weights are all zero"),
        ({"weights": [[1.0, np.nan], [0, 1]]}, "weights must not contain NaN"),
        ({"weights": [[1.0, np.inf], [0, 1]]}, "weights must be finite"),
        ({"weights": [["a", "b"], ["c", "d"]]}, "weights must be numeric"),
        ({"inputs": np.ones((4, 3))}, r"inputs must have shape \(batch, 2\)"),
        ({"inputs": np.ones(2)}, r"inputs must have shape \(batch, 2\)"),
        ({"inputs": [[np.nan, 1.0]]}, "inputs must not contain NaN"),
        ({"v_th0": 0.0}, "v_th0 must be > 0, got 0.0"),
        ({"v_th0": -1.0}, "v_th0 must be > 0"),
        ({"v_th0": [1.0, 2.0]}, "v_th0 must be a scalar"),
        ({"v_th0": np.inf}, "v_th0 must be finite"),
        ({"r_s": -0.5}, "r_s must be >= 0, got -0.5"),
        ({"r_s": np.nan}, "r_s must not contain NaN"),
        ({"r_s": [1.0, 2.0]}, "r_s must be a scalar"),
        ({"bias": np.ones(3)}, r"bias must have shape \(2,\)"),
        ({"stride": 2}, "stride and padding apply to conv kernels only"),
        ({"strict": "yes"}, "strict must be a bool"),
    ],
)
def test_dense_validation_errors(kwargs, match):
    args = {"weights": np.eye(2), "inputs": np.full((3, 2), 0.5), "v_th0": 1.0, "r_s": 1.0}
    args.update(kwargs)
    rest = {k: args.pop(k) for k in list(args) if k not in ("weights", "inputs", "v_th0", "r_s")}
    with pytest.raises(ValueError, match=match):
        adjust_weights(args["weights"], args["inputs"], args["v_th0"], args["r_s"], **rest)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"inputs": np.ones((2, 3, 5, 5))}, r"inputs must have shape \(batch, 2, H, W\)"),
        ({"inputs": np.ones((2, 2, 5))}, r"inputs must have shape \(batch, 2, H, W\)"),
        ({"inputs": np.ones((1, 2, 2, 2))}, r"kernel 3x3 does not fit inputs of spatial size 2x2"),
        ({"stride": 0}, "stride must be >= 1, got 0"),
        ({"stride": (1, 2, 3)}, "stride must be an int or a pair"),
        ({"padding": -1}, "padding must be >= 0, got -1"),
        ({"padding": 1.5}, "padding must be an integer, got 1.5"),
    ],
)
def test_conv_validation_errors(kwargs, match):
    w = np.ones((4, 2, 3, 3))
    args = {"inputs": np.full((2, 2, 5, 5), 0.5), **kwargs}
    inputs = args.pop("inputs")
    with pytest.raises(ValueError, match=match):
        adjust_weights(w, inputs, 1.0, 1.0, **args)


def test_mean_patch_validation():
    with pytest.raises(ValueError, match="inputs must be 4-D"):
        mean_patch(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        mean_patch(np.ones((1, 1, 3, 3)), 0)
