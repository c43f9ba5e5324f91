"""The spiking simulator against a slow step-by-step loop, identities, determinism, errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from l4theory.convert import _kernels as K
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU, conv2d
from l4theory.convert.simulate import encode_steps, simulate
from validation.reference import if_forward, snn_step_reference

ROOT = Path(__file__).resolve().parents[2]


def dyadic(rng, shape, scale=8, lo=-4, hi=5):
    """Weights k/scale with small integers k: every sum of a few of them is exact in fp32."""
    return (rng.integers(lo, hi, size=shape) / scale).astype(np.float32)


def conv_net(seed=0, bias=True):
    rng = np.random.default_rng(seed)
    return Network((2, 8, 8), [
        Conv2d(dyadic(rng, (4, 2, 3, 3)), dyadic(rng, 4, 16) if bias else None, padding=1,
               name="c1"),
        ReLU(), AvgPool2d(2),
        Conv2d(dyadic(rng, (5, 4, 3, 3)), None, padding=(1, 0, 0, 1), stride=1, name="c2"),
        ReLU(), Flatten(),
        Linear(dyadic(rng, (6, 45)), dyadic(rng, 6, 16) if bias else None, name="h"),
        ReLU(),
        Linear(dyadic(rng, (3, 6)), dyadic(rng, 3, 16) if bias else None, name="out"),
    ])


def reference(net, x, thresholds, steps, alpha=1.0, reset="soft", encoder="signed", seed=0,
              readout="membrane", readout_threshold=1.0):
    """Slow straightforward time loop: NCHW layers from network.py, float32 state."""
    spiking = net.spiking_layers
    last = net.weight_layers[-1]
    thr = dict(zip(spiking, thresholds, strict=True))
    if readout == "spikes":
        thr[last] = readout_threshold
    a = np.float32(alpha)
    v = {i: None for i in thr}
    counts = {i: 0 for i in thr}
    acc = np.zeros((len(x), net.output_shape[0]))
    preds = []
    ids = np.arange(len(x))
    def fire(i, cur):
        vv = v[i] if v[i] is not None else np.zeros_like(cur)
        xx = a * vv + cur
        spk = xx >= np.float32(thr[i])
        v[i] = np.where(spk, np.float32(0) if reset == "hard" else xx - np.float32(thr[i]), xx)
        counts[i] = counts[i] + spk.astype(np.float32)
        return spk.astype(np.float32)

    for t in range(steps):
        h = encode_steps(x, encoder, seed, ids, t, 1)[0].reshape(x.shape)
        pending = None
        for i, lay in enumerate(net.layers):
            if lay.kind in ("conv2d", "linear"):
                h = lay(h).astype(np.float32)
                if i == last:
                    if readout == "spikes":
                        h = fire(i, h)
                    break
                pending = i if i in thr else None
            elif lay.kind == "relu":
                if pending is not None:
                    h = fire(pending, h)
                    pending = None
            else:
                h = lay(h).astype(np.float32)
        acc = acc + h.reshape(len(x), -1)
        preds.append(acc.argmax(axis=1))
    return np.array(preds), acc, counts


@pytest.mark.parametrize("alpha,reset,encoder", [
    (1.0, "soft", "signed"), (1.0, "hard", "signed"), (0.75, "soft", "bernoulli"),
    (0.9, "hard", "signed"), (0.93, "soft", "poisson"), (1.0, "soft", "constant"),
])
def test_matches_slow_loop_exactly(alpha, reset, encoder):
    net = conv_net(1)
    rng = np.random.default_rng(2)
    x = rng.uniform(0 if encoder in ("poisson", "bernoulli") else -1, 1, size=(9, 2, 8, 8)).astype(np.float32)
    if encoder == "constant":
        x = (np.round(x * 8) / 8).astype(np.float32)
    th = [1.5, 1.25, 0.75]
    res = simulate(net, x, thresholds=th, steps=13, alpha=alpha, reset=reset, encoder=encoder,
                   seed=5, batch_size=4, block_steps=3, record_counts=(0, 3, 6))
    preds, acc, counts = reference(net, x, th, 13, alpha, reset, encoder, seed=5)
    assert (res.spike_rates > 0.01).all()  # every layer spikes: the comparison is not vacuous
    np.testing.assert_array_equal(res.readout, acc)
    np.testing.assert_array_equal(res.predictions, preds)
    for i in (0, 3, 6):
        np.testing.assert_array_equal(res.counts[i], counts[i])
        size = counts[i][0].size
        k = res.layers.index(i)
        assert res.spike_rates[k] == pytest.approx(counts[i].sum() / (9 * 13 * size))


def test_spike_readout_matches_slow_loop():
    net = conv_net(3, bias=False)
    x = np.random.default_rng(4).uniform(-1, 1, size=(6, 2, 8, 8)).astype(np.float32)
    th = [1.0, 0.75, 0.5]
    res = simulate(net, x, thresholds=th, steps=9, readout="spikes", readout_threshold=0.5,
                   seed=1, block_steps=4)
    preds, acc, _ = reference(net, x, th, 9, readout="spikes", readout_threshold=0.5, seed=1)
    np.testing.assert_array_equal(res.readout, acc)
    np.testing.assert_array_equal(res.predictions, preds)


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_matches_balance_if_forward_with_constant_input(reset):
    # constant dyadic input: currents and float64/float32 states are exact in both codes
    net = conv_net(6)
    x = np.round(np.random.default_rng(7).uniform(-1, 1, (5, 2, 8, 8)) * 4) / 4
    th = [2.0, 1.5, 1.0]
    ref, _ = if_forward(net, x, th, steps=11, encoder="constant", reset=reset)
    res = simulate(net, x, thresholds=th, steps=11, encoder="constant", reset=reset)
    np.testing.assert_array_equal(res.readout / 11, ref)


def test_soft_reset_counts_are_floor_of_total_input():
    # one layer, no leak, soft reset, per-step currents in [0, v_th): count = floor(sum I / v_th)
    rng = np.random.default_rng(8)
    w = (rng.integers(0, 4, size=(20, 30)) / 64).astype(np.float32)  # row sums < 30*3/64 < 1.5
    net = Network((30,), [Linear(w, name="l"), ReLU(), Linear(np.ones((2, 20), np.float32))])
    x = rng.uniform(0, 1, size=(17, 30)).astype(np.float32)
    v_th = 1.5
    assert (w.sum(axis=1) < v_th).all()
    res = simulate(net, x, thresholds=[v_th], steps=40, encoder="bernoulli", seed=3,
                   record_counts=(0,), batch_size=5, block_steps=7)
    spikes = encode_steps(x, "bernoulli", 3, np.arange(17), 0, 40)
    total = (spikes.astype(np.float64) @ w.T.astype(np.float64)).sum(axis=0)  # (17, 20)
    np.testing.assert_array_equal(res.counts[0], np.floor(total / v_th))
    assert res.counts[0].max() > 3  # not vacuous


def test_independent_of_batch_size_and_block_length():
    net = conv_net(9)
    x = np.random.default_rng(10).uniform(-1, 1, (11, 2, 8, 8)).astype(np.float32)
    kw = dict(thresholds=[1.0, 1.0, 1.0], steps=17, alpha=0.97, reset="hard", seed=4)
    a = simulate(net, x, batch_size=11, **kw)
    b = simulate(net, x, batch_size=3, block_steps=5, **kw)
    c = simulate(net, x[4:9], batch_size=2, block_steps=17, sample_ids=np.arange(4, 9), **kw)
    np.testing.assert_array_equal(a.readout, b.readout)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.readout[4:9], c.readout)


_SCRIPT = """
import json, sys, numpy as np
from l4theory.convert.io import load_network
from l4theory.convert.simulate import simulate
net = load_network(sys.argv[1])
x = np.random.default_rng(0).uniform(-1, 1, (24, 1, 28, 28)).astype(np.float32)
r = simulate(net, x, thresholds=[8.0], steps=20, alpha=0.95, seed=11, batch_size=24)
vgg = load_network(sys.argv[2])  # event-driven convolutions, Numba pooling
xv = x[:6].reshape(6, 1, 28, 28)
q = simulate(vgg, xv, thresholds=[0.5, 0.5, 0.5, 0.5], steps=8, seed=3)
print(json.dumps({"readout": r.readout.tolist(), "rates": r.spike_rates.tolist(),
                  "vgg": q.readout.tolist(), "vgg_rates": q.spike_rates.tolist()}))
