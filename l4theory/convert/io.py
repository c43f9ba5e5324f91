"""Read and write network weights: safetensors, npz and ONNX.

Formats
-------
safetensors
    Read and written by a small validated implementation of the format (8-byte
    little-endian header length, a JSON header, raw little-endian tensor bytes): every
    size, offset and dtype is checked against the file length before anything is read.
    The layer sequence is a JSON *spec* stored in the header's ``__metadata__`` under the
    key ``l4theory_spec``.
npz
    NumPy zip archive, always read with ``allow_pickle=False``; the spec is an entry
    ``__l4theory_spec__`` holding UTF-8 JSON bytes as a uint8 array.
ONNX (needs the ``onnx`` package, the ``io`` extra)
    Read: the layer sequence is inferred from the graph (Conv, Gemm, MatMul(+Add), Relu,
    AveragePool, GlobalAveragePool, Flatten, Reshape to (batch, -1), BatchNormalization
    folded into the preceding Conv/Gemm/MatMul, Dropout and Identity skipped, shape
    computations ignored). Anything else raises ``ValueError`` naming the node and op.
    Write: a fresh graph built from the :class:`~l4theory.convert.network.Network` (Conv,
    Gemm, Relu, AveragePool, Flatten; opset 17) with the spec in ``metadata_props``; so an
    adjusted ONNX model keeps the format, with any folded BatchNormalization already
    folded.

For safetensors/npz without an embedded spec, a side-car file ``<stem>.spec.json`` next to
the weights (or an explicit ``spec=`` argument) gives the layer sequence.

The spec (JSON)::

    {"format": "l4theory.network", "version": 1, "name": "fmnist_vgg5",
     "input_shape": [1, 28, 28],
     "layers": [
       {"type": "conv2d", "weight": "features.0.weight", "bias": null,
        "stride": [1, 1], "padding": [1, 1, 1, 1]},
       {"type": "relu"},
       {"type": "avgpool2d", "kernel": [2, 2], "stride": [2, 2]},
       {"type": "flatten"},
       {"type": "linear", "weight": "classifier.1.weight", "bias": null}],
     "history": [{"method": "l4", "r_s": 1.0, ...}]}

``weight``/``bias`` name tensors in the file; ``padding`` is (top, left, bottom, right);
``history`` (optional) records what was done to the weights (e.g. the L4 adjustment).

Writing never replaces an existing file unless ``overwrite=True``: data go to a
temporary file in the target folder that is then linked (or, with ``overwrite``, renamed)
into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .network import LAYER_TYPES, AvgPool2d, Conv2d, Flatten, Linear, Network, ReLU

__all__ = [
    "SPEC_KEY",
    "load_network",
    "network_from_spec",
    "read_npz",
    "read_onnx",
    "read_safetensors",
    "save_network",
    "spec_from_network",
    "write_npz",
    "write_onnx",
    "write_safetensors",
]

SPEC_KEY = "l4theory_spec"
NPZ_SPEC_KEY = "__l4theory_spec__"
#: Refuse safetensors headers above this size (the reference implementation uses 100 MB).
MAX_HEADER_BYTES = 100_000_000
#: Refuse weight files above this size.
MAX_FILE_BYTES = 2**34

_ST_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"), "U8": np.dtype("u1"), "U16": np.dtype("<u2"),
    "U32": np.dtype("<u4"), "U64": np.dtype("<u8"), "BOOL": np.dtype("?"),
    "BF16": np.dtype("<u2"),  # decoded to float32 below
}
_NP_TO_ST = {np.dtype(v).newbyteorder("<"): k for k, v in _ST_DTYPES.items() if k != "BF16"}


# ======================================================================================
# atomic, non-overwriting writes
# ======================================================================================
def _atomic_write(path: Path, write, overwrite: bool) -> Path:
    """Call ``write(fileobj)`` on a temp file, then move it to ``path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile
            except FileExistsError:
                raise FileExistsError(
                    f"{path} exists; pass overwrite=True to replace it"
                ) from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ======================================================================================
