import numpy as np
import pytest

from l4theory._checks import as_rng
from l4theory.convert.balance import _TopK, balance
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from l4theory.convert.simulate import encode_steps
from validation.reference import encode, if_forward


def net_and_data(seed=0, bias=False):
    rng = np.random.default_rng(seed)
    net = Network((1, 6, 6), [
        Conv2d(rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3) if bias else None, padding=1),
        ReLU(), AvgPool2d(2), Flatten(),
        Linear(np.abs(rng.normal(size=(8, 27))), rng.normal(size=8) if bias else None, name="h"),
        ReLU(),
        Linear(rng.normal(size=(4, 8)), None, name="out"),
    ])
    x = rng.uniform(-1, 1, size=(40, 1, 6, 6))
    return net, x


def test_max_and_percentile_match_direct_computation():
    net, x = net_and_data()
    pre = [np.concatenate([o[i] for _, o in net.iter_layers(x, batch_size=7)])
           for i in net.spiking_layers]
    r = balance(net, x, "max", batch_size=7)
    lam = np.array([p.max() for p in pre])
    np.testing.assert_allclose(r.lambdas, lam)
    np.testing.assert_allclose(r.thresholds, [lam[0], lam[1] / lam[0]])
    np.testing.assert_allclose(r.bias_scales, [1.0, 1 / lam[0]])
    assert r.readout_bias_scale == pytest.approx(1 / lam[1])
    np.testing.assert_allclose(r.stats["mean"], [p.mean() for p in pre])
    np.testing.assert_allclose(r.stats["std"], [p.std() for p in pre], rtol=1e-9)
    for q in (99.9, 90.0, 50.0, 100.0):
        rp = balance(net, x, "percentile", percentile=q, batch_size=7, scale=0.5)
        ref = np.array([np.percentile(p[p > 0], q) for p in pre])
        np.testing.assert_allclose(rp.lambdas, ref, rtol=1e-12)
        np.testing.assert_allclose(rp.thresholds, 0.5 * ref / np.r_[1.0, ref[:-1]])
    assert r.layers == (0, 4) and r.n_samples == 40


def test_topk_percentile_exact():
    rng = np.random.default_rng(1)
    v = rng.normal(size=1003)
    for q in (0.0, 12.5, 99.0, 99.9, 100.0):
        t = _TopK(int(np.ceil((1 - q / 100) * v.size)) + 2)
        for chunk in np.array_split(v, 9):
            t.add(chunk)
        assert t.percentile(q) == pytest.approx(np.percentile(v, q), rel=1e-12)


def test_spike_with_constant_input_equals_ann_max_in_first_layer():
    # constant input: the first layer's current is W x every step, so its max is the ANN max
    net, x = net_and_data(2)
    r_spk = balance(net, x, "spike", encoder="constant", steps=5, scale=1.0)
    r_max = balance(net, x, "max")
    assert r_spk.lambdas[0] == pytest.approx(r_max.lambdas[0])
    assert r_spk.thresholds[0] == pytest.approx(r_max.lambdas[0])
    r07 = balance(net, x, "spike", encoder="constant", steps=5)
    np.testing.assert_allclose(r07.thresholds, 0.7 * r07.lambdas)
    assert r07.params == {"steps": 5, "encoder": "constant", "reset": "soft"}


def test_spike_signed_is_seeded_and_bounded():
    net, x = net_and_data(3)
    a = balance(net, x, "spike", steps=20, rng=5)
    b = balance(net, x, "spike", steps=20, rng=5)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    # a per-step current with spikes in {-1, 0, 1} is bounded by the L1 norm of a row
    w = net.layers[0].weight.reshape(3, -1)
    assert a.lambdas[0] <= np.abs(w).sum(axis=1).max() * (1 + 1e-6)  # float32 currents
    assert a.lambdas[0] > 0


def test_encoders():
    rng = np.random.default_rng(4)
    x = np.full(200_000, -0.3)
    s = encode(x, "signed", rng)
    assert set(np.unique(s)) <= {-1.0, 0.0}
    assert s.mean() == pytest.approx(-0.3, abs=5 * np.sqrt(0.21 / x.size))
    b = encode(np.full(200_000, 0.3), "bernoulli", rng)
    assert b.mean() == pytest.approx(0.3, abs=5 * np.sqrt(0.21 / x.size))
    with pytest.raises(ValueError, match="encoder"):
        encode(x, "rate", rng)


