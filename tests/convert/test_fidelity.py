"""First-layer fidelity: exact hand-made cases, a slow reference loop, sampling, errors."""

import itertools

import numpy as np
import pytest

from l4theory.convert.fidelity import (
    dominance_counts,
    fidelity_metrics,
    first_layer_fidelity,
    first_layer_network,
    first_layer_rates,
    first_layer_target,
)
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU


def dense_net():
    w = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    return Network((2,), [Linear(w, name="l1"), ReLU(),
                          Linear(np.ones((2, 3), np.float32), name="out")])


def conv_net(seed=0):
    rng = np.random.default_rng(seed)
    w = (rng.integers(-4, 5, size=(5, 1, 3, 3)) / 8).astype(np.float32)
    return Network((1, 6, 6), [
        Conv2d(w, (rng.integers(-2, 3, 5) / 16).astype(np.float32), padding=1, name="c1"),
        ReLU(), AvgPool2d(2), Flatten(),
        Linear((rng.integers(-4, 5, size=(3, 45)) / 8).astype(np.float32), name="out")])


X = np.array([[0.5, 0.25]])


def test_constant_input_soft_reset_rates_equal_targets():
    # currents 0.5, 0.25, 0.375 per step, v_th 1, T 8: counts floor(8 I) = 4, 2, 3 exactly
    net = dense_net()
    rate = first_layer_rates(net, X, v_th=1.0, steps=8, encoder="constant")
    np.testing.assert_array_equal(rate, [[0.5, 0.25, 0.375]])
    np.testing.assert_array_equal(first_layer_target(net, X, 1.0), [[0.5, 0.25, 0.375]])
    m = first_layer_fidelity(net, net, X, v_th=1.0, steps=8, encoder="constant")
    assert m["mse"] == 0.0 and m["dominance_error"] == 0.0
    assert m["dominance"] == {"pairs": 3, "reversed": 0, "tied": 0, "error": 0.0,
                              "sampled": False}
    assert m["corr"] == pytest.approx(1.0)


def test_constant_input_hard_reset_loses_the_overshoot():
    # hard reset: 0.375 per step crosses 1 at steps 3 and 6 only (the overshoot is lost):
    # rates 0.5, 0.25, 0.25 against targets 0.5, 0.25, 0.375 -> one tied pair of three
    net = dense_net()
    m = first_layer_fidelity(net, net, X, v_th=1.0, steps=8, encoder="constant", reset="hard")
    assert m["mse"] == pytest.approx(0.125**2 / 3)
    assert m["dominance"]["tied"] == 1 and m["dominance"]["reversed"] == 0
    assert m["dominance_error"] == pytest.approx(0.5 / 3)
    assert m["mean_rate"] == pytest.approx(1.0 / 3)


def test_target_clips_and_ignores_silent_ties():
    # targets 1 (clipped from 2), 0, 0 (two silent channels: a target tie, left out)
    rate = np.array([[0.9, 0.2, 0.0]])
    target = np.array([[1.0, 0.0, 0.0]])
    d = dominance_counts(rate, target)
    assert d["pairs"] == 2 and d["reversed"] == 0 and d["tied"] == 0
    d = dominance_counts(np.array([[0.1, 0.2, 0.0]]), target)
    assert (d["pairs"], d["reversed"], d["tied"]) == (2, 1, 0)
    assert d["error"] == 0.5
    assert np.isnan(dominance_counts(rate, target, active_only=True)["error"])
    w = np.array([[4.0, 0.0]], np.float32)
    net = Network((2,), [Linear(w, name="l1"), ReLU(), Linear(np.ones((1, 1), np.float32))])
    np.testing.assert_array_equal(first_layer_target(net, X, 1.0), [[1.0]])


def slow_dominance(rate, target, active_only=False):
    pairs = rev = tie = 0
    n, c = rate.shape[:2]
    for idx in np.ndindex(rate.shape[:1] + rate.shape[2:]):
        sl = (idx[0], slice(None), *idx[1:])
        r, t = rate[sl], target[sl]
        for a, b in itertools.combinations(range(c), 2):
            if t[a] == t[b] or (active_only and not (t[a] > 0 and t[b] > 0)):
                continue
            pairs += 1
            if r[a] == r[b]:
                tie += 1
            elif (r[a] > r[b]) != (t[a] > t[b]):
                rev += 1
    return pairs, rev, tie


