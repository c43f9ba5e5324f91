"""ONNX reading and writing (the ``io`` extra: skipped without the onnx package)."""

from pathlib import Path

import numpy as np
import pytest

from l4theory.convert import io

from .helpers import tiny_net

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

MODELS = Path(__file__).resolve().parents[3] / "models"


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def make_model(nodes, inits, in_shape=(1, 1, 8, 8), out="y", out_shape=None):
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape[1:]])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)], initializer=inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def save(tmp_path, m, name="g.onnx"):
    p = tmp_path / name
    onnx.save(m, str(p))
    return p


def reference(p, x):
    return ReferenceEvaluator(str(p)).run(None, {"x": x})[0]


def test_written_onnx_matches_reference_evaluator(tmp_path):
    rng = np.random.default_rng(6)
    net = tiny_net(rng)
    p = io.write_onnx(net, tmp_path / "m.onnx")
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    ref = ReferenceEvaluator(str(p)).run(None, {"input": x})[0]
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-5, atol=1e-5)


def test_save_network_provenance_in_every_format(tmp_path):
    rng = np.random.default_rng(5)
    net = tiny_net(rng)
    x = rng.normal(size=(3, 1, 6, 6)).astype(np.float32)
    prov = {"method": "l4", "r_s": 1.0, "v_th0": 2.5, "scales": [1.0, 0.9]}
    for ext in (".safetensors", ".npz", ".onnx"):
        p = io.save_network(net, tmp_path / f"m{ext}", provenance=prov)
        back = io.load_network(p)
        assert back.metadata["history"] == [prov]
        assert [lay.name for lay in back.layers] == [lay.name for lay in net.layers]
        np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=1e-6)
        q = io.save_network(back, tmp_path / f"m2{ext}", provenance={"method": "again"})
        assert [h["method"] for h in io.load_network(q).metadata["history"]] == ["l4", "again"]
        with pytest.raises(FileExistsError):
            io.save_network(net, p)
    assert "history" not in net.metadata  # the caller's network is untouched
    with pytest.raises(ValueError, match="ONNX carries its own graph"):
        io.load_network(tmp_path / "m.onnx", spec={})


def test_chain_with_bn_folding_matches_reference(tmp_path):
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
    assert [net.layers[i].name for i in net.weight_layers] == ["conv1", "gemm", "matmul"]
    assert net.layers[0].stride == (2, 2) and net.layers[0].padding == (1, 1, 1, 1)
    x = rng.normal(size=(5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), reference(p, x), rtol=1e-4, atol=1e-5)
    keys = {net.layers[i].weight_key for i in net.weight_layers}
    assert "shape" not in keys  # the shape tensor was not taken for a weight


def test_dynamic_flatten_shape_subgraph(tmp_path):
    rng = np.random.default_rng(8)
    w = rng.normal(size=(2, 64))
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["zero"], name="c0",
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Constant", [], ["ax"], name="c1", value_ints=[0]),
        helper.make_node("Unsqueeze", ["n", "ax"], ["nu"], name="unsq"),
        helper.make_node("Concat", ["nu", "minus1"], ["tgt"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "tgt"], ["f"], name="view"),
        helper.make_node("Gemm", ["f", "w"], ["y"], name="fc", transB=1),
    ]
    inits = [init("w", w), numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    p = save(tmp_path, make_model(nodes, inits))
    net = io.read_onnx(p)
    assert [lay.kind for lay in net.layers] == ["flatten", "linear"]
    x = rng.normal(size=(3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), reference(p, x), rtol=1e-5)


def _mlp_with_add(bias_first: bool):
    rng = np.random.default_rng(14)
    w1, b1, w2 = rng.normal(size=(64, 5)), rng.normal(size=5), rng.normal(size=(5, 3))
    add_in = ["b1", "m1"] if bias_first else ["m1", "b1"]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "w1"], ["m1"], name="/fc1/MatMul"),
             helper.make_node("Add", add_in, ["a1"], name="/fc1/Add"),
             helper.make_node("Relu", ["a1"], ["r1"], name="/act/Relu"),
             helper.make_node("MatMul", ["r1", "w2"], ["y"], name="/fc2/MatMul")]
    return make_model(nodes, [init("w1", w1), init("b1", b1), init("w2", w2)])