def test_if_network_constant_input_approaches_ann():
    # with constant input and max balancing, the IF readout / steps approaches the ANN logits
    # scaled by 1/lambda_last (rate coding, soft reset), error O(1/steps)
    net, x = net_and_data(5, bias=True)
    r = balance(net, x, "max")
    out, _ = if_forward(net, x, r.thresholds, steps=400, encoder="constant",
                        bias_scales=r.bias_scales, readout_bias_scale=r.readout_bias_scale)
    ref = net.forward(x) / r.lambdas[-1]
    assert np.abs(out - ref).max() < 0.05 * np.abs(ref).max()
    with pytest.raises(ValueError, match="thresholds"):
        if_forward(net, x, [1.0], steps=2)
    with pytest.raises(ValueError, match="reset"):
        if_forward(net, x, r.thresholds, reset="none")


def test_hard_reset_runs_and_differs():
    net, x = net_and_data(6)
    r = balance(net, x, "max")
    soft, _ = if_forward(net, x, r.thresholds, steps=30, rng=1)
    hard, _ = if_forward(net, x, r.thresholds, steps=30, rng=1, reset="hard")
    assert soft.shape == hard.shape == (40, 4)
    assert not np.allclose(soft, hard)


def test_errors():
    net, x = net_and_data()
    with pytest.raises(ValueError, match="method"):
        balance(net, x, "mean")
    with pytest.raises(ValueError, match="percentile"):
        balance(net, x, "percentile", percentile=0)
    with pytest.raises(ValueError, match="scale"):
        balance(net, x, scale=-1)
    dead = Network((2,), [Linear(-np.ones((2, 2))), ReLU(), Linear(np.ones((1, 2)))])
    with pytest.raises(ValueError, match="no positive pre-activation"):
        balance(dead, np.ones((3, 2)))
    with pytest.raises(ValueError, match="no spiking layer"):
        balance(Network((2,), [Linear(np.ones((1, 2)))]), np.ones((3, 2)))


def dyadic_net(seed):
    rng = np.random.default_rng(seed)
    d = lambda *shape: (rng.integers(-4, 6, size=shape) / 8).astype(np.float32)  # noqa: E731
    net = Network((2, 6, 6), [
        Conv2d(d(4, 2, 3, 3), d(4) / 2, padding=1), ReLU(), AvgPool2d(2), Flatten(),
        Linear(d(8, 36), d(8) / 2, name="h"), ReLU(), Linear(d(3, 8), None, name="out"),
    ])
    return net, rng.uniform(-1, 1, size=(30, 2, 6, 6))


@pytest.mark.parametrize("reset", ["soft", "hard"])
@pytest.mark.parametrize("encoder", ["signed", "bernoulli"])
def test_spike_balance_equals_slow_twin_on_the_same_spikes(reset, encoder):
    # dyadic weights: float32 (simulate) and float64 (twin) currents and membranes are exact
    net, x = dyadic_net(7)
    x = np.abs(x) if encoder == "bernoulli" else x
    r = balance(net, x, "spike", steps=25, encoder=encoder, reset=reset, rng=11)
    seed = int(as_rng(11).integers(2**63))
    spikes = encode_steps(x, encoder, seed, np.arange(len(x)), 0, 25).reshape(25, *x.shape)
    raw = []
    for k, i in enumerate(net.spiking_layers):
        cur, _ = if_forward(net, x, raw + [1.0] * (2 - k), steps=25, reset=reset, stop_at=i,
                            input_spikes=spikes)
        raw.append(cur)
    np.testing.assert_array_equal(r.lambdas, raw)
    np.testing.assert_array_equal(r.thresholds, 0.7 * np.array(raw))


@pytest.mark.statistical
def test_spike_balance_agrees_with_former_numpy_encoder():
    # today's thresholds (counter-based streams) against the former np.random path, over
    # 8 seeds each: the means agree within 4 standard errors of the difference
    net, x = net_and_data(8, bias=True)
    new = np.array([balance(net, x, "spike", steps=30, rng=s).lambdas for s in range(8)])
    old = []
    for s in range(8):
        raw = []
        for k, i in enumerate(net.spiking_layers):
            cur, _ = if_forward(net, x, raw + [1.0] * (2 - k), steps=30, rng=100 + s,
                                stop_at=i)
            raw.append(cur)
        old.append(raw)
    old = np.array(old)
    se = np.sqrt(new.var(axis=0, ddof=1) / 8 + old.var(axis=0, ddof=1) / 8)
    assert np.all(np.abs(new.mean(axis=0) - old.mean(axis=0)) <= 4 * se + 1e-6 * old.mean(0))


def test_spike_balance_poisson_encoder():
    net, x = net_and_data(9)
    r = balance(net, np.abs(x), "spike", steps=20, encoder="poisson", rng=1)
    assert (r.lambdas > 0).all() and r.params["encoder"] == "poisson"
    with pytest.raises(ValueError, match="encoder"):
        balance(net, x, "spike", encoder="rate")
    with pytest.raises(ValueError, match="reset"):
        balance(net, x, "spike", reset="zero")