# safetensors
# ======================================================================================
def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file, validating it against its length first.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    tensors : dict of str to numpy.ndarray
        Native-endian arrays (BF16 decoded to float32).
    metadata : dict of str to str
        The header's ``__metadata__`` (empty if absent).

    Raises
    ------
    ValueError
        Truncated file, header length beyond the file or above 100 MB, invalid JSON,
        unknown dtype, negative or non-integer shapes, offsets outside the data section,
        a byte count that does not match the shape, or overlapping tensors.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: {size} bytes exceed the limit of {MAX_FILE_BYTES}")
    with open(path, "rb") as fh:
        raw_len = fh.read(8)
        if len(raw_len) < 8:
            raise ValueError(f"{path}: too short for a safetensors file ({size} bytes)")
        (hlen,) = struct.unpack("<Q", raw_len)
        if hlen > MAX_HEADER_BYTES:
            raise ValueError(
                f"{path}: header length {hlen} exceeds the limit of {MAX_HEADER_BYTES} bytes"
            )
        if 8 + hlen > size:
            raise ValueError(
                f"{path}: header length {hlen} runs past the end of the file ({size} bytes; "
                "truncated?)"
            )
        header_bytes = fh.read(hlen)
        data = fh.read()
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ValueError(f"{path}: __metadata__ must map strings to strings")
    spans = []
    for name, info in header.items():
        where = f"{path}: tensor {name!r}"
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{where}: entry must have exactly dtype, shape, data_offsets")
        dt = info["dtype"]
        if dt not in _ST_DTYPES:
            raise ValueError(f"{where}: unsupported dtype {dt!r} (known: {sorted(_ST_DTYPES)})")
        shape, offs = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise ValueError(f"{where}: shape must be a list of non-negative ints, got {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2 and all(
            isinstance(o, int) and not isinstance(o, bool) for o in offs
        )):
            raise ValueError(f"{where}: data_offsets must be [begin, end], got {offs!r}")
        begin, end = offs
        if not 0 <= begin <= end <= len(data):
            raise ValueError(
                f"{where}: data_offsets {offs} outside the data section of {len(data)} bytes "
                "(truncated file or corrupt header)"
            )
        count = 1
        for s in shape:
            count *= s
        nbytes = count * _ST_DTYPES[dt].itemsize
        if nbytes != end - begin:
            raise ValueError(
                f"{where}: shape {shape} of {dt} needs {nbytes} bytes but data_offsets span "
                f"{end - begin}"
            )
        spans.append((begin, end, name, dt, tuple(shape)))
    spans.sort()
    pos = 0
    for begin, end, name, _, _ in spans:
        if begin < pos:
            raise ValueError(f"{path}: tensor {name!r} overlaps the previous tensor")
        pos = end
    tensors = {}
    for begin, end, name, dt, shape in spans:
        arr = np.frombuffer(data, dtype=_ST_DTYPES[dt], count=(end - begin) //
                            _ST_DTYPES[dt].itemsize, offset=begin).reshape(shape)
        if dt == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return tensors, dict(metadata)


def write_safetensors(path, tensors: dict, metadata: dict | None = None, *,
                      overwrite: bool = False) -> Path:
    """Write arrays to a safetensors file.

    Parameters
    ----------
    path : str or os.PathLike
    tensors : dict of str to array_like
        Numeric or bool arrays (stored little-endian, C order).
    metadata : dict of str to str, optional
        Stored as ``__metadata__``.
    overwrite : bool
        Replace an existing file (otherwise :class:`FileExistsError`).

    Returns
    -------
    pathlib.Path
    """
    if metadata is not None and not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ValueError("metadata must map strings to strings")
    header: dict = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for name in sorted(tensors):
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        arr = np.asarray(tensors[name])
        le = arr.dtype.newbyteorder("<") if arr.dtype.byteorder != "|" else arr.dtype
        if le not in _NP_TO_ST:
            raise ValueError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored in safetensors")
        blob = np.ascontiguousarray(arr, dtype=le).tobytes()
        header[name] = {"dtype": _NP_TO_ST[le], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-len(hbytes) % 8)

    def write(fh):
        fh.write(struct.pack("<Q", len(hbytes)))
        fh.write(hbytes)
        for b in blobs:
            fh.write(b)

    return _atomic_write(Path(path), write, overwrite)