def test_add_with_the_bias_as_first_operand(tmp_path):
    """Issue 9, defect 1: Add(b, x) was refused as 'not a single chain'."""
    swapped = save(tmp_path, _mlp_with_add(bias_first=True), "swapped.onnx")
    plain = save(tmp_path, _mlp_with_add(bias_first=False), "plain.onnx")
    a, b = io.read_onnx(swapped), io.read_onnx(plain)
    x = np.random.default_rng(15).normal(size=(6, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(a.forward(x), b.forward(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.forward(x), reference(swapped, x), rtol=1e-5, atol=1e-5)
    assert [lay.name for lay in a.layers] == ["flatten", "fc1", "relu", "fc2"]


@pytest.mark.parametrize("inputs, src", [(["c", "x"], (0, -1)), (["x", "c"], (-1, 0)),
                                         (["c", "c"], (0, 0))])
def test_add_of_two_activations_is_a_residual_add(tmp_path, inputs, src):
    w = init("w", np.random.default_rng(3).normal(size=(1, 1, 3, 3)))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="c", pads=[1, 1, 1, 1]),
             helper.make_node("Add", inputs, ["y"], name="residual")]
    p = save(tmp_path, make_model(nodes, [w]))
    net = io.read_onnx(p)
    assert [lay.kind for lay in net.layers] == ["conv2d", "add"] and net.inputs[1] == src
    x = np.random.default_rng(4).normal(size=(2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.forward(x), reference(p, x), rtol=1e-5, atol=1e-5)


def test_other_joins_of_two_activations_are_refused_naming_the_op(tmp_path):
    w = init("w", np.ones((1, 1, 3, 3)))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="c", pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "x"], ["y"], name="gate")]
    p = save(tmp_path, make_model(nodes, [w]))
    with pytest.raises(ValueError, match=r"node 'gate' \(op Mul\): takes several activations"):
        io.read_onnx(p)


@pytest.mark.parametrize("bias_shape, ok", [((4, 1, 1), True), ((1, 4, 1, 1), True),
                                            ((1,), True), ((4,), False), ((4, 4, 1), False)])
def test_conv_bias_by_add_must_be_per_channel(tmp_path, bias_shape, ok):
    """A (C,) bias added to an (N, C, H, W) output broadcasts along W, not C: the old
    reader took it for a per-channel bias (here W == C == 4) and gave wrong logits."""
    rng = np.random.default_rng(16)
    b = rng.normal(size=bias_shape)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Add", ["c", "b"], ["y"], name="bias")]
    p = save(tmp_path, make_model(nodes, [init("w", rng.normal(size=(4, 1, 3, 3))),
                                          init("b", b)], in_shape=(1, 1, 6, 6)))
    if not ok:
        with pytest.raises(ValueError, match=r"node 'bias' \(op Add\): bias of shape"):
            io.read_onnx(p)
        return
    x = rng.normal(size=(2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(io.read_onnx(p).forward(x), reference(p, x), rtol=1e-5,
                               atol=1e-5)


def test_unsupported_op_names_node(tmp_path):
    nodes = [helper.make_node("LpPool", ["x"], ["y"], name="the_pool", kernel_shape=[2, 2])]
    p = save(tmp_path, make_model(nodes, []))
    with pytest.raises(ValueError, match=r"node 'the_pool' \(op LpPool\): unsupported"):
        io.read_onnx(p)


def test_maxpool_is_read_and_padded_maxpool_refused(tmp_path):
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2],
                              strides=[2, 2])]
    p = save(tmp_path, make_model(nodes, []))
    x = np.random.default_rng(5).normal(size=(2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(io.read_onnx(p).forward(x), reference(p, x))
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2],
                              pads=[1, 1, 1, 1])]
    with pytest.raises(ValueError, match=r"node 'mp' \(op MaxPool\): padded"):
        io.read_onnx(save(tmp_path, make_model(nodes, [])))


def test_refusals(tmp_path):
    rng = np.random.default_rng(9)
    w = init("w", rng.normal(size=(2, 1, 3, 3)))
    cases = [
        ([helper.make_node("Conv", ["x", "w"], ["y"], name="gconv", group=1, dilations=[2, 2])],
         "gconv.*dilated"),
        ([helper.make_node("Conv", ["x"], ["y"], name="noweight")], "noweight.*4-D initializer"),
        ([helper.make_node("BatchNormalization", ["x", "w", "w", "w", "w"], ["y"], name="bn0")],
         "bn0.*must follow"),
        ([helper.make_node("AveragePool", ["x"], ["y"], name="ap", kernel_shape=[2, 2],
                           pads=[1, 1, 1, 1])], "ap.*padded"),
        ([helper.make_node("AveragePool", ["x"], ["y"], name="ap2")], "ap2.*kernel_shape"),
        ([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=2)], "fl.*axis"),
    ]
    for nodes, msg in cases:
        p = save(tmp_path, make_model(nodes, [w]))
        with pytest.raises(ValueError, match=msg):
            io.read_onnx(p)
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07garbage-not-onnx\xff")
    with pytest.raises(ValueError, match="cannot parse as ONNX"):
        io.read_onnx(tmp_path / "junk.onnx")


@pytest.mark.parametrize("name", ["fmnist_mlp", "fmnist_vgg5"])
def test_shipped_models_have_the_same_layer_names_in_both_formats(name):
    """The VGG-5's ONNX export names its MatMul weights onnx::MatMul_20/21: the layer
    names come from the node scopes instead, as in the safetensors spec."""
    a = io.load_network(MODELS / f"{name}.safetensors")
    b = io.load_network(MODELS / f"{name}.onnx")
    assert [lay.name for lay in b.layers] == [lay.name for lay in a.layers]
    assert not any(lay.name.startswith("onnx::") for lay in b.layers)
    expected = {"fmnist_mlp": ["1", "4"],
                "fmnist_vgg5": ["features.0", "features.3", "features.6", "classifier.1",
                                "classifier.4"]}[name]
    assert [b.layers[i].name for i in b.weight_layers] == expected