"""


@pytest.mark.slow
def test_bit_identical_across_thread_counts():
    outs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        p = subprocess.run([sys.executable, "-c", _SCRIPT,
                            str(ROOT / "models" / "fmnist_mlp.safetensors"),
                            str(ROOT / "models" / "fmnist_vgg5.safetensors")],
                           capture_output=True, text=True, env=env, check=True, cwd=ROOT)
        outs.append(json.loads(p.stdout))
    assert outs[0] == outs[1]
    assert 0 < outs[0]["rates"][0] < 1
    assert all(0 < r < 1 for r in outs[0]["vgg_rates"])


needs_jit = pytest.mark.skipif(K.DISABLED, reason="compares the compiled kernel with its twin")


@needs_jit
def test_encoder_kernel_equals_numpy_twin():
    rng = np.random.default_rng(11)
    x = rng.uniform(-1.2, 1.2, size=(5, 37)).astype(np.float32)
    samples = np.array([0, 3, 7, 2**40, 9], dtype=np.uint64)
    for enc, code in K.ENCODER_CODES.items():
        xe = np.abs(x) * 3 if enc == "poisson" else x
        a = np.empty((4, 5, 37), np.float32)
        b = np.empty((4, 5, 37), np.float32)
        K.encode_block(xe, a, np.uint64(123), samples, 6, code)
        K.encode_block_numpy(xe, b, np.uint64(123), samples, 6, code)
        np.testing.assert_array_equal(a, b)


@needs_jit
def test_if_kernel_equals_numpy_twin():
    rng = np.random.default_rng(12)
    for hard, rathi in ((False, False), (True, False), (False, True), (True, True)):
        cur = rng.normal(0.2, 0.6, size=(7, 10000)).astype(np.float32)
        v1, c1 = np.zeros(10000, np.float32), np.zeros(10000, np.float32)
        v2, c2 = v1.copy(), c1.copy()
        for _ in range(2):
            s1, s2 = cur.copy(), cur.copy()  # in place: the currents become the spikes
            K.if_scan(s1, v1, c1, np.float32(0.7), np.float32(0.93), hard, rathi)
            K.if_scan_numpy(s2, v2, c2, np.float32(0.7), np.float32(0.93), hard, rathi)
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(c1, c2)


@pytest.mark.statistical
def test_encoders_mean_rates():
    # 2000 steps x 200 samples per pixel value; tolerance 5 standard errors
    x = np.array([[-1.0, -0.6, -0.1, 0.0, 0.3, 0.8, 1.0, 1.4]], np.float32)
    xs = np.repeat(x, 200, axis=0)
    n = 200 * 2000
    for enc in ("signed", "bernoulli", "poisson", "constant"):
        xe = np.abs(xs) if enc == "poisson" else xs
        s = encode_steps(xe, enc, 99, np.arange(200), 0, 2000).astype(np.float64)
        mean = s.mean(axis=(0, 1))
        var = s.var(axis=(0, 1))
        p = np.abs(xe[0])
        if enc == "signed":
            q = np.minimum(p, 1)
            exp_mean, exp_var = np.sign(xe[0]) * q, q * (1 - q)
        elif enc == "bernoulli":
            q = np.clip(xe[0], 0, 1)
            exp_mean, exp_var = q, q * (1 - q)
        elif enc == "poisson":
            exp_mean, exp_var = p, p
        else:
            exp_mean, exp_var = xe[0], 0 * p
        se = np.sqrt(np.maximum(exp_var, 1e-12) / n)
        assert np.all(np.abs(mean - exp_mean) <= 5 * se + 1e-12), (enc, mean, exp_mean)
        if enc == "poisson":
            np.testing.assert_allclose(var, exp_var, rtol=0.02, atol=1e-3)


def test_leak_decays_constant_input_membrane():
    # threshold disabled (inf): readout of a single IF->linear chain equals the closed form
    w = np.array([[0.5]], np.float32)
    net = Network((1,), [Linear(w), ReLU(), Linear(np.ones((1, 1), np.float32))])
    res = simulate(net, np.array([[1.0]], np.float32), thresholds=[np.inf], steps=5,
                   encoder="constant", record_counts=(0,))
    assert res.counts[0].sum() == 0 and res.spike_rates[0] == 0


def test_errors():
    net = conv_net(0)
    x = np.zeros((2, 2, 8, 8), np.float32)
    ok = dict(thresholds=[1, 1, 1], steps=3)
    bad = [
        (dict(thresholds=[1, 1]), "thresholds"), (dict(thresholds=[1, -1, 1]), "thresholds"),
        (dict(thresholds=[1, np.nan, 1]), "thresholds"), (dict(steps=0), "steps"),
        (dict(alpha=1.5), "alpha"), (dict(alpha=0.0), "alpha"), (dict(reset="zero"), "reset"),
        (dict(encoder="rate"), "encoder"), (dict(readout="max"), "readout"),
        (dict(batch_size=0), "batch_size"), (dict(seed=-1), "seed"),
        (dict(sample_ids=[0]), "sample_ids"), (dict(record_counts=(1,)), "record_counts"),
        (dict(bias_scales=[1, 1]), "bias_scales"), (dict(memory_mb=0), "memory_mb"),
    ]
    for kw, word in bad:
        with pytest.raises(ValueError, match=word):
            simulate(net, x, **{**ok, **kw})
    with pytest.raises(ValueError, match="uint8"):
        simulate(net, x.astype(np.uint8), **ok)
    with pytest.raises(ValueError, match="shape"):
        simulate(net, np.zeros((2, 3, 8, 8)), **ok)
    with pytest.raises(ValueError, match="NaN"):
        simulate(net, np.full((1, 2, 8, 8), np.nan), **ok)
    with pytest.raises(ValueError, match="poisson"):
        simulate(net, x - 1, encoder="poisson", **ok)
    with pytest.raises(ValueError, match="labels"):
        simulate(net, x, np.array([0, 3]), **ok)
    relu_last = Network((3,), [Linear(np.ones((2, 3))), ReLU()])
    with pytest.raises(ValueError, match="readout"):
        simulate(relu_last, np.zeros((1, 3)), thresholds=[1.0], steps=2)
    with pytest.raises(ValueError, match="Network"):
        simulate("net", x, **ok)


def test_torch_backend_matches_numpy_backend():
    pytest.importorskip("torch")
    net = conv_net(13)
    x = np.random.default_rng(14).uniform(-1, 1, (5, 2, 8, 8)).astype(np.float32)
    kw = dict(thresholds=[1.25, 1.0, 0.75], steps=9, alpha=0.9, seed=2)
    a = simulate(net, x, **kw)
    b = simulate(net, x, backend="torch", **kw)
    np.testing.assert_array_equal(a.readout, b.readout)  # dyadic weights: order-independent
    with pytest.raises(ValueError, match="backend"):
        simulate(net, x, backend="cuda", **kw)


# --------------------------------------------------------------------------- semantics


def _chain(n_layers=2, w=1.0):
    """Scalar chain input -> IF -> ... -> IF -> readout, every weight ``w``."""
    one = np.full((1, 1), w, np.float32)
    layers = []
    for _ in range(n_layers):
        layers += [Linear(one.copy()), ReLU()]
    return Network((1,), layers + [Linear(np.ones((1, 1), np.float32))])


@pytest.mark.parametrize("semantics", ["project", "rathi"])
@pytest.mark.parametrize("alpha,reset,encoder", [
    (1.0, "soft", "signed"), (1.0, "hard", "signed"), (0.75, "soft", "bernoulli"),
    (0.875, "hard", "constant"), (0.9, "soft", "signed"),
])
def test_semantics_match_step_reference(semantics, alpha, reset, encoder):
    net = conv_net(21)
    rng = np.random.default_rng(22)
    x = rng.uniform(0 if encoder == "bernoulli" else -1, 1, (7, 2, 8, 8)).astype(np.float32)
    if encoder == "constant":
        x = (np.round(x * 8) / 8).astype(np.float32)
    th = [1.25, 1.0, 0.75]
    res = simulate(net, x, thresholds=th, steps=12, alpha=alpha, reset=reset, encoder=encoder,
                   semantics=semantics, seed=3, batch_size=3, block_steps=5,
                   record_counts=(0, 3, 6))
    spikes = encode_steps(x, encoder, 3, np.arange(7), 0, 12).reshape(12, *x.shape)
    acc, counts = snn_step_reference(net, spikes, th, alpha=alpha, reset=reset,
                                     semantics=semantics)
    assert (res.spike_rates > 0.01).all()  # not vacuous
    assert res.params["semantics"] == semantics
    np.testing.assert_array_equal(res.readout, acc[-1])
    np.testing.assert_array_equal(res.predictions, acc.argmax(axis=2))
    for i in (0, 3, 6):
        np.testing.assert_array_equal(res.counts[i], counts[i])


@pytest.mark.parametrize("semantics", ["project", "rathi"])
def test_semantics_spike_readout_match_step_reference(semantics):
    net = conv_net(23, bias=False)
    x = np.random.default_rng(24).uniform(-1, 1, (5, 2, 8, 8)).astype(np.float32)
    th = [1.0, 0.75, 0.5]
    res = simulate(net, x, thresholds=th, steps=10, readout="spikes", readout_threshold=0.5,
                   semantics=semantics, reset="hard", alpha=0.75, seed=2, block_steps=4)
    spikes = encode_steps(x, "signed", 2, np.arange(5), 0, 10).reshape(10, *x.shape)
    acc, _ = snn_step_reference(net, spikes, th, semantics=semantics, reset="hard", alpha=0.75,
                                readout="spikes", readout_threshold=0.5)
    np.testing.assert_array_equal(res.readout, acc[-1])


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_rathi_adds_one_step_of_delay_per_layer(reset):
    # constant current 1 into threshold 0.5: project fires from step 0 in every layer; under
    # rathi layer l (1-based) first fires at step l, so the readout misses 2 steps (2 layers)
    net = _chain(2)
    x = np.ones((1, 1), np.float32)
    for sem, missed in (("project", 0), ("rathi", 2)):
        r = simulate(net, x, thresholds=[0.5, 0.5], steps=9, encoder="constant", reset=reset,
                     semantics=sem, record_counts=(0, 2))
        assert r.readout[0, 0] == 9 - missed
        assert r.counts[0][0, 0] == 9 - missed // 2 and r.counts[2][0, 0] == 9 - missed
        np.testing.assert_array_equal(r.predictions[:, 0], 0)


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_rathi_compares_strictly(reset):
    # current exactly v_th, no leak: project (>=) fires every step; rathi (>) needs V > 1,
    # i.e. from step 2 on for soft (V stays 2 after the first reset: T - 2 spikes) and every
    # other step for hard (V: 1, 2, 1, 2, ...: fires at t = 2, 4, ...)
    net = _chain(1)
    x = np.ones((1, 1), np.float32)
    expect = {("project", "soft"): 10, ("project", "hard"): 10,
              ("rathi", "soft"): 8, ("rathi", "hard"): 4}
    for sem in ("project", "rathi"):
        r = simulate(net, x, thresholds=[1.0], steps=10, encoder="constant", reset=reset,
                     semantics=sem, record_counts=(0,))
        assert r.counts[0][0, 0] == expect[sem, reset]


def _scalar_loop(cur, th, alpha, steps, rule):
    """One neuron, Python floats (exact here: dyadic values), ``rule`` gives (v, s)."""
    v, spikes = 0.0, []
    for _ in range(steps):
        v, s = rule(v, cur, th, alpha)
        spikes.append(s)
    return np.array(spikes)


def test_rathi_reset_is_not_leaked():
    # soft: rathi V[t] = a V[t-1] + I - th s[t] with s[t] = V[t-1] > th; a leaked reset,
    # V[t] = a (V[t-1] - th s[t]) + I, gives other spikes: the test can tell them apart
    cur, th, alpha, steps = 0.75, 1.0, 0.5, 40
    def rathi(v, i, th, a):
        s = float(v > th)
        return a * v + i - th * s, s

    def leaked(v, i, th, a):
        s = float(v > th)
        return a * (v - th * s) + i, s

    want = _scalar_loop(cur, th, alpha, steps, rathi)
    other = _scalar_loop(cur, th, alpha, steps, leaked)
    assert want.sum() > 3 and (want != other).any()
    net = _chain(1)
    r = simulate(net, np.full((1, 1), cur, np.float32), thresholds=[th], steps=steps,
                 alpha=alpha, encoder="constant", semantics="rathi", record_counts=(0,))
    assert r.counts[0][0, 0] == want.sum()


def test_rathi_hard_reset_definition():
    # hard: V[t] = (1 - s[t]) a V[t-1] + I; I = 0.75, a = 1, th = 1: V = .75, 1.5, .75, ...
    net = _chain(1)
    r = simulate(net, np.full((1, 1), 0.75, np.float32), thresholds=[1.0], steps=10,
                 encoder="constant", reset="hard", semantics="rathi", record_counts=(0,))
    assert r.counts[0][0, 0] == 4  # t = 2, 4, 6, 8
    p = simulate(net, np.full((1, 1), 0.75, np.float32), thresholds=[1.0], steps=10,
                 encoder="constant", reset="hard", record_counts=(0,))
    assert p.counts[0][0, 0] == 5  # project: t = 1, 3, 5, 7, 9


def test_semantics_differ_and_errors():
    net = conv_net(25)
    x = np.random.default_rng(26).uniform(-1, 1, (6, 2, 8, 8)).astype(np.float32)
    kw = dict(thresholds=[1.0, 0.75, 0.5], steps=15, seed=1, alpha=0.9)
    a = simulate(net, x, **kw)
    b = simulate(net, x, semantics="rathi", **kw)
    assert a.params["semantics"] == "project" and b.params["semantics"] == "rathi"
    assert not np.array_equal(a.readout, b.readout)
    with pytest.raises(ValueError, match="semantics"):
        simulate(net, x, semantics="snntorch", **kw)


# --------------------------------------------------------------------------- event conv


def _event_inputs(rng, shape):
    """Spikes, pooled spikes (k/4) and signed spikes: the inputs the event path sees."""
    s = (rng.random(shape) < 0.2).astype(np.float32)
    pooled = (rng.integers(0, 5, shape) * (rng.random(shape) < 0.4) / 4).astype(np.float32)
    signed = (np.sign(rng.normal(size=shape)) * (rng.random(shape) < 0.5)).astype(np.float32)
    return [s, pooled, signed]


@pytest.mark.parametrize("stride,pads", [((1, 1), (1, 1, 1, 1)), ((2, 1), (1, 0, 0, 2)),
                                         ((1, 2), (0, 0, 0, 0))])
def test_event_conv_equals_slow_reference_bit_for_bit(stride, pads):
    # general (non-dyadic) weights: the same float32 summation order gives the same bits
    from validation.reference import conv_events_reference

    rng = np.random.default_rng(30)
    w = rng.normal(size=(6, 5, 3, 2)).astype(np.float32)
    b = rng.normal(size=6).astype(np.float32)
    wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    for x in _event_inputs(rng, (4, 5, 7, 6)):
        ref = conv_events_reference(x, w, b, stride, pads)
        out = np.empty((4, *ref.shape[2:], 6), np.float32)
        fn = K.conv_events_numpy if K.DISABLED else K.conv_events
        fn(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), wt, b, stride, pads[:2], out)
        np.testing.assert_array_equal(out.transpose(0, 3, 1, 2), ref)
        dense = conv2d(x, w, b, stride, pads)  # BLAS order: equal to fp32 rounding
        np.testing.assert_allclose(out.transpose(0, 3, 1, 2), dense, rtol=1e-5, atol=1e-5)


@needs_jit
@pytest.mark.parametrize("cin,k,stride,pads", [(1, 3, (1, 1), (1, 1)), (3, 3, (1, 1), (1, 1)),
                                               (2, 3, (2, 1), (0, 2)), (3, 3, (1, 2), (0, 0)),
                                               (16, 1, (1, 1), (0, 0)), (1, 5, (2, 2), (2, 1))])
def test_tap_conv_equals_event_conv_and_numpy_twin(cin, k, stride, pads):
    # conv_taps adds every tap (zeros and padding too) in the event order: same values
    rng = np.random.default_rng(34)
    w = rng.normal(size=(20, cin, k, k)).astype(np.float32)
    wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    for bias in (np.zeros(0, np.float32), rng.normal(size=20).astype(np.float32)):
        for x in _event_inputs(rng, (5, 9, 11, cin)):
            ho = (9 + 2 * pads[0] - k) // stride[0] + 1
            wo = (11 + 2 * pads[1] - k) // stride[1] + 1
            a, b, c = (np.empty((5, ho, wo, 20), np.float32) for _ in range(3))
            K.conv_taps(x, wt, bias, stride, pads, a)
            K.conv_events(x, wt, bias, stride, pads, b)
            K.conv_events_numpy(x, wt, bias, stride, pads, c)
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)


@needs_jit
def test_event_conv_kernel_equals_numpy_twin():
    rng = np.random.default_rng(31)
    w = rng.normal(size=(33, 17, 3, 3)).astype(np.float32)
    wt = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    for x in _event_inputs(rng, (9, 11, 10, 17)):
        a = np.empty((9, 11, 10, 33), np.float32)
        b = np.empty_like(a)
        K.conv_events(x, wt, np.zeros(0, np.float32), (1, 1), (1, 1), a)
        K.conv_events_numpy(x, wt, np.zeros(0, np.float32), (1, 1), (1, 1), b)
        np.testing.assert_array_equal(a, b)


def test_identical_spikes_to_event_order_reference_with_general_weights():
    # non-dyadic weights: spikes equal the slow loop's whose convolutions sum in the
    # event order; the (BLAS) readout agrees to float32 rounding
    from validation.reference import conv_events_reference

    rng = np.random.default_rng(32)
    net = Network((2, 8, 8), [
        Conv2d(rng.normal(0, 0.5, (6, 2, 3, 3)), rng.normal(0, 0.1, 6), padding=1),
        ReLU(), AvgPool2d(2),
        Conv2d(rng.normal(0, 0.4, (5, 6, 3, 3)), None, padding=1), ReLU(), Flatten(),
        Linear(rng.normal(0, 0.3, (4, 80)), rng.normal(0, 0.1, 4)),
    ])
    x = rng.uniform(-1, 1, (6, 2, 8, 8)).astype(np.float32)
    th = [0.6, 0.4]
    for sem in ("project", "rathi"):
        for reset in ("soft", "hard"):
            res = simulate(net, x, thresholds=th, steps=14, alpha=0.9, reset=reset,
                           semantics=sem, seed=4, block_steps=5, record_counts=(0, 3))
            spikes = encode_steps(x, "signed", 4, np.arange(6), 0, 14).reshape(14, *x.shape)
            acc, counts = snn_step_reference(net, spikes, th, alpha=0.9, reset=reset,
                                             semantics=sem, conv=conv_events_reference)
            assert (res.spike_rates > 0.02).all()
            for i in (0, 3):
                np.testing.assert_array_equal(res.counts[i], counts[i])
            np.testing.assert_allclose(res.readout, acc[-1], rtol=1e-5, atol=1e-5)
            assert (res.readout.argmax(1) == acc[-1].argmax(1)).all()


@needs_jit
def test_pool_kernel_equals_numpy_order():
    rng = np.random.default_rng(33)
    h = rng.normal(size=(5, 9, 8, 7)).astype(np.float32)
    for kernel, stride in (((2, 2), (2, 2)), ((3, 2), (2, 1))):
        kh, kw = kernel
        ho, wo = (9 - kh) // stride[0] + 1, (8 - kw) // stride[1] + 1
        want = None
        for i in range(kh):
            for j in range(kw):
                part = h[:, i:i + stride[0] * (ho - 1) + 1:stride[0],
                         j:j + stride[1] * (wo - 1) + 1:stride[1]]
                want = part.copy() if want is None else want + part
        want /= np.float32(kh * kw)
        out = np.empty((5, ho, wo, 7), np.float32)
        K.avgpool_nhwc(h, kh, kw, stride[0], stride[1], out)
        np.testing.assert_array_equal(out, want)
