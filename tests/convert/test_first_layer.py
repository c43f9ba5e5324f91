"""The first-layer building blocks: lookup, current moments, row scaling, the fit result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l4theory.adjust import mean_patch
from l4theory.convert.first_layer import (
    FirstLayerFit,
    current_moments,
    first_weight_layer,
    scale_first_layer,
    scale_rows,
)
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU

# --------------------------------------------------------------------------- references


def windows(x, kh, kw, stride, pads):
    """Every window of the zero-padded maps, by explicit loops: (batch, oh, ow, C, kh, kw)."""
    (sh, sw), (t, left, b, r) = stride, pads
    xp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + t + b, x.shape[3] + left + r))
    xp[:, :, t:t + x.shape[2], left:left + x.shape[3]] = x
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    out = np.empty((x.shape[0], oh, ow, x.shape[1], kh, kw))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                out[n, i, j] = xp[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
    return out


def slow_moments(w, mean, var, bias, stride, pads):
    """Mean and variance of every neuron's current, one window and one neuron at a time."""
    pm, pv = windows(mean, *w.shape[2:], stride, pads), windows(var, *w.shape[2:], stride, pads)
    n, oh, ow = pm.shape[:3]
    m1 = np.empty((n, w.shape[0], oh, ow))
    v = np.empty_like(m1)
    for s in range(n):
        for c in range(w.shape[0]):
            for i in range(oh):
                for j in range(ow):
                    m1[s, c, i, j] = sum(float(a) * float(e) for a, e in
                                         zip(w[c].ravel(), pm[s, i, j].ravel(), strict=True))
                    m1[s, c, i, j] += 0.0 if bias is None else bias[c]
                    v[s, c, i, j] = sum(float(a) ** 2 * float(e) for a, e in
                                        zip(w[c].ravel(), pv[s, i, j].ravel(), strict=True))
    return m1, v


GEOMETRIES = [((1, 1), (0, 0, 0, 0)), ((1, 1), (1, 1, 1, 1)), ((2, 1), (1, 0, 2, 1)),
              ((2, 3), (2, 2, 2, 2))]


# --------------------------------------------------------------------------- moments


@pytest.mark.parametrize(("stride", "pads"), GEOMETRIES)
@pytest.mark.parametrize("with_bias", [False, True])
def test_conv_moments_equal_explicit_window_enumeration(stride, pads, with_bias):
    rng = np.random.default_rng(11)
    w = rng.normal(size=(3, 2, 3, 2))
    x = rng.uniform(-1, 1, (4, 2, 6, 5))
    var = np.abs(x) * (1 - np.abs(x))
    bias = rng.normal(size=3) if with_bias else None
    got = current_moments(w, x, var, bias=bias, stride=stride, padding=pads)
    m1, v = slow_moments(w, x, var, bias, stride, pads)
    assert got.mean.shape == m1.shape
    np.testing.assert_allclose(got.mean, m1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got.var, v, rtol=1e-12, atol=1e-14)
    # either moment alone is the same array
    np.testing.assert_array_equal(current_moments(w, var=var, stride=stride, padding=pads).var,
                                  got.var)
    assert current_moments(w, x, stride=stride, padding=pads).var is None


@settings(derandomize=True, deadline=None, max_examples=40,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), kh=st.integers(1, 3), kw=st.integers(1, 3),
       stride=st.integers(1, 2), pad=st.integers(0, 2), c_in=st.integers(1, 3))
def test_mean_current_over_windows_equals_the_mean_patch(seed, kh, kw, stride, pad, c_in):
    # The L4 adjustment's mu_j (w_j . mean_patch + b_j, by linearity) is the mean over
    # batch and windows of the per-window currents that current_moments computes.
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(2, c_in, kh, kw))
    b = rng.normal(size=2)
    x = rng.uniform(-1, 1, (3, c_in, 5, 4))
    m = current_moments(w, x, bias=b, stride=stride, padding=pad).mean
    mu = w.reshape(2, -1) @ mean_patch(x, (kh, kw), stride=stride, padding=pad) + b
    np.testing.assert_allclose(m.mean(axis=(0, 2, 3)), mu, rtol=1e-12, atol=1e-12)


