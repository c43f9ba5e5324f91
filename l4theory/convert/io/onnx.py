"""Read and write ONNX models as :class:`~l4theory.convert.network.Network` (the ``io`` extra).

Reading walks the graph's data path from its one input, in node order; each op has one
small handler in :data:`HANDLERS` (Conv, Gemm, MatMul, Add of a constant bias on either
side, Add of two activations (a residual connection: an :class:`Add` layer whose inputs
are the layers producing them), BatchNormalization folded into the layer before it,
Relu, AveragePool, MaxPool, GlobalAveragePool, Flatten, Reshape to (batch, -1), Dropout
and Identity skipped); ``Constant`` nodes and shape computations (``Shape``, ``Gather``,
``Concat``, ... feeding a ``Reshape``) are ignored. Any other op, any other node with
several data inputs, or an unsupported attribute raises ``ValueError`` naming the node
and op.

Layer names: weight layers are named after their initializer (``fc1.weight`` -> ``fc1``)
or, for exporter-generated initializer names such as ``onnx::MatMul_20``, after the
module scope in the node name (``/classifier/classifier.1/MatMul`` -> ``classifier.1``);
other layers after their kind, as the spec does; a spec embedded by :func:`write_onnx`
supplies the names when its layers match. So the ONNX and safetensors exports of one
PyTorch model print the same names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..network import Add, AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU
from ._atomic import atomic_write
from .spec import SPEC_KEY, fold_batchnorm, spec_from_network, spec_layer_name

__all__ = ["HANDLERS", "read_onnx", "write_onnx"]

_SPEC_FIELDS = ("format", "version", "name", "input_shape", "layers")
_AUTO_PAD_OK = (b"NOTSET", b"VALID", "NOTSET", "VALID")


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("reading ONNX needs the onnx package: pip install 'l4theory[io]'") \
            from None
    return onnx, numpy_helper


class _Walk:
    """The state of a walk along the data path: constants, layers so far, tensor shapes.

    ``node_of[tensor]`` is the index of the layer that produces a data tensor (-1: the
    graph input); ``cur`` holds the data inputs of the node being handled and ``shape``
    the shape of the first one.
    """

    def __init__(self, onnx, numpy_helper, model, start: str, input_shape: tuple):
        self.onnx, self.numpy_helper, self.model = onnx, numpy_helper, model
        self.inits = {init.name: init for init in model.graph.initializer}
        self.arrays: dict = {}
        self.layers: list = []
        self.inputs: list = []
        self.shapes: list = []
        self.node_of = {start: -1}
        self.input_shape = input_shape
        self.cur: list = [start]
        self.shape = input_shape
        self.names: set = set()

    def shape_of(self, tensor: str) -> tuple:
        k = self.node_of[tensor]
        return self.input_shape if k < 0 else self.shapes[k]

    def const(self, name):
        """The constant named ``name`` as an array, or None if it is not a constant."""
        if name not in self.arrays and name in self.inits:
            self.arrays[name] = self.numpy_helper.to_array(self.inits[name])
        return self.arrays.get(name)

    def add_constant(self, node, a: dict) -> None:
        """Record the output of a ``Constant`` node (numeric forms only)."""
        if "value" in a:
            value = self.numpy_helper.to_array(a["value"])
        elif any(k in a for k in ("value_float", "value_floats", "value_int", "value_ints")):
            value = np.asarray(next(a[k] for k in ("value_float", "value_floats",
                                                   "value_int", "value_ints") if k in a))
        else:
            return  # sparse or string constants never become weights
        for out in node.output:
            self.arrays[out] = value

    def attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def append(self, layer) -> None:
        """Add ``layer``, taking the current node's data inputs."""
        self.shapes.append(tuple(layer.output_shape(*(self.shape_of(t) for t in self.cur))))
        self.inputs.append(tuple(self.node_of[t] for t in self.cur))
        self.layers.append(layer)

    def last_weight_layer(self):
        """The layer producing the current input if it is the last Conv2d/Linear, else None."""
        k = self.node_of[self.cur[0]]
        last = self.layers[k] if self.layers and k == len(self.layers) - 1 else None
        return last if last is not None and last.kind in ("conv2d", "linear") else None

    def weight_name(self, key: str, node) -> str:
        """A readable, unique layer name from the initializer ``key`` or the node name."""
        parts = [p for p in node.name.split("/") if p]
        if key.endswith(".weight"):
            base = key[: -len(".weight")]
        elif len(parts) >= 2:
            base = _scope_path(parts[:-1])  # exporter scope: /module/path.k/Op
        else:
            base = node.name or key
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name


