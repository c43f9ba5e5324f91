"""Residual graphs and max pooling: the layer spec, I/O, balancing and the spiking simulator
against the slow step-by-step reference."""

import numpy as np
import pytest

from l4theory.convert import _kernels as K
from l4theory.convert import _plan
from l4theory.convert.balance import balance
from l4theory.convert.graph import add_factors, spiking_units, weight_sources
from l4theory.convert.io import load_network, save_network
from l4theory.convert.network import (
    Add,
    AvgPool2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Network,
    ReLU,
    maxpool2d,
)
from l4theory.convert.simulate import encode_steps, simulate
from validation.reference import _maxpool_ref, conv_events_reference, snn_step_reference


def res_net(seed=0, bias=True):
    """Stem, identity block, projection block (stride 2), max pool, linear readout."""
    rng = np.random.default_rng(seed)

    def conv(co, ci, k=3, s=1, p=1, name="c"):
        return Conv2d(rng.normal(0, 0.5, (co, ci, k, k)).astype(np.float32),
                      rng.normal(0, 0.1, co).astype(np.float32) if bias else None,
                      stride=s, padding=p, name=name)

    layers = [conv(4, 2, name="stem"), ReLU(),                          # 0, 1
              conv(4, 4, name="b1.c1"), ReLU(), conv(4, 4, name="b1.c2"),  # 2, 3, 4
              Add(name="b1.add"), ReLU(),                               # 5 = 4 + 1, 6
              conv(6, 4, s=2, name="b2.c1"), ReLU(), conv(6, 6, name="b2.c2"),  # 7, 8, 9
              conv(6, 4, k=1, s=2, p=0, name="b2.proj"),                # 10 <- 6
              Add(name="b2.add"), ReLU(),                               # 11 = 9 + 10, 12
              MaxPool2d(2), Flatten(),                                  # 13, 14
              Linear(rng.normal(0, 0.4, (3, 24)).astype(np.float32),
                     rng.normal(0, 0.1, 3).astype(np.float32) if bias else None, name="out")]
    inputs = [None] * len(layers)
    inputs[5], inputs[10], inputs[11] = (4, 1), (6,), (9, 10)
    return Network((2, 8, 8), layers, name="res", inputs=inputs)


def test_graph_structure_units_and_sources():
    net = res_net()
    assert not net.is_chain
    assert net.spiking_layers == [0, 2, 4, 7, 9]
    units = spiking_units(net)
    assert [(u.pre, u.relu) for u in units] == [(0, 1), (2, 3), (5, 6), (7, 8), (11, 12)]
    assert units[4].feeders == (9, 10)
    assert weight_sources(net) == {0: -1, 2: 0, 4: 1, 7: 2, 9: 3, 10: 2, 15: 4}
    factors, div = add_factors(net, [1.0, 2.0, 4.0, 0.5, 3.0])
    # units: stem 1, b1.c1 1/2, b1 add-IF (1/2)/4 = 1/8, b2.c1 1/4, b2.c2 branch 1/4
    assert factors[5] == (1.0, 0.5) and factors[11] == (1.0, 2.0)
    assert div[10] == 2.0 and div[9] == 1.0 and div[4] == 1.0
    chain = Network((3,), [Linear(np.ones((2, 3))), ReLU(), Linear(np.ones((1, 2)))])
    assert chain.is_chain and add_factors(chain, [1.0]) == ({}, {0: 1.0, 2: 1.0})