# ======================================================================================
# npz
# ======================================================================================
def read_npz(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read an ``.npz`` archive (never unpickling).

    Returns
    -------
    tensors : dict of str to numpy.ndarray
    metadata : dict
        ``{"l4theory_spec": json_text}`` if the archive holds a spec entry.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an npz archive")
            with z:
                tensors = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path}: not a valid npz archive ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{path}: cannot read without unpickling or corrupt ({exc})") from None
    meta = {}
    if NPZ_SPEC_KEY in tensors:
        raw = tensors.pop(NPZ_SPEC_KEY)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"{path}: {NPZ_SPEC_KEY} must be a 1-D uint8 array of UTF-8 JSON")
        try:
            meta[SPEC_KEY] = raw.tobytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: {NPZ_SPEC_KEY} is not UTF-8") from None
    return tensors, meta


def write_npz(path, tensors: dict, metadata: dict | None = None, *,
              overwrite: bool = False) -> Path:
    """Write arrays (and the spec, if ``metadata`` holds one) to an ``.npz`` archive."""
    arrays = {}
    for k, v in tensors.items():
        a = np.asarray(v)
        if a.dtype == object:
            raise ValueError(f"tensor {k!r} has dtype object; refusing to pickle")
        arrays[k] = a
    if metadata and SPEC_KEY in metadata:
        arrays[NPZ_SPEC_KEY] = np.frombuffer(metadata[SPEC_KEY].encode("utf-8"), dtype=np.uint8)
    return _atomic_write(Path(path), lambda fh: np.savez(fh, **arrays), overwrite)


# ======================================================================================
# spec <-> network
# ======================================================================================
def spec_from_network(net: Network) -> dict:
    """The JSON-serialisable spec of ``net`` (tensor names from the layers' keys)."""
    layers = []
    for lay in net.layers:
        d: dict = {"type": lay.kind}
        if lay.kind in ("conv2d", "linear"):
            d["weight"] = lay.weight_key
            d["bias"] = lay.bias_key if lay.bias is not None else None
            if lay.kind == "conv2d":
                d["stride"] = list(lay.stride)
                d["padding"] = list(lay.padding)
        elif lay.kind == "avgpool2d":
            d["kernel"] = list(lay.kernel)
            d["stride"] = list(lay.stride)
        if lay.name != lay.kind:
            d["name"] = lay.name
        layers.append(d)
    spec = {"format": "l4theory.network", "version": 1, "name": net.name,
            "input_shape": list(net.input_shape), "layers": layers}
    for k, v in net.metadata.items():
        if k not in spec:
            spec[k] = v
    return spec


def _tensors_of(net: Network) -> dict:
    out = {}
    for i in net.weight_layers:
        lay = net.layers[i]
        for key, arr in ((lay.weight_key, lay.weight), (lay.bias_key, lay.bias)):
            if arr is None:
                continue
            if key in out:
                raise ValueError(f"two tensors share the name {key!r}")
            out[key] = arr
    return out


