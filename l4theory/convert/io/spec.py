"""The layer spec: a JSON description of a network's layers that names tensors in a file.

::

    {"format": "l4theory.network", "version": 1, "name": "fmnist_vgg5",
     "input_shape": [1, 28, 28],
     "layers": [
       {"type": "conv2d", "weight": "features.0.weight", "bias": null,
        "stride": [1, 1], "padding": [1, 1, 1, 1]},
       {"type": "batchnorm", "weight": "features.1.weight", "bias": "features.1.bias",
        "running_mean": "features.1.running_mean", "running_var": "features.1.running_var",
        "eps": 1e-05},
       {"type": "relu"},
       {"type": "avgpool2d", "kernel": [2, 2], "stride": [2, 2]},
       {"type": "maxpool2d", "kernel": [2, 2], "stride": [2, 2]},
       {"type": "flatten"},
       {"type": "linear", "weight": "classifier.1.weight", "bias": null}],
     "history": [{"method": "l4", "r_s": 1.0, ...}]}

``weight``/``bias`` name tensors in the file; ``padding`` is (top, left, bottom, right);
a ``batchnorm`` layer (PyTorch ``BatchNorm1d``/``BatchNorm2d`` in eval mode) must follow a
``conv2d`` or ``linear`` layer and is folded into it on loading; tensors the spec does not
name (such as ``num_batches_tracked``) are ignored; other keys (``history``,
``input_range``) go to ``Network.metadata``.

Residual networks (spec version 2). A layer may name its inputs: ``"inputs": [k]`` or,
for ``{"type": "add"}``, ``"inputs": [k, m]``, where ``k`` and ``m`` index the spec's own
``layers`` list (a ``batchnorm`` entry stands for the layer it is folded into) and ``-1``
is the network input. Without ``inputs`` a layer takes the previous layer's output, so a
version-1 spec (a chain) reads unchanged; the writer emits version 2 only for graphs::

    {"type": "conv2d", "weight": "block.conv2.weight", ...},          # 7
    {"type": "add", "inputs": [7, 3]},                                # main + shortcut
    {"type": "relu"}
"""

from __future__ import annotations

import dataclasses
import json
import numbers

import numpy as np

from ..network import (
    LAYER_TYPES,
    Add,
    AvgPool2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Network,
    ReLU,
)

__all__ = [
    "SPEC_KEY",
    "SPEC_LAYER_TYPES",
    "fold_batchnorm",
    "network_from_spec",
    "spec_from_network",
    "spec_layer_name",
    "tensors_of",
]

#: Key of the spec (JSON text) in safetensors ``__metadata__`` and ONNX ``metadata_props``.
SPEC_KEY = "l4theory_spec"
#: Layer types a spec may hold: the network's, plus ``batchnorm`` (folded on loading).
SPEC_LAYER_TYPES = (*sorted(LAYER_TYPES), "batchnorm")
_SPEC_FIELDS = ("format", "version", "name", "input_shape", "layers")


def spec_layer_name(d: dict) -> str:
    """A spec layer's name.

    ``name`` if given, else its weight key without the last dotted part
    (``"features.0.weight"`` -> ``"features.0"``), else its type.
    """
    if d.get("name"):
        return str(d["name"])
    if isinstance(d.get("weight"), str) and d.get("type") != "batchnorm":
        return d["weight"].rsplit(".", 1)[0]
    return str(d.get("type"))


def spec_from_network(net: Network) -> dict:
    """The JSON-serialisable spec of ``net`` (tensor names from the layers' keys)."""
    layers = []
    for i, lay in enumerate(net.layers):
        d: dict = {"type": lay.kind}
        if lay.kind in ("conv2d", "linear"):
            d["weight"] = lay.weight_key
            d["bias"] = lay.bias_key if lay.bias is not None else None
            if lay.kind == "conv2d":
                d["stride"] = list(lay.stride)
                d["padding"] = list(lay.padding)
        elif lay.kind in ("avgpool2d", "maxpool2d"):
            d["kernel"] = list(lay.kernel)
            d["stride"] = list(lay.stride)
        if lay.name != lay.kind:
            d["name"] = lay.name
        if net.inputs[i] != (i - 1,):
            d["inputs"] = list(net.inputs[i])
        layers.append(d)
    spec = {"format": "l4theory.network", "version": 1 if net.is_chain else 2, "name": net.name,
            "input_shape": list(net.input_shape), "layers": layers}
    for k, v in net.metadata.items():
        if k not in spec:
            spec[k] = v
    return spec


