"""The shipped trained networks: both formats agree and the accuracy matches provenance."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from l4theory.convert import datasets, io

MODELS = Path(__file__).resolve().parents[2] / "models"
NAMES = ["fmnist_mlp", "fmnist_vgg5"]


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
    for i in a.weight_layers:
        la, lb = a.layers[i], b.layers[i]
        assert la.weight.dtype == lb.weight.dtype == np.float32
        np.testing.assert_array_equal(la.weight, lb.weight)
        assert (la.bias is None) == (lb.bias is None)
        if la.bias is not None:
            np.testing.assert_array_equal(la.bias, lb.bias)
        if la.kind == "conv2d":
            assert (la.stride, la.padding) == (lb.stride, lb.padding)
    assert a.n_parameters() == prov(name)["n_parameters"]


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