def _scope_path(scopes: list) -> str:
    """The module path of an exporter scope.

    ``["3", "shortcut", "shortcut.0"]`` -> ``"3.shortcut.0"``; ``["classifier",
    "classifier.1"]`` -> ``"classifier.1"``. The legacy exporter names a scope either by
    its attribute (``conv1``) or, for the children of an ``nn.Sequential``, by
    ``parent.k``; the latter replaces the parent.
    """
    path: list = []
    for part in scopes:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return ".".join(path)


def _input(node, k: int):
    """Name of the ``k``-th input of ``node``, or None if absent or empty."""
    return node.input[k] if len(node.input) > k and node.input[k] else None


def _weight(w: _Walk, node, k: int, ndim: int, what: str) -> np.ndarray:
    arr = w.const(_input(node, k)) if _input(node, k) else None
    if arr is None or arr.ndim != ndim:
        raise ValueError(f"{what} must be a {ndim}-D initializer")
    return arr


# ------------------------------------------------------------------------- op handlers
def _conv(w: _Walk, node, a: dict) -> None:
    if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ValueError("grouped or dilated convolution is not supported")
    if a.get("auto_pad", b"NOTSET") not in _AUTO_PAD_OK:
        raise ValueError(f"auto_pad={a['auto_pad']!r} is not supported")
    weight = _weight(w, node, 1, 4, "the weight")
    bkey = _input(node, 2)
    bias = w.const(bkey) if bkey else None
    if bkey and bias is None:
        raise ValueError("the bias must be an initializer")
    w.append(Conv2d(weight, bias, stride=a.get("strides", [1, 1]),
                    padding=a.get("pads", [0, 0, 0, 0]),
                    name=w.weight_name(node.input[1], node), weight_key=node.input[1],
                    bias_key=bkey if bias is not None else None))


def _gemm(w: _Walk, node, a: dict) -> None:
    if a.get("transA", 0):
        raise ValueError("transA=1 is not supported")
    weight = _weight(w, node, 1, 2, "B")
    weight = (weight if a.get("transB", 0) else weight.T) * a.get("alpha", 1.0)
    bkey = _input(node, 2)
    bias = w.const(bkey) if bkey else None
    if bkey and bias is None:
        raise ValueError("C must be an initializer")
    if bias is not None:
        bias = np.broadcast_to(bias * a.get("beta", 1.0), (weight.shape[0],)).copy()
    w.append(Linear(weight, bias, name=w.weight_name(node.input[1], node),
                    weight_key=node.input[1], bias_key=bkey if bias is not None else None))


def _matmul(w: _Walk, node, a: dict) -> None:
    weight = _weight(w, node, 1, 2, "the second input")
    w.append(Linear(weight.T, None, name=w.weight_name(node.input[1], node),
                    weight_key=node.input[1]))


def _add(w: _Walk, node, a: dict) -> None:
    """A residual sum of two activations, or a constant bias added right after a layer."""
    if len(w.cur) == 2:
        w.append(Add(name="add"))
        return
    key = next((x for x in node.input if x and w.const(x) is not None), None)
    last = w.last_weight_layer()
    if key is None or last is None:
        raise ValueError("only a constant bias added right after MatMul/Gemm/Conv is "
                         "supported")
    b = np.asarray(w.const(key), dtype=np.float64)
    out = (1, *w.shape)  # the layer's output with a batch axis of 1
    padded = (1,) * (len(out) - b.ndim) + b.shape
    if b.ndim > len(out) or any(s != 1 for k, s in enumerate(padded) if k != 1) \
            or padded[1] not in (1, out[1]):
        raise ValueError(f"bias of shape {b.shape} is not one value per output "
                         f"channel of the {last.kind} output {w.shape}")
    bias = np.broadcast_to(b.reshape(-1), (out[1],))
    last.bias = ((last.bias if last.bias is not None else 0) + bias).astype(last.weight.dtype)
    last.bias_key = last.bias_key or key


def _batchnorm(w: _Walk, node, a: dict) -> None:
    if w.last_weight_layer() is None:
        raise ValueError("BatchNormalization must follow a Conv, Gemm or MatMul to be folded")
    if len(node.output) > 1 and any(node.output[1:]):
        raise ValueError("training-mode BatchNormalization is not supported")
    gamma, beta, mean, var = (w.const(_input(node, k)) if _input(node, k) else None
                              for k in range(1, 5))
    if any(v is None for v in (gamma, beta, mean, var)):
        raise ValueError("scale, B, mean and var must be initializers")
    w.layers[-1] = fold_batchnorm(w.layers[-1], mean, var, gamma, beta,
                                  eps=float(a.get("epsilon", 1e-5)))


def _relu(w: _Walk, node, a: dict) -> None:
    w.append(ReLU(name="relu"))


def _avgpool(w: _Walk, node, a: dict) -> None:
    if a.get("ceil_mode", 0) or any(a.get("pads", [0])) \
            or a.get("auto_pad", b"NOTSET") not in _AUTO_PAD_OK:
        raise ValueError("padded or ceil-mode average pooling is not supported")
    if "kernel_shape" not in a:
        raise ValueError("kernel_shape is required")
    w.append(AvgPool2d(a["kernel_shape"], a.get("strides", [1, 1]), name="avgpool2d"))