def test_dense_moments_equal_explicit_sums_and_accept_images():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 12))
    x = rng.uniform(0, 1, (5, 1, 3, 4))
    var = x * (1 - x)
    b = rng.normal(size=4)
    got = current_moments(w, x, var, bias=b)
    flat, vflat = x.reshape(5, 12), var.reshape(5, 12)
    for s in range(5):
        for j in range(4):
            assert got.mean[s, j] == pytest.approx(sum(w[j] * flat[s]) + b[j], rel=1e-12)
            assert got.var[s, j] == pytest.approx(sum(w[j] ** 2 * vflat[s]), rel=1e-12)


@pytest.mark.statistical
@pytest.mark.parametrize("encoder", ["signed", "bernoulli"])
def test_moments_match_monte_carlo_of_encoded_spikes(encoder):
    # I = w . s + b over many independent spike draws: the sample mean and variance of
    # every neuron's current agree with current_moments within 5 standard errors.
    rng = np.random.default_rng(5)
    w = rng.normal(size=(2, 1, 3, 3))
    b = np.array([0.3, -0.2])
    x = rng.uniform(-1 if encoder == "signed" else 0, 1, (1, 1, 4, 4))
    p = np.abs(x)
    n = 20_000
    draws = (rng.random((n, *x.shape[1:])) < p).astype(float)
    if encoder == "signed":
        draws *= np.sign(x)
    pred = current_moments(w, x, p * (1 - p), bias=b, stride=1, padding=1)
    cur = np.einsum("nijckl,ockl->noij", windows(draws, 3, 3, (1, 1), (1, 1, 1, 1)), w) \
        + b[None, :, None, None]
    mean, var = cur.mean(axis=0), cur.var(axis=0, ddof=1)
    se_mean = np.sqrt(var / n)
    se_var = ((cur - mean) ** 2).std(axis=0, ddof=1) / np.sqrt(n)
    live = pred.var[0] > 1e-6
    z_mean = np.abs(mean - pred.mean[0])[live] / se_mean[live]
    z_var = np.abs(var - pred.var[0])[live] / se_var[live]
    assert z_mean.max() < 5 and z_var.max() < 5, (z_mean.max(), z_var.max())
    # a neuron whose window sees only zeros or saturated pixels is deterministic
    np.testing.assert_allclose(cur.std(axis=0)[~live], 0.0, atol=1e-12)


