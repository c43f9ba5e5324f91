"""PyTorch modules in and out: :func:`from_torch` and :func:`to_torch` (optional ``torch``).

``from_torch`` traces the module with ``torch.fx`` (symbolic tracing: no data flows, so
the module's code must not branch on tensor values) and maps every node of the traced
graph to a layer of a :class:`~l4theory.convert.network.Network`:

- modules: ``Conv2d`` (one group, no dilation, zero padding), ``Linear``,
  ``BatchNorm1d``/``BatchNorm2d`` (running statistics, folded into the conv/linear layer
  before it), ``ReLU``, ``AvgPool2d`` and ``MaxPool2d`` (no padding, no ceil mode),
  ``AdaptiveAvgPool2d`` to a size that divides the input, ``Flatten`` (from dim 1),
  ``Dropout`` (all kinds; inactive in eval mode) and ``Identity`` (skipped);
- functions and methods: ``+`` / ``torch.add`` of two activations (a residual
  :class:`~l4theory.convert.network.Add`), ``F.relu`` / ``torch.relu`` / ``.relu()``,
  ``torch.flatten(x, 1)`` / ``.flatten(1)``, ``F.dropout``.

Anything else raises ``ValueError`` in one line naming the first unsupported operation
and its module path (for example ``from_torch: unsupported operation LSTM at 'rnn'``).
torch.fx was chosen over the ONNX export because it keeps module paths, so the
network's tensor names are the module's ``state_dict`` keys and :func:`to_torch` can
write results back; the ONNX route remains (:func:`~l4theory.convert.io.read_onnx` of
``torch.onnx.export``) and the tests check that both give the same forward pass.

``to_torch`` writes a network back into the module it came from: weights and biases
(un-folding batch norm: the conv keeps ``W / k`` and the batch norm's shift absorbs the
bias, ``k = gamma / sqrt(var + eps)``) and, optionally, one firing threshold per spiking
layer as a buffer ``v_th`` on the module that owns it.
"""

from __future__ import annotations

import operator

import numpy as np

from ..network import Add, AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, Network, ReLU

__all__ = ["from_torch", "to_torch"]

_SUPPORTED = ("Conv2d, Linear, BatchNorm1d/2d, ReLU, AvgPool2d, MaxPool2d, AdaptiveAvgPool2d, "
              "Flatten, Dropout, Identity, add, relu, flatten")


def _torch():
    try:
        import torch
        import torch.fx
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("from_torch/to_torch need PyTorch: pip install 'l4theory[torch]'") \
            from None
    return torch


class _Build:
    """Layers, their inputs and shapes, built node by node from the traced graph."""

    def __init__(self, input_shape):
        self.layers: list = []
        self.inputs: list = []
        self.shapes: list = []
        self.input_shape = tuple(input_shape)
        self.node_of: dict = {}
        self.bn_of: dict = {}  # weight layer index -> batch-norm module path

    def shape(self, k: int) -> tuple:
        return self.input_shape if k < 0 else self.shapes[k]

    def append(self, layer, src: tuple) -> int:
        self.shapes.append(tuple(layer.output_shape(*(self.shape(k) for k in src))))
        self.inputs.append(tuple(src))
        self.layers.append(layer)
        return len(self.layers) - 1


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _conv(m, path):
    if m.groups != 1 or _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
        raise ValueError("grouped, dilated or non-zero-padded Conv2d")
    if isinstance(m.padding, str):
        if m.padding != "valid":
            raise ValueError(f"Conv2d padding={m.padding!r} (only numbers or 'valid')")
        pad = (0, 0)
    else:
        pad = _pair(m.padding)
    bias = None if m.bias is None else m.bias.detach().cpu().numpy()
    return Conv2d(m.weight.detach().cpu().numpy(), bias, stride=_pair(m.stride), padding=pad,
                  name=path, weight_key=f"{path}.weight",
                  bias_key=None if bias is None else f"{path}.bias")


