"""The inference benchmark harness on a tiny network: engines agree (never timed)."""

import numpy as np
import pytest

from benchmarks import brian2_binary, floors, snn
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU
from l4theory.convert.simulate import encode_steps, simulate


@pytest.fixture
def torch():
    """PyTorch for the engine tests only (the `bench` extra); the floor and Brian2 checks
    run without it."""
    return pytest.importorskip("torch")


def tiny(seed=0, batch=6):
    """Conv 1->4 (pad 1), IF, avgpool 2, flatten, fc 64->8, IF, fc 8->3; signed inputs."""
    rng = np.random.default_rng(seed)
    layers = [Conv2d(rng.standard_normal((4, 1, 3, 3)).astype(np.float32) * 0.6, padding=1,
                     name="c1"), ReLU(), AvgPool2d(2), Flatten(),
              Linear(rng.standard_normal((8, 64)).astype(np.float32) * 0.4,
                     bias=rng.standard_normal(8).astype(np.float32) * 0.1, name="f1"), ReLU(),
              Linear(rng.standard_normal((3, 8)).astype(np.float32), name="f2")]
    net = Network((1, 8, 8), layers, name="tiny")
    x = rng.uniform(-1, 1, (batch, 1, 8, 8)).astype(np.float32)
    return net, x


def test_torch_loop_matches_simulate_on_the_same_spikes(torch):
    net, x = tiny()
    th, steps = [0.8, 0.5], 12
    spikes = encode_steps(x, "signed", 3, np.arange(len(x)), 0, steps).reshape(
        steps, len(x), *net.input_shape)
    ours = simulate(net, x, thresholds=th, steps=steps, encoder="signed", seed=3,
                    record_counts=net.spiking_layers)
    ro, st = snn.torch_loop(net, x, th, steps, spikes=spikes, record=True)
    assert np.array_equal(ro.argmax(1), ours.readout.argmax(1))
    np.testing.assert_allclose(ro, ours.readout, rtol=1e-5, atol=1e-5)
    for i, c in zip(net.spiking_layers, st["counts"], strict=True):
        assert np.array_equal(c, ours.counts[i])
    assert sum(st["counts"][0].ravel()) > 0  # the layers do fire
    # non-zero inputs of the first layer = non-zero input spikes
    assert st["nnz_in"][0] == int(np.count_nonzero(spikes))


def test_floors_counts():
    net, _ = tiny()
    assert floors.dense_macs(net) == [4 * 9 * 64, 8 * 64, 3 * 8]
    assert [floors.fan_out(net.layers[i]) for i in net.weight_layers] == [36.0, 8.0, 3.0]
    m = floors.machine()
    assert m["cores"] >= 1 and isinstance(m["isa"], list)


def test_compare_runs_and_engines_agree(torch):
    from benchmarks.inference import compare

    net, x = tiny(1)
    labels = np.arange(len(x)) % 3
    res = compare("tiny", net, x, labels, [0.8, 0.5], "signed", [6], rounds=1, seed=2)
    r = res["by_T"]["6"]
    expected = {"l4theory_default", "l4theory_torch_backend", "pytorch_time_loop"}
    assert expected <= set(r["ms_per_image"])
    for name, a in r["agreement"].items():
        assert a["argmax_agreement"] == 1.0, name
        assert all(c["identical_frac"] == 1.0 for c in a["spike_counts"]), name
    assert r["dense_floor_ms"] > 0 and r["event_floor_ms"] > 0
    assert len(r["synaptic_events_per_image"]) == 3


def test_spikingjelly_matches_on_the_same_spikes(torch):
    if snn.sj_available() is None:
        pytest.skip("spikingjelly not installed")
    net, x = tiny(2)
    th, steps = [0.7, 0.6], 10
    model, native = snn.sj_model(net, th, x)
    assert len(native) == 2 and all(t > 0 for t in native)
    spikes = encode_steps(x, "signed", 5, np.arange(len(x)), 0, steps).reshape(
        steps, len(x), *net.input_shape)
    ro, counts = snn.sj_run(model, torch.from_numpy(spikes), record=True)
    ref, st = snn.torch_loop(net, x, th, steps, spikes=spikes, record=True)
    assert np.array_equal(ro.argmax(1), ref.argmax(1))
    for a, b in zip(counts, st["counts"], strict=True):
        assert np.array_equal(a, b)


def test_brian2_binary_absent_case():
    assert brian2_binary.available("no_such_case") is None


def test_profile_stages_cover_the_run_and_leave_the_simulator_unchanged():
    from benchmarks.profile import profile
    from l4theory.convert import simulate as S

    rng = np.random.default_rng(2)
    layers = [Conv2d(rng.standard_normal((6, 1, 3, 3)).astype(np.float32), padding=1), ReLU(),
              Conv2d(rng.standard_normal((5, 6, 3, 3)).astype(np.float32) * 0.4, padding=1),
              ReLU(), Flatten(), Linear(rng.standard_normal((3, 320)).astype(np.float32))]
    net = Network((1, 8, 8), layers)
    x = rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32)
    before = (S._conv_events, S.linear_op, S._pool, S.encode_steps)
    out = profile(net, x, thresholds=[0.5, 0.5], steps=6, encoder="signed", rounds=2)
    assert (S._conv_events, S.linear_op, S._pool, S.encode_steps) == before
    stages = out["stages_s"]
    from l4theory.convert import _kernels as K

    if K.DISABLED:
        assert {"layer 0 conv_events_numpy 1->6", "layer 2 conv_events_numpy 6->5"} <= set(stages)
    else:
        assert {"layer 0 conv_taps 1->6", "layer 2 conv_events 6->5"} <= set(stages)
    assert "linear 320->3 (BLAS)" in stages and "if_scan (all layers)" in stages
    assert out["n_images"] == 4 and out["total_s"] > 0
    # with one timed run the stages, "other" included, add up to the total
    one = profile(net, x, thresholds=[0.5, 0.5], steps=6, encoder="signed", rounds=1)
    assert sum(one["stages_s"].values()) == pytest.approx(one["total_s"], rel=1e-9)
    assert one["stages_s"]["other"] < one["total_s"]
    with pytest.raises(ValueError, match="rounds"):
        profile(net, x, thresholds=[0.5, 0.5], steps=2, encoder="signed", rounds=0)