def network_from_spec(spec, tensors: dict, *, source: str = "spec") -> Network:
    """Build a :class:`Network` from a spec (dict or JSON text) and named tensors."""
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: spec is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list):
        raise ValueError(f"{source}: spec must be an object with a 'layers' list")
    if spec.get("format", "l4theory.network") != "l4theory.network":
        raise ValueError(f"{source}: spec format {spec.get('format')!r} is not l4theory.network")
    if "input_shape" not in spec:
        raise ValueError(f"{source}: spec lacks 'input_shape'")
    used = set()

    def tensor(key, i):
        if key is None:
            return None
        if key not in tensors:
            raise ValueError(f"{source}: layer {i} names tensor {key!r}, which the file lacks "
                             f"(it holds {sorted(tensors)[:8]})")
        used.add(key)
        return tensors[key]

    layers = []
    for i, d in enumerate(spec["layers"]):
        if not isinstance(d, dict) or d.get("type") not in LAYER_TYPES:
            raise ValueError(f"{source}: layer {i} has unknown type "
                             f"{d.get('type') if isinstance(d, dict) else d!r} "
                             f"(known: {sorted(LAYER_TYPES)})")
        t = d["type"]
        name = d.get("name") or (d["weight"].rsplit(".", 1)[0] if d.get("weight") else t)
        try:
            if t == "conv2d":
                layers.append(Conv2d(tensor(d.get("weight"), i), tensor(d.get("bias"), i),
                                     stride=d.get("stride", 1), padding=d.get("padding", 0),
                                     name=name, weight_key=d.get("weight"),
                                     bias_key=d.get("bias")))
            elif t == "linear":
                layers.append(Linear(tensor(d.get("weight"), i), tensor(d.get("bias"), i),
                                     name=name, weight_key=d.get("weight"),
                                     bias_key=d.get("bias")))
            elif t == "avgpool2d":
                layers.append(AvgPool2d(d.get("kernel", 2), d.get("stride"), name=name))
            elif t == "relu":
                layers.append(ReLU(name=name))
            else:
                layers.append(Flatten(name=name))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source}: layer {i} ({t}): {exc}") from None
    extra = {k: v for k, v in spec.items()
             if k not in ("format", "version", "name", "input_shape", "layers")}
    try:
        return Network(spec["input_shape"], layers, name=spec.get("name", "network"),
                       metadata=extra)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


# ======================================================================================
# ONNX
# ======================================================================================
def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("reading ONNX needs the onnx package: pip install 'l4theory[io]'") \
            from None
    return onnx, numpy_helper