def _maxpool(w: _Walk, node, a: dict) -> None:
    if a.get("ceil_mode", 0) or any(a.get("pads", [0])) \
            or a.get("auto_pad", b"NOTSET") not in _AUTO_PAD_OK:
        raise ValueError("padded or ceil-mode max pooling is not supported")
    if any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("storage_order", 0):
        raise ValueError("dilated max pooling (or a storage order) is not supported")
    if len(node.output) > 1 and any(node.output[1:]):
        raise ValueError("max pooling with indices is not supported")
    if "kernel_shape" not in a:
        raise ValueError("kernel_shape is required")
    w.append(MaxPool2d(a["kernel_shape"], a.get("strides", [1, 1]), name="maxpool2d"))


def _global_avgpool(w: _Walk, node, a: dict) -> None:
    if len(w.shape) != 3:
        raise ValueError(f"needs a (C, H, W) input, receives {w.shape}")
    w.append(AvgPool2d(w.shape[1:], w.shape[1:], name="avgpool2d"))


def _flatten(w: _Walk, node, a: dict) -> None:
    if a.get("axis", 1) != 1:
        raise ValueError(f"axis={a.get('axis')} is not supported (only 1)")
    if len(w.shape) > 1:
        w.append(Flatten(name="flatten"))


def _reshape(w: _Walk, node, a: dict) -> None:
    target = w.const(_input(node, 1)) if _input(node, 1) else None
    n = int(np.prod(w.shape))
    if target is not None and not (target.ndim == 1 and len(target) == 2 and (
            int(target[1]) == n or (int(target[1]) == -1 and int(target[0]) == 0))):
        raise ValueError(f"only a reshape to (batch, -1) is supported, got {target.tolist()}")
    # a shape computed at run time (x.view(x.size(0), -1)): check by shape inference
    if target is None and _inferred_rank(w.onnx, w.model, node.output[0]) != 2:
        raise ValueError("only a reshape to (batch, -1) is supported")
    if len(w.shape) > 1:
        w.append(Flatten(name="flatten"))


def _skip(w: _Walk, node, a: dict) -> None:
    return None


#: One handler per supported op: ``handler(walk, node, attributes)``.
HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "Add": _add,
    "BatchNormalization": _batchnorm, "Relu": _relu, "AveragePool": _avgpool,
    "MaxPool": _maxpool, "GlobalAveragePool": _global_avgpool, "Flatten": _flatten, "Reshape": _reshape,
    "Dropout": _skip, "Identity": _skip,
}


def _inferred_rank(onnx, model, name):
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - any failure means: unknown
        return None
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    return None


