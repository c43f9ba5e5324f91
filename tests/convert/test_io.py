import json
import os
import struct

import numpy as np
import pytest

from l4theory.convert import io
from l4theory.convert.network import AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU

onnx = pytest.importorskip("onnx")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402


def tiny_net(rng, dtype=np.float32):
    return Network((1, 6, 6), [
        Conv2d(rng.normal(size=(2, 1, 3, 3)).astype(dtype), rng.normal(size=2).astype(dtype),
               padding=1, name="conv1"),
        ReLU(), AvgPool2d(2), Flatten(),
        Linear(rng.normal(size=(3, 18)).astype(dtype), None, name="fc"),
    ], name="tiny")


def listing(folder):
    return sorted(os.listdir(folder))


# ----------------------------------------------------------------------------- safetensors
def test_safetensors_round_trip_and_reference(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"a": rng.normal(size=(3, 4)).astype(np.float32),
               "b": rng.normal(size=5), "c": np.arange(6, dtype=np.int16).reshape(2, 3),
               "d": np.array([True, False]), "e": np.zeros((0, 3), np.float32),
               "f": rng.normal(size=4).astype(np.float16)}
    p = io.write_safetensors(tmp_path / "t.safetensors", tensors, {"k": "v"})
    got, meta = io.read_safetensors(p)
    assert meta == {"k": "v"}
    ref = safetensors_numpy.load_file(str(p))  # the reference implementation reads ours
    for k, v in tensors.items():
        np.testing.assert_array_equal(got[k], v)
        assert got[k].dtype == v.dtype
        np.testing.assert_array_equal(ref[k], v)
    # ... and we read the reference writer's output
    q = tmp_path / "ref.safetensors"
    safetensors_numpy.save_file(tensors, str(q), metadata={"x": "y"})
    got2, meta2 = io.read_safetensors(q)
    assert meta2 == {"x": "y"}
    for k, v in tensors.items():
        np.testing.assert_array_equal(got2[k], v)


def test_safetensors_bf16(tmp_path):
    vals = np.array([1.0, -2.5, 3.140625], np.float32)
    raw = (vals.view(np.uint32) >> 16).astype("<u2").tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    p = tmp_path / "bf.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + raw)
    got, _ = io.read_safetensors(p)
    np.testing.assert_array_equal(got["w"], vals)


def _st(header: dict, data: bytes, hlen=None):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