def slow_first_layer(net, x, v_th, steps, alpha, reset):
    """Constant input: the first conv's current every step, a float32 time loop."""
    lay = net.layers[0]
    cur = lay(x.astype(np.float32)).astype(np.float32)
    v = np.zeros_like(cur)
    count = np.zeros_like(cur)
    for _ in range(steps):
        v = np.float32(alpha) * v + cur
        spk = v >= np.float32(v_th)
        v = np.where(spk, np.float32(0) if reset == "hard" else v - np.float32(v_th), v)
        count += spk
    return count.astype(np.float64) / steps


@pytest.mark.parametrize(("alpha", "reset"), [(1.0, "soft"), (0.5, "hard"), (0.75, "soft")])
def test_against_slow_loop(alpha, reset):
    net = conv_net()
    rng = np.random.default_rng(1)
    x = (rng.integers(-8, 9, size=(3, 1, 6, 6)) / 8).astype(np.float32)
    rate = first_layer_rates(net, x, v_th=0.75, steps=12, encoder="constant", alpha=alpha,
                             reset=reset)
    np.testing.assert_array_equal(rate, slow_first_layer(net, x, 0.75, 12, alpha, reset))
    target = first_layer_target(net, x, 0.75)
    ref = np.clip(np.maximum(net.layers[0](x.astype(np.float64)), 0) / 0.75, 0, 1)
    np.testing.assert_allclose(target, ref, rtol=0, atol=1e-12)
    for active in (False, True):
        d = dominance_counts(rate, target, active_only=active)
        assert (d["pairs"], d["reversed"], d["tied"]) == slow_dominance(rate, target, active)
    m = fidelity_metrics(rate, target)
    assert m["mse"] == pytest.approx(np.mean((rate - target) ** 2))
    assert m["corr"] == pytest.approx(np.corrcoef(rate.ravel(), target.ravel())[0, 1])
    per = [np.mean((rate[i] - target[i]) ** 2) for i in range(len(x))]
    np.testing.assert_allclose(m["mse_per_sample"], per, rtol=1e-12)
    assert np.mean(m["mse_per_sample"]) == pytest.approx(m["mse"])


def test_sampled_dominance_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(2)
    target = rng.integers(0, 5, size=(40, 6, 3, 3)) / 4
    rate = np.clip(target + rng.integers(-1, 2, size=target.shape) / 4, 0, 1)
    exact = dominance_counts(rate, target)
    a = dominance_counts(rate, target, max_pairs=4000, rng=7)
    b = dominance_counts(rate, target, max_pairs=4000, rng=7)
    assert a == b and a["sampled"] and a["pairs"] == 4000
    se = np.sqrt(exact["error"] * (1 - exact["error"]) / 4000)
    assert abs(a["error"] - exact["error"]) < 5 * se


def test_spiking_input_uses_common_random_numbers():
    net = conv_net()
    x = np.random.default_rng(3).uniform(-1, 1, size=(2, 1, 6, 6))
    a = first_layer_rates(net, x, v_th=0.5, steps=20, seed=4, sample_ids=[10, 11])
    b = first_layer_rates(net, x, v_th=0.5, steps=20, seed=4, sample_ids=[10, 11])
    c = first_layer_rates(net, x, v_th=0.5, steps=20, seed=5, sample_ids=[10, 11])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (2, 5, 6, 6) and 0 <= a.min() and a.max() <= 1


def test_first_layer_network_and_errors():
    net = conv_net()
    sub = first_layer_network(net)
    assert [lay.kind for lay in sub.layers] == ["conv2d", "relu", "flatten", "linear"]
    assert sub.layers[0] is net.layers[0]
    no_relu = Network((2,), [Linear(np.ones((2, 2), np.float32))])
    with pytest.raises(ValueError, match="not followed by a ReLU"):
        first_layer_network(no_relu)
    with pytest.raises(ValueError, match="v_th"):
        first_layer_target(net, np.zeros((1, 1, 6, 6)), 0.0)
    with pytest.raises(ValueError, match="share a shape"):
        fidelity_metrics(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="max_pairs"):
        dominance_counts(np.zeros((2, 3)), np.zeros((2, 3)), max_pairs=0)