def read_onnx(path) -> Network:
    """Read an ONNX model and infer its layer sequence.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network
        Layers named after the ONNX weight initializers; BatchNormalization folded into
        the preceding Conv/Gemm/MatMul; the spec stored in the model's
        ``metadata_props`` (if any) contributes its ``history``.

    Raises
    ------
    ValueError
        Unsupported op (the message names the node and its op type), a branching graph,
        unsupported attributes (groups, dilations, ceil mode, pooling pads), or
        inconsistent shapes.
    """
    onnx, numpy_helper = _onnx()
    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise ValueError(f"{path}: cannot parse as ONNX ({type(exc).__name__}: {exc})") from None
    g = model.graph
    consts = {init.name: init for init in g.initializer}
    const_arrays: dict = {}

    def const(name):
        if name not in const_arrays:
            if name in consts:
                const_arrays[name] = numpy_helper.to_array(consts[name])
            else:
                return None
        return const_arrays[name]

    inputs = [i for i in g.input if i.name not in consts]
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
    input_shape = tuple(shape)

    data = {inputs[0].name}  # tensors on the data path
    current = inputs[0].name
    layers: list = []
    cur_shape = input_shape
    used_names: set = set()

    def attrs(node):
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def node_id(node):
        return f"node {node.name or '(unnamed)'!r} (op {node.op_type})"

    def lname(key):
        base = key.rsplit(".", 1)[0] if key.endswith((".weight", ".bias")) else key
        name, k = base, 1
        while name in used_names:
            k += 1
            name = f"{base}_{k}"
        used_names.add(name)
        return name

    def append(layer):
        nonlocal cur_shape
        cur_shape = layer.output_shape(cur_shape)
        layers.append(layer)

    for node in g.node:
        data_in = [x for x in node.input if x in data]
        if node.op_type == "Constant":
            for out in node.output:
                const_arrays[out] = numpy_helper.to_array(attrs(node)["value"])
            continue
        if not data_in:
            continue  # computes on constants/shapes only (e.g. a shape for Reshape)
        if node.op_type in ("Shape", "Size"):
            continue  # metadata of the data tensor, not data
        where = f"{path}: {node_id(node)}"
        if data_in != [current] or node.input[0] != current:
            raise ValueError(f"{where}: the graph is not a single chain (input(s) {data_in}, "
                             f"expected {current!r}); only sequential networks are supported")
        a = attrs(node)
        op = node.op_type
        try:
            if op == "Conv":
                if a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
                    raise ValueError("grouped or dilated convolution is not supported")
                if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
                    raise ValueError(f"auto_pad={a['auto_pad']!r} is not supported")
                w = const(node.input[1])
                b = const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
                if w is None or w.ndim != 4:
                    raise ValueError("the weight must be a 4-D initializer")
                append(Conv2d(w, b, stride=a.get("strides", [1, 1]),
                              padding=a.get("pads", [0, 0, 0, 0]), name=lname(node.input[1]),
                              weight_key=node.input[1],
                              bias_key=node.input[2] if b is not None else None))
            elif op == "Gemm":
                if a.get("transA", 0):
                    raise ValueError("transA=1 is not supported")
                w = const(node.input[1])
                if w is None or w.ndim != 2:
                    raise ValueError("B must be a 2-D initializer")
                w = w if a.get("transB", 0) else w.T
                w = w * a.get("alpha", 1.0)
                b = const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
                if b is not None:
                    b = np.broadcast_to(b * a.get("beta", 1.0), (w.shape[0],)).copy()
                append(Linear(w, b, name=lname(node.input[1]), weight_key=node.input[1],
                              bias_key=node.input[2] if b is not None else None))
            elif op == "MatMul":
                w = const(node.input[1])
                if w is None or w.ndim != 2:
                    raise ValueError("the second input must be a 2-D initializer")
                append(Linear(w.T, None, name=lname(node.input[1]), weight_key=node.input[1]))
            elif op == "Add":
                b = const(node.input[1])
                last = layers[-1] if layers else None
                if b is None or last is None or last.kind not in ("linear", "conv2d") \
                        or layers_since_weight(layers) != 0:
                    raise ValueError("only a constant bias added right after MatMul/Gemm/Conv "
                                     "is supported")
                n_out = last.weight.shape[0]
                bb = np.asarray(b, dtype=np.float64)
                if bb.size == 1 or bb.shape in ((n_out,), (1, n_out)) or (
                        last.kind == "conv2d" and bb.size == n_out):
                    bb = np.broadcast_to(bb.reshape(-1), (n_out,))
                else:
                    raise ValueError(f"bias of shape {b.shape} does not fit {n_out} outputs")
                last.bias = ((last.bias if last.bias is not None else 0) + bb).astype(
                    last.weight.dtype)
                last.bias_key = last.bias_key or node.input[1]
            elif op == "BatchNormalization":
                last = layers[-1] if layers else None
                if last is None or last.kind not in ("linear", "conv2d"):
                    raise ValueError("BatchNormalization must follow a Conv, Gemm or MatMul "
                                     "to be folded")
                if len(node.output) > 1 and any(node.output[1:]):
                    raise ValueError("training-mode BatchNormalization is not supported")
                gamma, beta, mean, var = (const(x) for x in node.input[1:5])
                if any(v is None for v in (gamma, beta, mean, var)):
                    raise ValueError("scale, B, mean and var must be initializers")
                k = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
                shape = (-1,) + (1,) * (last.weight.ndim - 1)
                dtype = last.weight.dtype
                last.weight = (last.weight * k.reshape(shape)).astype(dtype)
                b0 = last.bias if last.bias is not None else 0.0
                last.bias = ((b0 - mean) * k + beta).astype(dtype)
                last.bias_key = last.bias_key or f"{last.name}.bias"
            elif op == "Relu":
                append(ReLU(name=f"relu{len(layers)}"))
            elif op == "AveragePool":
                if a.get("ceil_mode", 0) or any(a.get("pads", [0]) ) \
                        or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID",
                                                                "VALID"):
                    raise ValueError("padded or ceil-mode average pooling is not supported")
                k = a["kernel_shape"]
                append(AvgPool2d(k, a.get("strides", [1, 1]), name=f"avgpool{len(layers)}"))
            elif op == "GlobalAveragePool":
                if len(cur_shape) != 3:
                    raise ValueError(f"needs a (C, H, W) input, receives {cur_shape}")
                append(AvgPool2d(cur_shape[1:], cur_shape[1:], name=f"avgpool{len(layers)}"))
            elif op == "Flatten":
                if a.get("axis", 1) != 1:
                    raise ValueError(f"axis={a.get('axis')} is not supported (only 1)")
                if len(cur_shape) > 1:
                    append(Flatten(name=f"flatten{len(layers)}"))
            elif op == "Reshape":
                target = const(node.input[1])
                n = int(np.prod(cur_shape))
                ok = target is None or (target.ndim == 1 and len(target) == 2 and (
                    int(target[1]) == n or (int(target[1]) == -1 and int(target[0]) == 0)))
                if not ok:
                    raise ValueError(f"only a reshape to (batch, -1) is supported, got "
                                     f"{target.tolist()}")
                if target is None:
                    # shape computed at run time (x.view(x.size(0), -1)): check by inference
                    out_rank = _inferred_rank(onnx, model, node.output[0])
                    if out_rank != 2:
                        raise ValueError("only a reshape to (batch, -1) is supported")
                if len(cur_shape) > 1:
                    append(Flatten(name=f"flatten{len(layers)}"))
            elif op in ("Dropout", "Identity"):
                pass
            else:
                raise ValueError("unsupported operation (supported: Conv, Gemm, MatMul, Add "
                                 "(bias), Relu, AveragePool, GlobalAveragePool, Flatten, "
                                 "Reshape, BatchNormalization, Dropout, Identity)")
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        data.add(node.output[0])
        current = node.output[0]
    outputs = [o.name for o in g.output]
    if current not in outputs:
        raise ValueError(f"{path}: the chain ends at {current!r}, not at a graph output {outputs}")
    meta = {p.key: p.value for p in model.metadata_props}
    extra = {}
    if SPEC_KEY in meta:
        try:
            extra = {k: v for k, v in json.loads(meta[SPEC_KEY]).items()
                     if k not in ("format", "version", "name", "input_shape", "layers")}
        except (json.JSONDecodeError, AttributeError):
            extra = {}
    try:
        return Network(input_shape, layers, name=g.name or path.stem, metadata=extra)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def layers_since_weight(layers) -> int:
    """Number of layers after the last weight layer (0 if the last layer has weights)."""
    for k, lay in enumerate(reversed(layers)):
        if lay.kind in ("conv2d", "linear"):
            return k
    return len(layers)