GOOD = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize("blob, msg", [
    (b"\x01\x02", "too short"),
    (_st(GOOD, b"\x00" * 8, hlen=2**62), "exceeds the limit"),
    (_st(GOOD, b"\x00" * 8, hlen=10**6), "runs past the end"),
    (_st(GOOD, b"\x00" * 4), "outside the data section"),  # truncated data
    (struct.pack("<Q", 4) + b"{xx}", "not valid UTF-8 JSON"),
    (struct.pack("<Q", 2) + b"[]", "JSON object"),
    (_st({"w": {"dtype": "F99", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "unsupported dtype"),
    (_st({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "needs 12 bytes"),
    (_st({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "non-negative ints"),
    (_st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\x00" * 8),
     "outside the data section"),
    (_st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "v": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\x00" * 8), "overlaps"),
    (_st({"w": {"dtype": "F32", "shape": [2]}}, b"\x00" * 8), "exactly dtype"),
    (_st({"__metadata__": {"a": 1}, **GOOD}, b"\x00" * 8), "strings to strings"),
    (_st({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\x00" * 8),
     "needs"),
])
def test_safetensors_malformed(tmp_path, blob, msg):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(blob)
    with pytest.raises(ValueError, match=msg):
        io.read_safetensors(p)


def test_truncated_real_file(tmp_path):
    rng = np.random.default_rng(1)
    net = tiny_net(rng)
    p = io.save_network(net, tmp_path / "m.safetensors")
    blob = p.read_bytes()
    for cut in (len(blob) - 1, len(blob) // 2, 20, 7):
        q = tmp_path / f"cut{cut}.safetensors"
        q.write_bytes(blob[:cut])
        with pytest.raises(ValueError):
            io.load_network(q)


def test_no_overwrite_and_nothing_written_on_error(tmp_path):
    p = tmp_path / "x.safetensors"
    io.write_safetensors(p, {"a": np.zeros(2)})
    before = p.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        io.write_safetensors(p, {"a": np.ones(2)})
    assert p.read_bytes() == before
    io.write_safetensors(p, {"a": np.ones(2)}, overwrite=True)
    np.testing.assert_array_equal(io.read_safetensors(p)[0]["a"], np.ones(2))
    with pytest.raises(ValueError, match="cannot be stored"):
        io.write_safetensors(tmp_path / "y.safetensors", {"a": np.array(["s"])})
    with pytest.raises(ValueError, match="refusing to pickle"):
        io.write_npz(tmp_path / "y.npz", {"a": np.array([object()])})
    assert listing(tmp_path) == ["x.safetensors"]  # no partial or temp files


# ----------------------------------------------------------------------------- npz
def test_npz_round_trip_and_no_pickle(tmp_path):
    rng = np.random.default_rng(2)
    net = tiny_net(rng)
    p = io.save_network(net, tmp_path / "m.npz")
    with np.load(p, allow_pickle=False) as z:
        assert z[io.NPZ_SPEC_KEY].dtype == np.uint8
        spec = json.loads(z[io.NPZ_SPEC_KEY].tobytes())
    assert spec["layers"][0] == {"type": "conv2d", "weight": "conv1.weight",
                                 "bias": "conv1.bias", "stride": [1, 1],
                                 "padding": [1, 1, 1, 1], "name": "conv1"}
    back = io.load_network(p)
    x = rng.normal(size=(4, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    bad = tmp_path / "pickled.npz"
    np.savez(bad, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="unpickling"):
        io.read_npz(bad)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="npz"):
        io.read_npz(tmp_path / "junk.npz")


def test_sidecar_spec_and_missing_spec(tmp_path):
    rng = np.random.default_rng(3)
    net = tiny_net(rng)
    spec = io.spec_from_network(net)
    tensors = {"conv1.weight": net.layers[0].weight, "conv1.bias": net.layers[0].bias,
               "fc.weight": net.layers[4].weight}
    p = tmp_path / "plain.safetensors"
    safetensors_numpy.save_file(tensors, str(p))
    with pytest.raises(ValueError, match="no embedded l4theory spec"):
        io.load_network(p)
    (tmp_path / "plain.spec.json").write_text(json.dumps(spec))
    back = io.load_network(p)
    np.testing.assert_array_equal(back.layers[4].weight, net.layers[4].weight)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(spec))
    assert io.load_network(p, spec=other).shapes == net.shapes
    assert io.load_network(p, spec=spec).shapes == net.shapes


@pytest.mark.parametrize("mutate, msg", [
    (lambda s, t: t.pop("fc.weight"), "names tensor 'fc.weight'"),
    (lambda s, t: t.__setitem__("fc.weight", np.zeros((3, 17), np.float32)),
     r"layer 4 \(linear 'fc'\): its weight \(3, 17\) expects 17 inputs, receives 18"),
    (lambda s, t: t.__setitem__("conv1.weight", np.zeros((2, 3, 3, 3), np.float32)),
     "expects 3 input channels"),
    (lambda s, t: s["layers"].__setitem__(1, {"type": "maxpool"}), "unknown type 'maxpool'"),
    (lambda s, t: s.pop("input_shape"), "input_shape"),
    (lambda s, t: t.__setitem__("conv1.bias", np.zeros(5, np.float32)), "bias has 5 entries"),
])
def test_bad_spec_or_shapes(tmp_path, mutate, msg):
    rng = np.random.default_rng(4)
    net = tiny_net(rng)
    spec = io.spec_from_network(net)
    tensors = {"conv1.weight": net.layers[0].weight, "conv1.bias": net.layers[0].bias,
               "fc.weight": net.layers[4].weight}
    mutate(spec, tensors)
    with pytest.raises(ValueError, match=msg):
        io.network_from_spec(spec, tensors)


def test_save_network_provenance_and_formats(tmp_path):
    rng = np.random.default_rng(5)
    net = tiny_net(rng)
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    prov = {"method": "l4", "r_s": 1.0, "v_th0": 2.5, "scales": [1.0, 0.9]}
    for ext in (".safetensors", ".npz", ".onnx"):
        p = io.save_network(net, tmp_path / f"m{ext}", provenance=prov)
        back = io.load_network(p)
        assert back.metadata["history"] == [prov]
        np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-6)
        # a second adjustment appends
        q = io.save_network(back, tmp_path / f"m2{ext}", provenance={"method": "again"})
        assert [h["method"] for h in io.load_network(q).metadata["history"]] == ["l4", "again"]
        with pytest.raises(FileExistsError):
            io.save_network(net, p)
    assert "history" not in net.metadata  # the caller's network is untouched
    with pytest.raises(ValueError, match="suffix"):
        io.save_network(net, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="JSON"):
        io.save_network(net, tmp_path / "m3.npz", provenance={"a": object()})


def test_written_onnx_matches_reference_evaluator(tmp_path):
    rng = np.random.default_rng(6)
    net = tiny_net(rng)
    p = io.write_onnx(net, tmp_path / "m.onnx")
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    ref = ReferenceEvaluator(str(p)).run(None, {"input": x})[0]
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- ONNX reading
def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def make_model(nodes, inits, in_shape=(1, 1, 8, 8), out="y", out_shape=None):
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape[1:]])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return m


def save(tmp_path, m, name="g.onnx"):
    p = tmp_path / name
    onnx.save(m, str(p))
    return p


def test_onnx_chain_with_bn_folding_matches_reference(tmp_path):
    rng = np.random.default_rng(7)
    w1, b1 = rng.normal(size=(4, 1, 3, 3)), rng.normal(size=4)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.normal(size=4)
    mean, var = rng.normal(size=4), rng.uniform(0.5, 2, 4)
    w2 = rng.normal(size=(16, 5))  # Gemm with transB=0 and alpha
    w3, b3 = rng.normal(size=(5, 3)), rng.normal(size=3)  # MatMul + Add
    g2, bb2, m2, v2 = rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3), \
        rng.uniform(0.5, 2, 3)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", strides=[2, 2],
                         pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "g", "bt", "mu", "var"], ["bn1"],
                         name="bn1", epsilon=1e-3),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("AveragePool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Identity", ["p1"], ["i1"], name="id"),
        helper.make_node("Reshape", ["i1", "shape"], ["f1"], name="reshape"),
        helper.make_node("Gemm", ["f1", "w2"], ["d1"], name="gemm", alpha=0.5),
        helper.make_node("Relu", ["d1"], ["r2"], name="relu2"),
        helper.make_node("Dropout", ["r2"], ["dr"], name="drop"),
        helper.make_node("MatMul", ["dr", "w3"], ["m3"], name="matmul"),
        helper.make_node("Add", ["m3", "b3"], ["a3"], name="add"),
        helper.make_node("BatchNormalization", ["a3", "g2", "bb2", "m2", "v2"], ["y"],
                         name="bn2"),
    ]
    inits = [init("w1", w1), init("b1", b1), init("g", gamma), init("bt", beta),
             init("mu", mean), init("var", var), init("w2", w2), init("w3", w3), init("b3", b3),
             init("g2", g2), init("bb2", bb2), init("m2", m2), init("v2", v2),
             numpy_helper.from_array(np.array([0, -1], np.int64), "shape")]
    p = save(tmp_path, make_model(nodes, inits))
    net = io.read_onnx(p)
    assert [lay.kind for lay in net.layers] == ["conv2d", "relu", "avgpool2d", "flatten",
                                                "linear", "relu", "linear"]
    assert net.layers[0].stride == (2, 2) and net.layers[0].padding == (1, 1, 1, 1)
    x = rng.normal(size=(5, 1, 8, 8)).astype(np.float32)
    ref = ReferenceEvaluator(str(p)).run(None, {"x": x})[0]
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-4, atol=1e-5)
    # the shape tensor was not taken for a weight
    keys = {net.layers[i].weight_key for i in net.weight_layers}
    assert "shape" not in keys


def test_onnx_dynamic_flatten_shape_subgraph(tmp_path):
    rng = np.random.default_rng(8)
    w = rng.normal(size=(2, 64))
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["zero"], name="c0",
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["nu"], name="unsq"),
        helper.make_node("Concat", ["nu", "minus1"], ["tgt"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "tgt"], ["f"], name="view"),
        helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1),
    ]
    inits = [init("w", w), numpy_helper.from_array(np.array([0], np.int64), "ax"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    p = save(tmp_path, make_model(nodes, inits))
    net = io.read_onnx(p)
    assert [lay.kind for lay in net.layers] == ["flatten", "linear"]
    x = rng.normal(size=(3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), ReferenceEvaluator(str(p)).run(None, {"x": x})[0],
                               rtol=1e-5)


def test_onnx_unsupported_op_names_node(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="the_pool", kernel_shape=[2, 2])]
    p = save(tmp_path, make_model(nodes, []))
    with pytest.raises(ValueError, match=r"node 'the_pool' \(op MaxPool\): unsupported"):
        io.read_onnx(p)


def test_onnx_refusals(tmp_path):
    rng = np.random.default_rng(9)
    w = init("w", rng.normal(size=(2, 1, 3, 3)))
    cases = [
        ([helper.make_node("Conv", ["x", "w"], ["y"], name="gconv", group=1, dilations=[2, 2])],
         "gconv.*dilated"),
        ([helper.make_node("Conv", ["x", "w"], ["c"], name="c"),
          helper.make_node("Add", ["c", "x"], ["y"], name="residual")],
         r"residual.*single chain"),
        ([helper.make_node("BatchNormalization", ["x", "w", "w", "w", "w"], ["y"], name="bn0")],
         "bn0.*must follow"),
        ([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[2, 2],
                           pads=[1, 1, 1, 1])], "ap.*padded"),
        ([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2)], "fl.*axis"),
    ]
    for nodes, msg in cases:
        p = save(tmp_path, make_model(nodes, [w]))
        with pytest.raises(ValueError, match=msg):
            io.read_onnx(p)
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage-not-onnx\xff")
    with pytest.raises(ValueError, match="cannot parse as ONNX"):
        io.read_onnx(tmp_path / "junk.onnx")


def test_wrong_dtype_weights(tmp_path):
    rng = np.random.default_rng(10)
    net = tiny_net(rng)
    spec = io.spec_from_network(net)
    tensors = {"conv1.weight": net.layers[0].weight, "conv1.bias": net.layers[0].bias,
               "fc.weight": np.full((3, 18), "abc")}
    p = tmp_path / "s.npz"
    np.savez(p, **tensors)
    with pytest.raises(ValueError, match="fc.weight must be numeric"):
        io.load_network(p, spec=spec)
    tensors["fc.weight"] = np.ones((3, 18), np.complex64)
    with pytest.raises(ValueError, match="must be numeric"):
        io.network_from_spec(spec, tensors)
    # integer weights are accepted as float32
    tensors["fc.weight"] = np.ones((3, 18), np.int8)
    assert io.network_from_spec(spec, tensors).layers[4].weight.dtype == np.float32