def _pool(m, path, b: _Build, src):
    torch = _torch()
    nn = torch.nn
    if isinstance(m, nn.AdaptiveAvgPool2d):
        shp = b.shape(src)
        out = _pair(m.output_size)
        if len(shp) != 3 or None in out or shp[1] % out[0] or shp[2] % out[1]:
            raise ValueError(f"AdaptiveAvgPool2d to {m.output_size} of an input {shp}")
        k = (shp[1] // out[0], shp[2] // out[1])
        return AvgPool2d(k, k, name=path)
    if _pair(m.padding) != (0, 0) or m.ceil_mode:
        raise ValueError(f"padded or ceil-mode {type(m).__name__}")
    if isinstance(m, nn.MaxPool2d):
        if _pair(m.dilation) != (1, 1) or m.return_indices:
            raise ValueError("dilated MaxPool2d or one that returns indices")
        return MaxPool2d(m.kernel_size, m.stride or m.kernel_size, name=path)
    if m.divisor_override is not None:
        raise ValueError("AvgPool2d with divisor_override")
    return AvgPool2d(m.kernel_size, m.stride or m.kernel_size, name=path)


def _fold_bn(m, path, b: _Build, src: int) -> int:
    from .spec import fold_batchnorm

    if src < 0 or b.layers[src].kind not in ("conv2d", "linear") or src != len(b.layers) - 1 \
            or src in b.bn_of:
        raise ValueError("a batch norm must directly follow the conv/linear layer it is folded "
                         "into")
    if m.training or not m.track_running_stats:
        raise ValueError("batch norm in training mode or without running statistics "
                         "(call module.eval())")
    arr = (lambda t: None if t is None else t.detach().cpu().numpy())  # noqa: E731
    b.layers[src] = fold_batchnorm(b.layers[src], arr(m.running_mean), arr(m.running_var),
                                   arr(m.weight), arr(m.bias), eps=float(m.eps))
    b.bn_of[src] = path
    return src


def _module_layer(m, path, b: _Build, src: int):
    """The index of the node for ``call_module`` ``m``; a new layer or ``src`` (skipped)."""
    nn = _torch().nn
    if isinstance(m, nn.Conv2d):
        return b.append(_conv(m, path), (src,))
    if isinstance(m, nn.Linear):
        bias = None if m.bias is None else m.bias.detach().cpu().numpy()
        return b.append(Linear(m.weight.detach().cpu().numpy(), bias, name=path,
                               weight_key=f"{path}.weight",
                               bias_key=None if bias is None else f"{path}.bias"), (src,))
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return _fold_bn(m, path, b, src)
    if isinstance(m, nn.ReLU):
        return b.append(ReLU(name=path), (src,))
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d)):
        return b.append(_pool(m, path, b, src), (src,))
    if isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ValueError(f"Flatten(start_dim={m.start_dim}, end_dim={m.end_dim})")
        return src if len(b.shape(src)) == 1 else b.append(Flatten(name=path), (src,))
    if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)):
        return src
    return None


def _function_layer(node, b: _Build, data: list, path: str):
    """The node index for a ``call_function``/``call_method`` node, or None if unsupported."""
    torch = _torch()
    F = torch.nn.functional
    t = node.target
    extra = [a for a in list(node.args[1:]) + list(node.kwargs.values())
             if not isinstance(a, torch.fx.Node)]
    if t in (operator.add, operator.iadd, torch.add, "add", "add_") and len(data) == 2 \
            and not node.kwargs:
        return b.append(Add(name=path or "add"), tuple(data))
    if t in (F.relu, torch.relu, "relu", "relu_") and len(data) == 1:
        return b.append(ReLU(name=path or "relu"), (data[0],))
    if t in (torch.flatten, "flatten") and len(data) == 1 and extra in ([1], [1, -1]):
        return data[0] if len(b.shape(data[0])) == 1 else \
            b.append(Flatten(name=path or "flatten"), (data[0],))
    if t in (F.dropout, "dropout") and len(data) == 1:
        return data[0]
    return None


def _op_name(node, module) -> str:
    if node.op == "call_module":
        return type(module.get_submodule(node.target)).__name__
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _node_path(node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    return ".".join(str(v[0]) if isinstance(v, tuple) else str(k)
                    for k, v in list(stack.items())[-1:]) or node.name


def _trace(module):
    torch = _torch()
    try:
        return torch.fx.symbolic_trace(module)
    except Exception as exc:  # noqa: BLE001 - torch.fx raises many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"from_torch: torch.fx cannot trace {type(module).__name__} "
                         f"({type(exc).__name__}: {first})") from None


def _build(module, input_shape) -> _Build:
    gm = _trace(module)
    b = _Build(input_shape)
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ValueError(f"from_torch: the module must take one input, takes {len(placeholders)}")
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            b.node_of[node] = -1
            continue
        if node.op == "output":
            out = node.args[0]
            if not isinstance(out, torch_node_type()) or b.node_of.get(out) != len(b.layers) - 1:
                raise ValueError("from_torch: the module must return the output of its last "
                                 "layer (one tensor)")
            continue
        data = [b.node_of[a] for a in node.all_input_nodes if a in b.node_of]
        path = _node_path(node)
        idx = None
        try:
            if node.op == "call_module" and len(data) == 1:
                idx = _module_layer(gm.get_submodule(node.target), path, b, data[0])
            elif node.op in ("call_function", "call_method") and data:
                idx = _function_layer(node, b, data, "" if path == node.name else path)
        except ValueError as exc:
            raise ValueError(f"from_torch: unsupported {_op_name(node, gm)} at '{path}': "
                             f"{exc}") from None
        if idx is None:
            raise ValueError(f"from_torch: unsupported operation {_op_name(node, gm)} at "
                             f"'{path}' (supported: {_SUPPORTED})")
        b.node_of[node] = idx
    return b


def torch_node_type():
    """``torch.fx.Node`` (imported lazily)."""
    return _torch().fx.Node