def tensors_of(net: Network) -> dict:
    """``{tensor key: array}`` of every weight and bias of ``net``; refuse shared keys."""
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


def _bn_vector(name: str, value, n_out: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size != n_out or arr.ndim > 2 or (arr.ndim == 2 and arr.shape[0] != 1):
        raise ValueError(f"batchnorm {name} has shape {arr.shape}; expected ({n_out},)")
    arr = arr.reshape(n_out)
    if not np.isfinite(arr).all():
        raise ValueError(f"batchnorm {name} contains NaN or infinite values")
    return arr


def fold_batchnorm(layer, mean, var, weight=None, bias=None, eps: float = 1e-5):
    """Fold an eval-mode batch normalization into the conv/linear layer before it.

    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` applied to the layer's output
    equals the layer with ``w' = w * k`` (per output row) and ``b' = (b - mean) * k +
    bias``, ``k = weight / sqrt(var + eps)``; computed in float64, stored in the layer's
    dtype.

    Parameters
    ----------
    layer : Conv2d or Linear
        The layer whose output is normalised (``n_out`` output channels or units).
    mean, var : array_like, shape (n_out,)
        Running mean and variance; ``var + eps`` must be > 0.
    weight, bias : array_like, shape (n_out,), optional
        The affine scale (default 1) and shift (default 0).
    eps : float
        Added to the variance, >= 0.

    Returns
    -------
    Conv2d or Linear
        A new layer (same name and keys; a bias is added if there was none).
    """
    if getattr(layer, "kind", None) not in ("conv2d", "linear"):
        raise ValueError("batch normalization must follow a conv2d or linear layer to be "
                         "folded")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps >= 0 \
            or not np.isfinite(eps):
        raise ValueError(f"batchnorm eps must be a finite number >= 0, got {eps!r}")
    n = layer.weight.shape[0]
    mean, var = _bn_vector("running_mean", mean, n), _bn_vector("running_var", var, n)
    gamma = np.ones(n) if weight is None else _bn_vector("weight", weight, n)
    beta = np.zeros(n) if bias is None else _bn_vector("bias", bias, n)
    if not (var + eps > 0).all():
        raise ValueError(f"batchnorm running_var + eps must be > 0 (eps={eps})")
    k = gamma / np.sqrt(var + float(eps))
    b0 = np.zeros(n) if layer.bias is None else layer.bias.astype(np.float64)
    dtype = layer.weight.dtype
    w = layer.weight.astype(np.float64) * k.reshape((-1,) + (1,) * (layer.weight.ndim - 1))
    return dataclasses.replace(layer, weight=w.astype(dtype),
                               bias=((b0 - mean) * k + beta).astype(dtype),
                               bias_key=layer.bias_key or f"{layer.name}.bias")


def _build_layer(t: str, d: dict, tensor, name: str):
    if t == "conv2d":
        return Conv2d(tensor(d.get("weight")), tensor(d.get("bias")),
                      stride=d.get("stride", 1), padding=d.get("padding", 0), name=name,
                      weight_key=d.get("weight"), bias_key=d.get("bias"))
    if t == "linear":
        return Linear(tensor(d.get("weight")), tensor(d.get("bias")), name=name,
                      weight_key=d.get("weight"), bias_key=d.get("bias"))
    if t in ("avgpool2d", "maxpool2d"):
        cls = AvgPool2d if t == "avgpool2d" else MaxPool2d
        return cls(d.get("kernel", 2), d.get("stride"), name=name)
    if t == "add":
        return Add(name=name)
    return ReLU(name=name) if t == "relu" else Flatten(name=name)


def _spec_inputs(d: dict, i: int, node: list, t: str):
    """A spec layer's ``inputs`` mapped from spec indices to network layer indices."""
    src = d.get("inputs")
    if src is None:
        if t == "add":
            raise ValueError("an add layer needs 'inputs': [main, shortcut]")
        return None
    if not isinstance(src, list) or not all(isinstance(k, int) and not isinstance(k, bool)
                                            for k in src):
        raise ValueError(f"inputs must be a list of spec layer indices, got {src!r}")
    if any(not -1 <= k < i for k in src):
        raise ValueError(f"inputs {src} must index earlier spec layers (or -1, the input)")
    return tuple(-1 if k < 0 else node[k] for k in src)


def _fold_spec_batchnorm(layers: list, d: dict, tensor):
    if not layers:
        raise ValueError("batch normalization must follow a conv2d or linear layer")
    for key in ("running_mean", "running_var"):
        if not isinstance(d.get(key), str):
            raise ValueError(f"needs {key!r}, the name of a tensor (got {d.get(key)!r})")
    return fold_batchnorm(layers[-1], tensor(d["running_mean"]), tensor(d["running_var"]),
                          tensor(d.get("weight")), tensor(d.get("bias")),
                          eps=d.get("eps", 1e-5))


def _parse_spec(spec, source: str) -> dict:
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{source}: spec is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list):
        raise ValueError(f"{source}: spec must be an object with a 'layers' list")
    if spec.get("format", "l4theory.network") != "l4theory.network":
        raise ValueError(f"{source}: spec format {spec.get('format')!r} is not l4theory.network")
    if "input_shape" not in spec:
        raise ValueError(f"{source}: spec lacks 'input_shape'")
    return spec


