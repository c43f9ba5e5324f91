"""The layer spec <-> Network, side-car specs, and batchnorm folding (no optional package;
the PyTorch cross-check reads a shipped export, data/make_bn_fixture.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from l4theory.convert import io
from l4theory.convert.network import avgpool2d, conv2d

from .helpers import tiny_net, tiny_tensors


def test_sidecar_spec_and_missing_spec(tmp_path):
    net = tiny_net(np.random.default_rng(3))
    spec = io.spec_from_network(net)
    p = io.write_safetensors(tmp_path / "plain.safetensors", tiny_tensors(net))
    with pytest.raises(ValueError, match="no embedded l4theory spec"):
        io.load_network(p)
    (tmp_path / "plain.spec.json").write_text(json.dumps(spec))
    back = io.load_network(p)
    np.testing.assert_array_equal(back.layers[4].weight, net.layers[4].weight)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(spec))
    assert io.load_network(p, spec=other).shapes == net.shapes
    assert io.load_network(p, spec=str(other)).shapes == net.shapes
    assert io.load_network(p, spec=spec).shapes == net.shapes
    assert io.load_network(p, spec=json.dumps(spec)).shapes == net.shapes


@pytest.mark.parametrize("mutate, msg", [
    (lambda s, t: t.pop("fc.weight"), "names tensor 'fc.weight'"),
    (lambda s, t: t.__setitem__("fc.weight", np.zeros((3, 17), np.float32)),
     r"layer 4 \(linear 'fc'\): its weight \(3, 17\) expects 17 inputs, receives 18"),
    (lambda s, t: t.__setitem__("conv1.weight", np.zeros((2, 3, 3, 3), np.float32)),
     "expects 3 input channels"),
    (lambda s, t: s["layers"].__setitem__(1, {"type": "maxpool"}), "unknown type 'maxpool'"),
    (lambda s, t: s["layers"].__setitem__(1, "relu"), "unknown type 'relu'"),
    (lambda s, t: s.pop("input_shape"), "input_shape"),
    (lambda s, t: s.__setitem__("format", "other"), "is not l4theory.network"),
    (lambda s, t: t.__setitem__("conv1.bias", np.zeros(5, np.float32)), "bias has 5 entries"),
])
def test_bad_spec_or_shapes(mutate, msg):
    net = tiny_net(np.random.default_rng(4))
    spec, tensors = io.spec_from_network(net), tiny_tensors(net)
    mutate(spec, tensors)
    with pytest.raises(ValueError, match=msg):
        io.network_from_spec(spec, tensors)


@pytest.mark.parametrize("spec, msg", [("{nope", "not valid JSON"), ("[]", "'layers' list"),
                                       ({"layers": {}}, "'layers' list")])
def test_spec_not_an_object(spec, msg):
    with pytest.raises(ValueError, match=msg):
        io.network_from_spec(spec, {})


def test_wrong_dtype_weights(tmp_path):
    net = tiny_net(np.random.default_rng(10))
    spec, tensors = io.spec_from_network(net), tiny_tensors(net)
    tensors["fc.weight"] = np.full((3, 18), "abc")
    p = tmp_path / "s.npz"
    np.savez(p, **tensors)
    with pytest.raises(ValueError, match="fc.weight must be numeric"):
        io.load_network(p, spec=spec)
    tensors["fc.weight"] = np.ones((3, 18), np.complex64)
    with pytest.raises(ValueError, match="must be numeric"):
        io.network_from_spec(spec, tensors)
    tensors["fc.weight"] = np.ones((3, 18), np.int8)  # integers are accepted as float32
    assert io.network_from_spec(spec, tensors).layers[4].weight.dtype == np.float32


# ----------------------------------------------------------------------------- batchnorm
#: The spec of the PyTorch fixture (written by data/make_bn_fixture.py into its metadata):
#: Conv2d-BatchNorm2d-ReLU-AvgPool-Flatten-Linear-BatchNorm1d-ReLU-Linear, input (1, 8, 8).
BN_SPEC = json.loads(io.read_safetensors(Path(__file__).parent / "data" / "bn_torch.safetensors")[1]
                     [io.SPEC_KEY])


def bn_tensors(rng):
    t = {"0.weight": rng.normal(size=(4, 1, 3, 3)), "0.bias": rng.normal(size=4),
         "5.weight": rng.normal(size=(6, 64)) / 8, "8.weight": rng.normal(size=(3, 6)),
         "8.bias": rng.normal(size=3), "1.num_batches_tracked": np.array(7, np.int64),
         "6.num_batches_tracked": np.array(7, np.int64)}
    for k, n in (("1", 4), ("6", 6)):
        t |= {f"{k}.weight": rng.uniform(0.5, 1.5, n), f"{k}.bias": rng.normal(size=n),
              f"{k}.running_mean": rng.normal(size=n), f"{k}.running_var": rng.uniform(0.2, 3, n)}
    return {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in t.items()}


def bn_reference(t, x):
    """The network with explicit batch normalization, straight from the definitions."""
    def bn(h, k, eps, axis_shape):
        m, v = t[f"{k}.running_mean"].reshape(axis_shape), t[f"{k}.running_var"].reshape(
            axis_shape)
        return (h - m) / np.sqrt(v + eps) * t[f"{k}.weight"].reshape(axis_shape) + \
            t[f"{k}.bias"].reshape(axis_shape)

    h = conv2d(x, t["0.weight"], t["0.bias"], padding=(1, 1, 1, 1))
    h = avgpool2d(np.maximum(bn(h, "1", 1e-3, (1, -1, 1, 1)), 0), (2, 2))
    h = np.maximum(bn(h.reshape(len(x), -1) @ t["5.weight"].T, "6", 1e-5, (1, -1)), 0)
    return h @ t["8.weight"].T + t["8.bias"]


def test_batchnorm_layers_are_folded(tmp_path):
    rng = np.random.default_rng(11)
    t = bn_tensors(rng)
    p = io.write_safetensors(tmp_path / "bn.safetensors", t,
                             {io.SPEC_KEY: json.dumps(BN_SPEC)})
    net = io.load_network(p)
    assert [lay.kind for lay in net.layers] == ["conv2d", "relu", "avgpool2d", "flatten",
                                                "linear", "relu", "linear"]
    assert net.layers[4].bias_key == "5.bias"  # a bias created by the folding
    x = rng.normal(size=(5, 1, 8, 8))
    np.testing.assert_allclose(net.forward(x), bn_reference(t, x), rtol=1e-12, atol=1e-12)
    # the folded network saves and loads as a plain one
    back = io.load_network(io.save_network(net, tmp_path / "folded.npz"))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


@pytest.mark.parametrize("mutate, msg", [
    (lambda s, t: s["layers"].insert(0, dict(s["layers"][1])), "must follow a conv2d or linear"),
    (lambda s, t: s["layers"][3].__setitem__("type", "batchnorm"), "needs 'running_mean'"),
    (lambda s, t: s["layers"][1].pop("running_var"), "needs 'running_var'"),
    (lambda s, t: s["layers"][1].__setitem__("eps", -1), "eps must be a finite number >= 0"),
    (lambda s, t: s["layers"][1].__setitem__("eps", "small"), "eps must be"),
    (lambda s, t: t.__setitem__("1.running_var", -np.ones(4)), "running_var \\+ eps must be > 0"),
    (lambda s, t: t.__setitem__("1.running_mean", np.zeros(5)), r"shape \(5,\); expected \(4,\)"),
    (lambda s, t: t.__setitem__("1.weight", np.full(4, np.nan)), "NaN"),
    (lambda s, t: t.pop("6.running_mean"), "names tensor '6.running_mean'"),
])
def test_batchnorm_refusals(mutate, msg):
    spec, t = json.loads(json.dumps(BN_SPEC)), bn_tensors(np.random.default_rng(12))
    mutate(spec, t)
    with pytest.raises(ValueError, match=msg):
        io.network_from_spec(spec, t)


def test_batchnorm_without_affine_parameters():
    rng = np.random.default_rng(13)
    spec, t = json.loads(json.dumps(BN_SPEC)), bn_tensors(rng)
    spec["layers"][1] |= {"weight": None, "bias": None}
    t["1.weight"], t["1.bias"] = np.ones(4), np.zeros(4)
    x = rng.normal(size=(2, 1, 8, 8))
    np.testing.assert_allclose(io.network_from_spec(spec, t).forward(x), bn_reference(t, x),
                               rtol=1e-12, atol=1e-12)


def test_shipped_pytorch_batchnorm_export_matches_pytorch_logits():
    """The fixture written by PyTorch (data/make_bn_fixture.py: a state_dict with
    BatchNorm2d/1d, num_batches_tracked included) loads with PyTorch's logits, no torch
    needed."""
    data = Path(__file__).resolve().parent / "data"
    net = io.load_network(data / "bn_torch.safetensors")
    assert [lay.kind for lay in net.layers] == ["conv2d", "relu", "avgpool2d", "flatten",
                                               "linear", "relu", "linear"]
    with np.load(data / "bn_torch_logits.npz") as f:
        x, ref = f["x"], f["logits"]
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-5)
