"""The shipped trained networks: both formats agree and the accuracy matches provenance."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from l4theory.convert import datasets, io

MODELS = Path(__file__).resolve().parents[2] / "models"
NAMES = ["fmnist_mlp", "fmnist_vgg5", "fmnist_resnet"]


def prov(name):
    return json.loads((MODELS / f"{name}.json").read_text())


def test_shipped_files_small_and_hashes_match():
    total = 0
    for name in NAMES:
        rec = prov(name)
        for fname, info in rec["files"].items():
            blob = (MODELS / fname).read_bytes()
            assert hashlib.sha256(blob).hexdigest() == info["sha256"], fname
            total += len(blob)
    assert total < 8_000_000


@pytest.mark.parametrize("name", NAMES)
def test_safetensors_and_onnx_identical(name):
    a = io.load_network(MODELS / f"{name}.safetensors")
    b = io.load_network(MODELS / f"{name}.onnx")
    assert a.shapes == b.shapes
    assert [lay.kind for lay in a.layers] == [lay.kind for lay in b.layers]
    assert a.inputs == b.inputs
    assert [a.layers[i].name for i in a.weight_layers] == [b.layers[i].name for i in b.weight_layers]
    # batch norm is folded by l4theory (float64) in the safetensors file and by PyTorch's
    # exporter (float32) in the ONNX file: equal to float32 rounding there, exact elsewhere
    same = (np.testing.assert_array_equal if "n_parameters_folded" not in prov(name) else
            lambda u, v: np.testing.assert_allclose(u, v, rtol=2e-6, atol=1e-7))
    for i in a.weight_layers:
        la, lb = a.layers[i], b.layers[i]
        assert la.weight.dtype == lb.weight.dtype == np.float32
        same(la.weight, lb.weight)
        assert (la.bias is None) == (lb.bias is None)
        if la.bias is not None:
            same(la.bias, lb.bias)
        if la.kind == "conv2d":
            assert (la.stride, la.padding) == (lb.stride, lb.padding)
    rec = prov(name)
    assert a.n_parameters() == rec.get("n_parameters_folded", rec["n_parameters"])


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_numpy_accuracy_matches_provenance(name):
    try:
        te = datasets.load_fashion_mnist("test")
    except datasets.DatasetNotFoundError as exc:
        pytest.skip(str(exc))
    rec = prov(name)
    assert set(rec["data_files"]) == {p.name for p in te.files} | {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
    for p in te.files:  # the same data the model was evaluated on
        assert hashlib.sha256(p.read_bytes()).hexdigest() == rec["data_files"][p.name]
    net = io.load_network(MODELS / f"{name}.safetensors")
    acc = net.accuracy(datasets.normalize(te.images), te.labels, batch_size=500)
    assert abs(acc - rec["ann_test_accuracy"]) <= 0.001


def _test_images(n):
    try:
        te = datasets.load_fashion_mnist("test")
        tr = datasets.load_fashion_mnist("train")
    except datasets.DatasetNotFoundError as exc:
        pytest.skip(str(exc))
    return datasets.normalize(tr.images[:n]), datasets.normalize(te.images[:4]), te.labels[:4]


@pytest.mark.slow
def test_shipped_resnet_spikes_equal_the_step_reference():
    # the shipped residual network, balanced on 50 training images: the simulator's spike
    # counts in every IF layer equal the slow step-by-step loop's on 2 test images
    from l4theory.convert.balance import balance
    from l4theory.convert.simulate import encode_steps, simulate
    from validation.reference import conv_events_reference, snn_step_reference

    net = io.load_network(MODELS / "fmnist_resnet.safetensors")
    assert not net.is_chain and {lay.kind for lay in net.layers} >= {"add", "avgpool2d"}
    x_cal, x, _ = _test_images(50)
    x = x[:2]
    bal = balance(net, x_cal, "max")
    steps = 10
    res = simulate(net, x, thresholds=bal.thresholds, steps=steps, seed=5, block_steps=4,
                   record_counts=tuple(net.spiking_layers))
    spikes = encode_steps(x, "signed", 5, np.arange(2), 0, steps).reshape(steps, *x.shape)
    acc, counts = snn_step_reference(net, spikes, bal.thresholds, conv=conv_events_reference)
    assert min(float(c.mean()) for c in counts.values()) > 0.01  # every layer fires
    for i in net.spiking_layers:
        np.testing.assert_array_equal(res.counts[i], counts[i])
    np.testing.assert_allclose(res.readout, acc[-1], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_adjusted_resnet_loads_back_into_the_pytorch_module(tmp_path):
    torch = pytest.importorskip("torch")
    import sys

    from l4theory.cli import main
    from l4theory.convert import to_torch

    _test_images(1)
    out = tmp_path / "resnet_l4.safetensors"
    assert main(["adjust", str(MODELS / "fmnist_resnet.safetensors"), "--r-s", "1",
                 "--n-calib", "100", "-o", str(out)]) == 0
    adjusted = io.load_network(out)
    hist = adjusted.metadata["history"][-1]
    assert len(hist["thresholds"]) == len(adjusted.spiking_layers)
    sys.path.insert(0, str(MODELS))
    try:
        import train
    finally:
        sys.path.remove(str(MODELS))
    module, _ = train.build("fmnist_resnet")
    to_torch(adjusted, module.eval())
    _, x, _ = _test_images(1)
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    want = adjusted.forward(x)
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
    assert float(module.state_dict()["0.v_th"]) == pytest.approx(hist["thresholds"][0])
    # the original file's first layer differs: the adjustment really changed the weights
    first = adjusted.weight_layers[0]
    orig = io.load_network(MODELS / "fmnist_resnet.safetensors").layers[first].weight
    assert not np.array_equal(orig, adjusted.layers[first].weight)


FOLDS = sorted((MODELS / "folds").glob("fmnist_vgg5_fold*.json"))


def test_fold_networks_ship_with_their_fold():
    """Each cross-fitted network: hashes match, its fold is the recorded one, folds differ."""
    from l4theory.experiment.splits import folds

    assert FOLDS, "no cross-fitted networks in models/folds"
    seen = set()
    for path in FOLDS:
        rec = json.loads(path.read_text())
        for fname, info in rec["files"].items():
            blob = (path.parent / fname).read_bytes()
            assert hashlib.sha256(blob).hexdigest() == info["sha256"], fname
            assert len(blob) < 3_000_000
        idx = folds(60_000, rec["n_folds"], rec["fold_seed"])[rec["fold"]]
        assert hashlib.sha256(idx.tobytes()).hexdigest() == rec["fold_indices_sha256"]
        assert rec["n_train_used"] == 60_000 - idx.size
        assert path.stem == f"fmnist_vgg5_fold{rec['fold']}" and rec["seed"] == rec["fold"] + 1
        seen.add(rec["fold"])
        net = io.load_network(path.with_suffix(".safetensors"))
        assert net.n_parameters() == rec["n_parameters"]
    assert len(seen) == len(FOLDS)


@pytest.mark.slow
@pytest.mark.parametrize("path", FOLDS[:1], ids=lambda p: p.stem)
def test_fold_network_accuracy_on_its_never_seen_fold(path):
    """The NumPy forward pass reproduces the ANN's recorded accuracy on its fold."""
    from l4theory.experiment.splits import folds

    rec = json.loads(path.read_text())
    try:
        tr = datasets.load_fashion_mnist("train")
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    idx = folds(60_000, rec["n_folds"], rec["fold_seed"])[rec["fold"]]
    net = io.load_network(path.with_suffix(".safetensors"))
    acc = float((net.predict(datasets.normalize(tr.images[idx])) == tr.labels[idx]).mean())
    assert abs(acc - rec["ann_fold_accuracy"]) < 1e-3