def test_moments_errors():
    w = np.ones((2, 1, 3, 3))
    with pytest.raises(ValueError, match="needs mean"):
        current_moments(w)
    with pytest.raises(ValueError, match=r"mean must have shape \(batch, 1, H, W\)"):
        current_moments(w, np.ones((2, 3, 5, 5)))
    with pytest.raises(ValueError, match="var"):
        current_moments(w, var=-np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\)"):
        current_moments(w, np.ones((1, 1, 5, 5)), bias=np.ones(3))
    with pytest.raises(ValueError, match=r"mean must have shape \(batch, 4\)"):
        current_moments(np.ones((2, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="weight must be a dense matrix"):
        current_moments(np.ones(3), np.ones((1, 3)))


# --------------------------------------------------------------------------- lookup


def test_first_weight_layer_finds_the_first_conv_or_linear():
    net = Network((1, 4, 4), [Flatten(), Linear(np.ones((3, 16), np.float32), name="a"), ReLU(),
                              Linear(np.ones((2, 3), np.float32), name="b")])
    i, lay = first_weight_layer(net, direct_input=True)
    assert i == 1 and lay is net.layers[1] and lay.name == "a"
    pooled = Network((1, 4, 4), [AvgPool2d(), Conv2d(np.ones((2, 1, 1, 1), np.float32)),
                                 ReLU()])
    assert first_weight_layer(pooled)[0] == 1
    with pytest.raises(ValueError, match="receive the encoded input directly"):
        first_weight_layer(pooled, direct_input=True)
    with pytest.raises(ValueError, match="has no conv2d or linear layer"):
        first_weight_layer(Network((3,), [ReLU()]))
    with pytest.raises(ValueError, match="net must be a Network, got dict"):
        first_weight_layer({})


# --------------------------------------------------------------------------- row scaling


def test_scale_rows_equals_row_by_row_products():
    rng = np.random.default_rng(4)
    w = rng.normal(size=(3, 2, 2, 2)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    k = np.array([0.5, 1.25, 3.0])
    w0 = w.copy()
    w_new, b_new = scale_rows(w, b, k)
    assert w_new.dtype == np.float32 and b_new.dtype == np.float32
    for j in range(3):
        np.testing.assert_array_equal(w_new[j], (w[j].astype(np.float64) * k[j])
                                      .astype(np.float32))
        assert b_new[j] == np.float32(np.float64(b[j]) * k[j])
    np.testing.assert_array_equal(w, w0)  # not in place
    w_int, none = scale_rows(np.array([[1, 2], [3, 4]]), None, [2.0, 0.5])
    assert w_int.dtype == np.float64 and none is None
    np.testing.assert_array_equal(w_int, [[2, 4], [1.5, 2]])
    for bad in ([1.0, 0.0, 1.0], [1.0, np.inf, 1.0], [1.0, 2.0], [[1.0, 1.0, 1.0]]):
        with pytest.raises(ValueError, match="row_factors"):
            scale_rows(w, b, bad)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        scale_rows(w, np.ones(2), k)


def test_scale_first_layer_changes_only_the_first_weight_layer():
    net = Network((4,), [Linear(np.arange(8, dtype=np.float32).reshape(2, 4),
                                np.array([1.0, -1.0], np.float32), name="a"), ReLU(),
                         Linear(np.ones((3, 2), np.float32), name="b")])
    out = scale_first_layer(net, [2.0, 0.25])
    np.testing.assert_array_equal(out.layers[0].weight, [[0, 2, 4, 6], [1, 1.25, 1.5, 1.75]])
    np.testing.assert_array_equal(out.layers[0].bias, [2.0, -0.25])
    np.testing.assert_array_equal(out.layers[2].weight, net.layers[2].weight)
    np.testing.assert_array_equal(net.layers[0].weight[0], [0, 1, 2, 3])  # not in place


# --------------------------------------------------------------------------- result


def test_first_layer_fit_summary_and_deprecated_unpacking():
    net = Network((2,), [Linear(np.eye(2, dtype=np.float32)), ReLU()])
    fit = FirstLayerFit(method="demo", row_factors=np.array([1.0, 3.0]),
                        weights=net.layers[0].weight, bias=None, network=net, layer=0)
    assert fit.summary() == {"method": "demo", "n_neurons": 2, "k_min": 1.0,
                             "k_median": 2.0, "k_max": 3.0}
    with pytest.warns(DeprecationWarning, match=r"use result\.network"):
        got_net, summary = fit
    assert got_net is net and summary == fit.summary()
    bare = FirstLayerFit(method="demo", row_factors=np.ones(2), weights=np.eye(2), bias=None)
    with pytest.raises(TypeError, match="not iterable"):
        list(bare)


# --------------------------------------------------------------------------- membrane mean


def _membrane_net(rng):
    w = rng.normal(0.0, 0.6, (3, 1, 3, 3)).astype(np.float32)
    b = rng.normal(0.0, 0.1, 3).astype(np.float32)
    return Network((1, 5, 5), [Conv2d(w, b, padding=(1, 1, 1, 1), name="c"), ReLU(),
                               Flatten(), Linear(rng.normal(0, 1, (2, 75)).astype(np.float32)),
                               ])


def slow_membrane(net, x, v_th, steps, alpha, reset, semantics, seed):
    """Per-neuron loop over steps, the currents from explicit windows; the mean per channel."""
    from l4theory.convert.simulate import encode_steps

    conv = net.layers[0]
    w = conv.weight.astype(np.float64)
    s = encode_steps(x, "signed", seed, np.arange(len(x), dtype=np.uint64), 0, steps)
    s = s.reshape(steps, len(x), *x.shape[1:])
    total, count = np.zeros(w.shape[0]), 0
    for n in range(len(x)):
        cur = np.stack([slow_moments(w, s[t, n][None], s[t, n][None] ** 2, conv.bias,
                                     conv.stride, conv.padding)[0][0] for t in range(steps)])
        for c in range(w.shape[0]):
            for i in range(cur.shape[2]):
                for j in range(cur.shape[3]):
                    v = 0.0
                    for t in range(steps):
                        if semantics == "rathi":
                            fire = v > v_th
                            xt = alpha * v + cur[t, c, i, j]
                            v = (cur[t, c, i, j] if reset == "hard" else xt - v_th) if fire else xt
                            total[c] += v
                        else:
                            xt = alpha * v + cur[t, c, i, j]
                            total[c] += xt
                            v = (0.0 if reset == "hard" else xt - v_th) if xt >= v_th else xt
        count += steps * cur.shape[2] * cur.shape[3]
    return total / count


@pytest.mark.parametrize("semantics", ["project", "rathi"])
@pytest.mark.parametrize("reset,alpha", [("soft", 1.0), ("hard", 0.85)])
def test_membrane_mean_matches_a_per_neuron_loop(semantics, reset, alpha):
    from l4theory.convert.first_layer import membrane_mean

    rng = np.random.default_rng(3)
    net = _membrane_net(rng)
    x = rng.uniform(-1, 1, (3, 1, 5, 5)).astype(np.float32)
    got = membrane_mean(net, x, v_th=0.4, steps=6, alpha=alpha, reset=reset,
                        semantics=semantics, seed=9, batch_size=2)
    want = slow_membrane(net, x, 0.4, 6, alpha, reset, semantics, 9)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_membrane_mean_without_firing_is_the_mean_cumulative_current():
    """v_th = inf, no leak: the membrane after t steps is the sum of t currents, whose mean
    over the calibration set tends to t * (w . E[s]); averaged over t = 1..T it is
    (T + 1) / 2 times the per-step current mean (Monte Carlo: within 5 standard errors)."""
    from l4theory.convert.first_layer import membrane_mean

    rng = np.random.default_rng(4)
    net = _membrane_net(rng)
    x = rng.uniform(-1, 1, (40, 1, 5, 5)).astype(np.float32)
    steps = 5
    got = membrane_mean(net, x, v_th=np.inf, steps=steps, seed=1)
    conv = net.layers[0]
    cm = current_moments(conv.weight, np.clip(x, -1, 1).astype(np.float64),
                         np.abs(x) * (1 - np.abs(x)), bias=conv.bias, padding=conv.padding)
    want = (steps + 1) / 2 * cm.mean.mean(axis=(0, 2, 3))
    # the sum of per-step variances over steps of the weights (1..T), per channel
    var_mean = cm.var.mean(axis=(0, 2, 3)) * sum(k * k for k in range(1, steps + 1)) / steps ** 2
    se = np.sqrt(var_mean / (x.shape[0] * 25))
    assert np.all(np.abs(got - want) < 5 * se + 1e-12), (got, want, se)


def test_membrane_mean_rejects_bad_input():
    from l4theory.convert.first_layer import membrane_mean

    net = _membrane_net(np.random.default_rng(0))
    x = np.zeros((2, 1, 5, 5), np.float32)
    for kw, word in [({"v_th": 0.0}, "v_th"), ({"v_th": 1.0, "steps": 0}, "steps"),
                     ({"v_th": 1.0, "alpha": 1.5}, "alpha"),
                     ({"v_th": 1.0, "reset": "zero"}, "reset"),
                     ({"v_th": 1.0, "semantics": "x"}, "semantics")]:
        with pytest.raises(ValueError, match=word):
            membrane_mean(net, x, **{"steps": 3, **kw})
    with pytest.raises(ValueError, match="x must have shape"):
        membrane_mean(net, np.zeros((2, 1, 4, 4)), v_th=1.0, steps=2)
    with pytest.raises(ValueError, match="sample_ids"):
        membrane_mean(net, x, v_th=1.0, steps=2, sample_ids=[1])


def test_adjusted_network_with_a_given_mu():
    """mu= replaces step 1 only: the current's own mean gives identical factors; any other
    mu enters Eq. 6 exactly."""
    from l4theory.adjust import adjusted_network

    rng = np.random.default_rng(5)
    net = _membrane_net(rng)
    x = rng.uniform(-1, 1, (6, 1, 5, 5)).astype(np.float32)
    ref = adjusted_network(net, x, 0.7, 0.5)
    same = adjusted_network(net, x, 0.7, 0.5, mu=ref.mu)
    np.testing.assert_array_equal(same.row_factors, ref.row_factors)
    mu = np.array([0.1, -0.2, 0.3])
    got = adjusted_network(net, x, 0.7, 0.5, mu=mu)
    np.testing.assert_allclose(got.v_hat, mu + got.rho * (0.7 - mu), rtol=1e-14)
    np.testing.assert_array_equal(got.rho, ref.rho)
    with pytest.raises(ValueError, match="mu must be 3 finite"):
        adjusted_network(net, x, 0.7, 0.5, mu=[1.0, 2.0])