# ------------------------------------------------------------------------- the walk
def _graph_input(graph, inits: dict, path: Path) -> tuple[str, tuple]:
    """The one non-initializer graph input and its static shape without the batch axis."""
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ValueError(f"{path}: expected one graph input, found {[i.name for i in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = []
    for d in dims[1:]:
        if not d.HasField("dim_value") or d.dim_value < 1:
            raise ValueError(f"{path}: input {inputs[0].name!r} needs static non-batch "
                             f"dimensions, got {[str(x).strip() for x in dims]}")
        shape.append(int(d.dim_value))
    if not shape:
        raise ValueError(f"{path}: input {inputs[0].name!r} has no non-batch dimensions")
    return inputs[0].name, tuple(shape)


def _walk_graph(w: _Walk, path: Path) -> None:
    """Map every node on the data path to layers (in node order, a topological order)."""
    for node in w.model.graph.node:
        if node.op_type == "Constant":
            w.add_constant(node, w.attrs(node))
            continue
        data_in = [x for x in node.input if x in w.node_of]
        if not data_in or node.op_type in ("Shape", "Size"):
            continue  # computes on constants or on the data's shape only
        where = f"{path}: node {node.name or '(unnamed)'!r} (op {node.op_type})"
        if len(data_in) > 1 and not (node.op_type == "Add" and len(data_in) == 2):
            raise ValueError(f"{where}: takes several activations {data_in}; only Add may "
                             "join two branches")
        handler = HANDLERS.get(node.op_type)
        n_layers = len(w.layers)
        try:
            if handler is None:
                raise ValueError(f"unsupported operation (supported: {', '.join(HANDLERS)})")
            w.cur, w.shape = data_in, w.shape_of(data_in[0])
            handler(w, node, w.attrs(node))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
        # a new layer produces the output; skipped and folded ops pass their input on
        w.node_of[node.output[0]] = (len(w.layers) - 1 if len(w.layers) > n_layers
                                     else w.node_of[data_in[0]])


def _embedded_spec(model) -> dict:
    """The l4theory spec in ``metadata_props`` (parsed), or ``{}``."""
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        spec = json.loads(meta.get(SPEC_KEY, "{}"))
    except (ValueError, RecursionError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _names_from_spec(layers: list, spec: dict) -> None:
    """Take the layer names from an embedded spec whose layer types match the graph's."""
    ds = [d for d in spec.get("layers", []) if isinstance(d, dict)]
    if [d.get("type") for d in ds] == [lay.kind for lay in layers]:
        for lay, d in zip(layers, ds, strict=True):
            lay.name = spec_layer_name(d)


def read_onnx(path) -> Network:
    """Read an ONNX model and infer its layer sequence.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network
        Layers named after the weight initializers or the exporter's node scopes (see the
        module docstring); BatchNormalization folded into the preceding Conv/Gemm/MatMul;
        the spec stored in the model's ``metadata_props`` (if any) contributes its
        ``history`` and layer names.

    Raises
    ------
    ValueError
        Unsupported op (the message names the node and its op type), a node other than
        Add joining branches, unsupported attributes (groups, dilations, ceil mode, pooling pads), or
        inconsistent shapes.
    """
    onnx, numpy_helper = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, OSError, ...
        raise ValueError(f"{path}: cannot parse as ONNX ({type(exc).__name__}: {exc})") from None
    g = model.graph
    start, input_shape = _graph_input(g, {i.name for i in g.initializer}, path)
    w = _Walk(onnx, numpy_helper, model, start, input_shape)
    _walk_graph(w, path)
    outputs = [o.name for o in g.output]
    if len(outputs) != 1 or w.node_of.get(outputs[0]) != len(w.layers) - 1 or not w.layers:
        raise ValueError(f"{path}: the graph output {outputs} must be the output of the last "
                         "layer on the data path")
    spec = _embedded_spec(model)
    _names_from_spec(w.layers, spec)
    extra = {k: v for k, v in spec.items() if k not in _SPEC_FIELDS}
    try:
        return Network(input_shape, w.layers, name=g.name or path.stem, metadata=extra,
                       inputs=w.inputs)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _node(helper, lay, ins: list, out: str):
    if lay.kind == "conv2d":
        return helper.make_node("Conv", ins, [out], name=lay.name,
                                kernel_shape=list(lay.weight.shape[2:]),
                                strides=list(lay.stride), pads=list(lay.padding))
    if lay.kind == "linear":
        return helper.make_node("Gemm", ins, [out], name=lay.name, transB=1)
    if lay.kind == "relu":
        return helper.make_node("Relu", ins, [out], name=lay.name)
    if lay.kind in ("avgpool2d", "maxpool2d"):
        op = "AveragePool" if lay.kind == "avgpool2d" else "MaxPool"
        return helper.make_node(op, ins, [out], name=lay.name,
                                kernel_shape=list(lay.kernel), strides=list(lay.stride))
    if lay.kind == "add":
        return helper.make_node("Add", ins, [out], name=lay.name)
    return helper.make_node("Flatten", ins, [out], name=lay.name, axis=1)


def write_onnx(net: Network, path, *, overwrite: bool = False, opset: int = 17) -> Path:
    """Write ``net`` as an ONNX model (Conv, Gemm, Relu, AveragePool, MaxPool, Add, Flatten).

    The spec (with ``history``) is stored in ``metadata_props`` under ``l4theory_spec``;
    initializers keep the network's tensor names.
    """
    onnx, numpy_helper = _onnx()
    from onnx import TensorProto, helper

    inits, nodes, names = [], [], []
    for i, lay in enumerate(net.layers):
        out, ins = f"t{i}_{lay.kind}", ["input" if k < 0 else names[k] for k in net.inputs[i]]
        if lay.kind in ("conv2d", "linear"):
            ins.append(lay.weight_key)
            inits.append(numpy_helper.from_array(np.ascontiguousarray(lay.weight), lay.weight_key))
            if lay.bias is not None:
                ins.append(lay.bias_key)
                inits.append(numpy_helper.from_array(np.ascontiguousarray(lay.bias), lay.bias_key))
        nodes.append(_node(helper, lay, ins, out))
        names.append(out)
    cur = names[-1]
    elem = TensorProto.DOUBLE if any(
        net.layers[i].weight.dtype == np.float64 for i in net.weight_layers) else TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, net.name,
        [helper.make_tensor_value_info("input", elem, ["batch", *net.input_shape])],
        [helper.make_tensor_value_info(cur, elem, ["batch", *net.output_shape])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="l4theory")
    helper.set_model_props(model, {SPEC_KEY: json.dumps(spec_from_network(net))})
    onnx.checker.check_model(model)
    blob = model.SerializeToString()
    return atomic_write(Path(path), lambda fh: fh.write(blob), overwrite)