def test_forward_matches_hand_computation():
    net = res_net(1)
    x = np.random.default_rng(2).uniform(-1, 1, (3, 2, 8, 8)).astype(np.float32)
    L = net.layers
    a1 = np.maximum(L[0](x), 0)
    b1 = np.maximum(L[4](np.maximum(L[2](a1), 0)) + a1, 0)
    b2 = np.maximum(L[9](np.maximum(L[7](b1), 0)) + L[10](b1), 0)
    want = L[15](maxpool2d(b2, 2).reshape(3, -1))
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-6)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"inputs\[1\] \(add 'add'\) must be 2 index"):
        Network((3,), [Linear(np.ones((3, 3))), Add(), Linear(np.ones((1, 3)))])
    with pytest.raises(ValueError, match=r"inputs\[1\].*in \[-1, 0\]"):
        Network((3,), [Linear(np.ones((3, 3))), Linear(np.ones((3, 3)))], inputs=[None, (1,)])
    with pytest.raises(ValueError, match="adds inputs of different shapes"):
        Network((3,), [Linear(np.ones((2, 3))), Add()], inputs=[None, (0, -1)])


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".onnx"])
def test_graph_round_trips_through_every_format(tmp_path, suffix):
    pytest.importorskip("onnx") if suffix == ".onnx" else None
    net = res_net(3)
    path = save_network(net, tmp_path / f"res{suffix}")
    back = load_network(path)
    assert back.inputs == net.inputs
    assert [lay.kind for lay in back.layers] == [lay.kind for lay in net.layers]
    x = np.random.default_rng(4).uniform(-1, 1, (4, 2, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_spec_inputs_index_spec_layers_across_folded_batchnorm():
    from l4theory.convert.io.spec import network_from_spec

    t = {"w0": np.eye(3, dtype=np.float32), "m": np.zeros(3), "v": np.ones(3),
         "w1": np.eye(3, dtype=np.float32), "w2": np.ones((1, 3), np.float32)}
    spec = {"input_shape": [3], "version": 2, "layers": [
        {"type": "linear", "weight": "w0"},                                    # 0 -> 0
        {"type": "batchnorm", "running_mean": "m", "running_var": "v", "eps": 0.0},  # 1 -> 0
        {"type": "relu"},                                                      # 2 -> 1
        {"type": "linear", "weight": "w1"},                                    # 3 -> 2
        {"type": "add", "inputs": [3, 2]},                                     # 4 -> 3
        {"type": "relu"}, {"type": "linear", "weight": "w2"}]}
    net = network_from_spec(spec, t)
    assert net.inputs[3] == (2, 1)
    with pytest.raises(ValueError, match="an add layer needs 'inputs'"):
        network_from_spec({**spec, "layers": spec["layers"][:4] + [{"type": "add"}]}, t)
    with pytest.raises(ValueError, match="version 3"):
        network_from_spec({**spec, "version": 3}, t)


def test_maxpool_gate_equals_the_reference_on_random_spikes():
    rng = np.random.default_rng(5)
    tc, nb = 9, 3
    spk = (rng.random((tc, nb, 5, 6, 4)) < 0.4).astype(np.float32)
    counts = np.zeros(nb * 5 * 6 * 4, np.float32)
    out = np.empty((tc * nb, 2, 3, 4), np.float32)
    _plan.maxpool_gate(spk.reshape(tc * nb, 5, 6, 4), counts, (2, 2), (2, 2), tc, out)
    cnt = np.zeros((nb, 4, 5, 6), np.float32)
    for t in range(tc):
        s = spk[t].transpose(0, 3, 1, 2)
        want = _maxpool_ref(s, cnt, (2, 2), (2, 2))
        cnt = cnt + s
        np.testing.assert_array_equal(out.reshape(tc, nb, 2, 3, 4)[t], want.transpose(0, 2, 3, 1))
    # the output never outfires the window's leader; constant inputs give the ANN's max
    total = out.reshape(tc, nb, 2, 3, 4).sum(0)
    np.testing.assert_array_less(total - 1e-6, maxpool2d(cnt, 2).transpose(0, 2, 3, 1) + 1e-6)


def test_maxpool_on_currents_is_refused():
    net = Network((1, 4, 4), [Conv2d(np.ones((1, 1, 1, 1))), MaxPool2d(2), ReLU(), Flatten(),
                              Linear(np.ones((1, 4)))])
    with pytest.raises(ValueError, match="acts on input currents.*after the ReLU"):
        simulate(net, np.zeros((1, 1, 4, 4)), thresholds=[1.0], steps=2)


@pytest.mark.parametrize("semantics", ["project", "rathi"])
@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_residual_simulation_equals_step_reference_spike_for_spike(semantics, reset):
    net = res_net(6)
    x = np.random.default_rng(7).uniform(-1, 1, (5, 2, 8, 8)).astype(np.float32)
    th = [0.6, 0.5, 0.7, 0.4, 0.8]
    rec = (0, 2, 4, 7, 9)
    res = simulate(net, x, thresholds=th, steps=13, alpha=0.9, reset=reset, semantics=semantics,
                   seed=8, batch_size=2, block_steps=4, record_counts=rec)
    spikes = encode_steps(x, "signed", 8, np.arange(5), 0, 13).reshape(13, *x.shape)
    acc, counts = snn_step_reference(net, spikes, th, alpha=0.9, reset=reset,
                                     semantics=semantics, conv=conv_events_reference)
    assert (res.spike_rates > 0.02).all()  # not vacuous
    for i in rec:
        np.testing.assert_array_equal(res.counts[i], counts[i])
    np.testing.assert_allclose(res.readout, acc[-1], rtol=1e-5, atol=1e-5)


def test_residual_results_do_not_depend_on_batch_or_block():
    net = res_net(9)
    x = np.random.default_rng(10).uniform(-1, 1, (6, 2, 8, 8)).astype(np.float32)
    th = [0.5, 0.5, 0.6, 0.5, 0.7]
    a = simulate(net, x, thresholds=th, steps=11, seed=1, batch_size=6, block_steps=11)
    b = simulate(net, x, thresholds=th, steps=11, seed=1, batch_size=4, block_steps=3)
    np.testing.assert_array_equal(a.readout, b.readout)
    np.testing.assert_array_equal(a.predictions, b.predictions)


def test_residual_jit_equals_numpy_twins(monkeypatch):
    # the event-driven kernels and their NumPy twins give the same spikes on a graph
    if K.DISABLED:
        pytest.skip("compares the compiled kernels with their twins")
    net = res_net(11)
    x = np.random.default_rng(12).uniform(-1, 1, (4, 2, 8, 8)).astype(np.float32)
    th = [0.5, 0.6, 0.6, 0.5, 0.7]
    a = simulate(net, x, thresholds=th, steps=9, seed=2, block_steps=4, record_counts=(9,))
    monkeypatch.setattr(K, "DISABLED", True)
    monkeypatch.setattr(_plan.K, "DISABLED", True)
    b = simulate(net, x, thresholds=th, steps=9, seed=2, block_steps=4, record_counts=(9,))
    np.testing.assert_array_equal(a.readout, b.readout)
    np.testing.assert_array_equal(a.counts[9], b.counts[9])


def test_identity_shortcut_is_scaled_into_the_main_branch_units():
    # constant inputs, IF neurons: rates approach ANN activations / lambda through the block
    rng = np.random.default_rng(13)
    net = Network((4,), [Linear(np.abs(rng.normal(0.5, 0.1, (4, 4)))), ReLU(),
                         Linear(np.abs(rng.normal(0.3, 0.1, (4, 4)))), ReLU(),
                         Linear(np.abs(rng.normal(0.3, 0.1, (4, 4)))), Add(), ReLU(),
                         Linear(np.eye(4))],
                  inputs=[None, None, None, None, None, (4, 1), None, None])
    x = rng.uniform(0.2, 1.0, (3, 4)).astype(np.float32)
    bal = balance(net, x, "max")
    res = simulate(net, x, thresholds=bal.thresholds, steps=2000, encoder="constant",
                   readout_bias_scale=bal.readout_bias_scale, bias_scales=bal.bias_scales)
    outs = next(net.iter_layers(x))[1]
    want = outs[6] / bal.lambdas[2]  # the block's output rate
    np.testing.assert_allclose(res.readout / 2000, want, atol=3e-3)


@pytest.mark.parametrize("method", ["max", "percentile", "spike"])
def test_balancing_through_residual_blocks(method):
    net = res_net(14)
    x = np.random.default_rng(15).uniform(-1, 1, (20, 2, 8, 8)).astype(np.float32)
    bal = balance(net, x, method, steps=20, rng=3)
    assert bal.layers == (0, 2, 4, 7, 9) and (bal.thresholds > 0).all()
    if method == "max":
        outs = [np.concatenate(z) for z in zip(*(o for _, o in net.iter_layers(x)), strict=True)]
        lam = [outs[k].max() for k in (0, 2, 5, 7, 11)]  # adds give the pre-activation
        np.testing.assert_allclose(bal.lambdas, lam, rtol=1e-6)
        prev = [1.0, lam[0], lam[1], lam[2], lam[3]]
        np.testing.assert_allclose(bal.thresholds, np.divide(lam, prev), rtol=1e-6)
        assert bal.readout_bias_scale == pytest.approx(1 / lam[4])
    res = simulate(net, x[:4], thresholds=bal.thresholds, steps=10,
                   bias_scales=bal.bias_scales, readout_bias_scale=bal.readout_bias_scale)
    assert np.isfinite(res.readout).all()


def test_spiking_maxpool_after_avgpool_chain_and_ann_agree_in_the_limit():
    # a VGG-like chain with max pooling: with constant input and many steps the spiking
    # network's readout approaches the ANN's logits scaled by the balancing
    rng = np.random.default_rng(16)
    net = Network((1, 6, 6), [
        Conv2d(np.abs(rng.normal(0.3, 0.2, (3, 1, 3, 3))), padding=1), ReLU(), MaxPool2d(2),
        Conv2d(rng.normal(0.2, 0.2, (3, 3, 3, 3)), padding=1), ReLU(), AvgPool2d(3),
        Flatten(), Linear(rng.normal(0, 0.5, (2, 3)))])
    x = rng.uniform(0.1, 1, (2, 1, 6, 6)).astype(np.float32)
    bal = balance(net, x, "max")
    res = simulate(net, x, thresholds=bal.thresholds, steps=3000, encoder="constant",
                   readout_bias_scale=bal.readout_bias_scale)
    np.testing.assert_allclose(res.readout / 3000, net.forward(x) / bal.lambdas[-1], atol=0.02)


def test_written_graph_onnx_matches_the_onnx_reference_evaluator(tmp_path):
    pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    net = res_net(17)
    path = save_network(net, tmp_path / "res.onnx")
    x = np.random.default_rng(18).uniform(-1, 1, (3, 2, 8, 8)).astype(np.float32)
    ref = ReferenceEvaluator(str(path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-5)


def test_dense_layer_after_flatten_then_relu_reads_the_channels_last_layout():
    # conv -> flatten -> ReLU (the IF layer) -> linear: the simulator's flatten is (H, W, C)
    rng = np.random.default_rng(19)
    net = Network((2, 4, 4), [Conv2d(rng.normal(0, 0.5, (3, 2, 3, 3)), padding=1), Flatten(),
                              ReLU(), Linear(rng.normal(0, 0.5, (4, 48))), ReLU(),
                              Linear(rng.normal(0, 0.5, (2, 4)))])
    x = rng.uniform(-1, 1, (3, 2, 4, 4)).astype(np.float32)
    res = simulate(net, x, thresholds=[0.5, 0.5], steps=9, seed=1, record_counts=(0, 3))
    spikes = encode_steps(x, "signed", 1, np.arange(3), 0, 9).reshape(9, *x.shape)
    acc, counts = snn_step_reference(net, spikes, [0.5, 0.5], conv=conv_events_reference)
    assert res.spike_rates.min() > 0.02
    np.testing.assert_array_equal(res.counts[3], counts[3])
    np.testing.assert_allclose(res.readout, acc[-1], rtol=1e-5, atol=1e-5)