def _inferred_rank(onnx, model, name):
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - any failure means: unknown
        return None
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    return None


def write_onnx(net: Network, path, *, overwrite: bool = False, opset: int = 17) -> Path:
    """Write ``net`` as an ONNX model (Conv, Gemm, Relu, AveragePool, Flatten).

    The spec (with ``history``) is stored in ``metadata_props`` under ``l4theory_spec``;
    initializers keep the network's tensor names.
    """
    onnx, numpy_helper = _onnx()
    from onnx import TensorProto, helper

    inits, nodes = [], []
    cur = "input"
    for i, lay in enumerate(net.layers):
        out = f"t{i}_{lay.kind}"
        if lay.kind in ("conv2d", "linear"):
            ins = [cur, lay.weight_key]
            inits.append(numpy_helper.from_array(np.ascontiguousarray(lay.weight), lay.weight_key))
            if lay.bias is not None:
                ins.append(lay.bias_key)
                inits.append(numpy_helper.from_array(np.ascontiguousarray(lay.bias), lay.bias_key))
            if lay.kind == "conv2d":
                nodes.append(helper.make_node(
                    "Conv", ins, [out], name=lay.name, kernel_shape=list(lay.weight.shape[2:]),
                    strides=list(lay.stride), pads=list(lay.padding)))
            else:
                nodes.append(helper.make_node("Gemm", ins, [out], name=lay.name, transB=1))
        elif lay.kind == "relu":
            nodes.append(helper.make_node("Relu", [cur], [out], name=lay.name))
        elif lay.kind == "avgpool2d":
            nodes.append(helper.make_node("AveragePool", [cur], [out], name=lay.name,
                                          kernel_shape=list(lay.kernel),
                                          strides=list(lay.stride)))
        else:
            nodes.append(helper.make_node("Flatten", [cur], [out], name=lay.name, axis=1))
        cur = out
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
    return _atomic_write(Path(path), lambda fh: fh.write(blob), overwrite)