def from_torch(module, input_shape, *, name: str | None = None) -> Network:
    """Trace a PyTorch module (in eval mode) into a :class:`Network`.

    Parameters
    ----------
    module : torch.nn.Module
        The network; batch norms must be in eval mode (``module.eval()``) so that their
        running statistics are what the module computes.
    input_shape : tuple of int
        One sample's shape without the batch axis, e.g. ``(1, 28, 28)``.
    name : str, optional
        The network's name (default: the module's class name).

    Returns
    -------
    Network
        Tensor names (``weight_key``/``bias_key``) are the module's ``state_dict`` keys
        (a folded batch norm's bias is named after the conv: ``<conv path>.bias``).

    Raises
    ------
    ValueError
        In one line, naming the first unsupported operation and its module path, or why
        the module cannot be traced.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    b = _build(module, input_shape)
    if not b.layers:
        raise ValueError("from_torch: the module has no layers")
    return Network(b.input_shape, b.layers, name=name or type(module).__name__,
                   inputs=b.inputs)


def _thresholds_of(net: Network, thresholds):
    if thresholds is None:
        hist = net.metadata.get("history") or []
        last = hist[-1] if hist and isinstance(hist[-1], dict) else {}
        thresholds = last.get("thresholds")
        if thresholds is None:
            return None
    th = np.asarray(thresholds, dtype=np.float64)
    if th.shape != (len(net.spiking_layers),) or not (th > 0).all():
        raise ValueError(f"thresholds must be {len(net.spiking_layers)} values > 0 (one per "
                         f"spiking layer), got {thresholds!r}")
    return th


def _write_layer(torch, mod, bn, lay) -> None:
    w = torch.as_tensor(np.asarray(lay.weight, np.float64))
    b = None if lay.bias is None else torch.as_tensor(np.asarray(lay.bias, np.float64))
    if tuple(mod.weight.shape) != tuple(lay.weight.shape):
        raise ValueError(f"to_torch: layer '{lay.name}' has weight {lay.weight.shape}, the "
                         f"module {tuple(mod.weight.shape)}")
    with torch.no_grad():
        if bn is None:
            if b is not None and mod.bias is None and bool((b != 0).any()):
                raise ValueError(f"to_torch: layer '{lay.name}' has a bias, its module none")
            mod.weight.copy_(w.to(mod.weight.dtype))
            if mod.bias is not None:
                mod.bias.copy_((b if b is not None else torch.zeros_like(mod.bias))
                               .to(mod.bias.dtype))
            return
        var = bn.running_var.double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
        k = gamma / torch.sqrt(var + bn.eps)
        if bool((k == 0).any()) or bn.bias is None:
            raise ValueError(f"to_torch: cannot un-fold the batch norm after '{lay.name}' "
                             "(a zero scale or no affine shift)")
        shape = (-1,) + (1,) * (w.ndim - 1)
        mod.weight.copy_((w / k.reshape(shape)).to(mod.weight.dtype))
        b0 = mod.bias.double() if mod.bias is not None else torch.zeros_like(k)
        b_net = b if b is not None else torch.zeros_like(k)
        bn.bias.copy_((b_net - (b0 - bn.running_mean.double()) * k).to(bn.bias.dtype))


def to_torch(net: Network, module, thresholds=None):
    """Write ``net``'s weights (and thresholds) back into the module it was traced from.

    Parameters
    ----------
    net : Network
        A network from :func:`from_torch` of ``module`` (or of the same architecture),
        typically adjusted (e.g. by ``l4theory adjust``).
    module : torch.nn.Module
        Modified in place.
    thresholds : array_like, shape (len(net.spiking_layers),), optional
        One firing threshold per spiking layer; default: the ``thresholds`` of the last
        ``history`` entry in ``net.metadata`` (written by ``l4theory adjust``), if any.
        Each is stored as a 0-d float buffer ``v_th`` on the module that owns the
        spiking layer (so ``module.state_dict()`` carries them).

    Returns
    -------
    torch.nn.Module
        ``module``.

    Raises
    ------
    ValueError
        If the module's structure does not match the network (names, shapes), or a batch
        norm cannot be un-folded.
    """
    torch = _torch()
    ref = _build(module, net.input_shape)
    if [lay.kind for lay in ref.layers] != [lay.kind for lay in net.layers] \
            or ref.inputs != net.inputs:
        raise ValueError("to_torch: the module's traced structure differs from the network's")
    th = _thresholds_of(net, thresholds)
    for i in net.weight_layers:
        lay, path = net.layers[i], ref.layers[i].name
        bn = module.get_submodule(ref.bn_of[i]) if i in ref.bn_of else None
        _write_layer(torch, module.get_submodule(path), bn, lay)
    if th is not None:
        for i, v in zip(net.spiking_layers, th, strict=True):
            owner = module.get_submodule(ref.layers[i].name)
            if "v_th" in owner._buffers:
                owner._buffers["v_th"] = torch.tensor(float(v), dtype=torch.float32)
            else:
                owner.register_buffer("v_th", torch.tensor(float(v), dtype=torch.float32))
    return module