def network_from_spec(spec, tensors: dict, *, source: str = "spec") -> Network:
    """Build a :class:`Network` from a spec (dict or JSON text) and named tensors.

    Parameters
    ----------
    spec : dict or str
        The layer spec (see the module docstring).
    tensors : dict of str to numpy.ndarray
        The file's tensors; those the spec does not name are ignored.
    source : str
        Where the spec comes from, for error messages.

    Returns
    -------
    Network
        ``batchnorm`` layers folded into the layer before them.
    """
    spec = _parse_spec(spec, source)

    def tensor(key):
        if key is None:
            return None
        if not isinstance(key, str) or key not in tensors:
            raise ValueError(f"names tensor {key!r}, which the file lacks "
                             f"(it holds {sorted(tensors)[:8]})")
        return tensors[key]

    if spec.get("version", 1) not in (1, 2):
        raise ValueError(f"{source}: spec version {spec.get('version')!r} is not 1 or 2")
    layers: list = []
    inputs: list = []
    node: list = []  # spec layer index -> network layer index
    for i, d in enumerate(spec["layers"]):
        t = d.get("type") if isinstance(d, dict) else None
        if not isinstance(t, str) or t not in SPEC_LAYER_TYPES:
            raise ValueError(f"{source}: layer {i} has unknown type "
                             f"{(t if isinstance(d, dict) else d)!r} (known: "
                             f"{list(SPEC_LAYER_TYPES)})")
        try:
            if t == "batchnorm":
                if d.get("inputs") not in (None, [i - 1]):
                    raise ValueError("a batchnorm must take the layer just before it")
                layers[-1:] = [_fold_spec_batchnorm(layers, d, tensor)]
            else:
                inputs.append(_spec_inputs(d, i, node, t))
                layers.append(_build_layer(t, d, tensor, spec_layer_name(d)))
            node.append(len(layers) - 1)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{source}: layer {i} ({t}): {exc}") from None
    extra = {k: v for k, v in spec.items() if k not in _SPEC_FIELDS}
    try:
        return Network(spec["input_shape"], layers, name=spec.get("name", "network"),
                       metadata=extra, inputs=inputs)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: {exc}") from None