# ======================================================================================
# front door
# ======================================================================================
_FORMATS = {".safetensors": "safetensors", ".npz": "npz", ".onnx": "onnx"}


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in _FORMATS.values():
            raise ValueError(f"format must be one of {sorted(_FORMATS.values())}, got {fmt!r}")
        return fmt
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot tell the format from the suffix {path.suffix!r} "
                         f"(known: {', '.join(_FORMATS)}); pass format=") from None


def load_network(path, *, spec=None, format: str | None = None) -> Network:  # noqa: A002
    """Load a network from safetensors, npz or ONNX.

    Parameters
    ----------
    path : str or os.PathLike
    spec : dict, str or os.PathLike, optional
        The layer spec for safetensors/npz files (a dict, JSON text, or a path to a
        JSON file). By default the embedded spec, else ``<stem>.spec.json`` next to it.
    format : {"safetensors", "npz", "onnx"}, optional
        By default from the suffix.

    Returns
    -------
    Network
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = _format_of(path, format)
    if fmt == "onnx":
        if spec is not None:
            raise ValueError("spec= applies to safetensors/npz; ONNX carries its own graph")
        return read_onnx(path)
    tensors, meta = read_safetensors(path) if fmt == "safetensors" else read_npz(path)
    source = str(path)
    if spec is None:
        if SPEC_KEY in meta:
            spec = meta[SPEC_KEY]
        else:
            side = path.with_name(path.stem + ".spec.json")
            if not side.is_file():
                raise ValueError(f"{path}: no embedded l4theory spec and no side-car {side.name};"
                                 " pass spec= (see docs/conversion.md for the format)")
            spec, source = side.read_text(encoding="utf-8"), str(side)
    elif isinstance(spec, os.PathLike) or (isinstance(spec, str) and not spec.lstrip()
                                            .startswith("{")):
        source = str(spec)
        spec = Path(spec).read_text(encoding="utf-8")
    return network_from_spec(spec, tensors, source=source)


def save_network(net: Network, path, *, format: str | None = None,  # noqa: A002
                 overwrite: bool = False, provenance: dict | None = None) -> Path:
    """Write ``net`` (weights plus embedded spec) as safetensors, npz or ONNX.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
    format : {"safetensors", "npz", "onnx"}, optional
        By default from the suffix.
    overwrite : bool
        Replace an existing file (otherwise :class:`FileExistsError`, nothing written).
    provenance : dict, optional
        JSON-serialisable record of what was done (e.g. ``{"method": "l4", "r_s": 1.0,
        "v_th0": ..., "scales": ...}``), appended to the spec's ``history`` list.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    fmt = _format_of(path, format)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if provenance is not None:
        try:
            json.dumps(provenance)
        except TypeError as exc:
            raise ValueError(f"provenance must be JSON-serialisable ({exc})") from None
        net = net.copy()
        net.metadata = dict(net.metadata)
        net.metadata["history"] = [*net.metadata.get("history", []), provenance]
    spec = spec_from_network(net)
    if fmt == "onnx":
        return write_onnx(net, path, overwrite=overwrite)
    meta = {SPEC_KEY: json.dumps(spec)}
    writer = write_safetensors if fmt == "safetensors" else write_npz
    return writer(path, _tensors_of(net), meta, overwrite=overwrite)
