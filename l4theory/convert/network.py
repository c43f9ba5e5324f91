"""A plain description of a feed-forward ReLU network and its NumPy forward pass.

Layers are small dataclasses (:class:`Conv2d`, :class:`Linear`, :class:`ReLU`,
:class:`AvgPool2d`, :class:`MaxPool2d`, :class:`Flatten`, :class:`Add`); a
:class:`Network` holds the input shape (one sample, channels first, no batch axis), the
layers in execution order and, for networks that are not a plain chain, the inputs of
every layer (a small graph: residual blocks). By default each layer takes the previous
layer's output, so a chain needs no ``inputs``. The network checks on construction that
every layer accepts the shapes its inputs produce, explaining any mismatch.

Array conventions: images are ``(batch, C, H, W)``, channels first, as in PyTorch and
ONNX; conv weights are ``(C_out, C_in, kh, kw)``; dense weights are ``(n_out, n_in)``;
:class:`Flatten` flattens ``(C, H, W)`` in C order (as ``torch.flatten``).
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_int

__all__ = [
    "Add",
    "AvgPool2d",
    "Conv2d",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Network",
    "ReLU",
    "accuracy",
    "avgpool2d",
    "conv2d",
    "maxpool2d",
]


def _pair(name: str, value) -> tuple[int, int]:
    if np.isscalar(value):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    try:
        return tuple(operator.index(v) for v in value)
    except TypeError:
        raise ValueError(f"{name} must hold integers, got {value!r}") from None


def _pads(name: str, value) -> tuple[int, int, int, int]:
    """Normalise padding to (top, left, bottom, right) -- the ONNX ``pads`` order."""
    if np.isscalar(value):
        value = (value,) * 4
    value = tuple(int(v) for v in value)
    if len(value) == 2:
        value = (value[0], value[1], value[0], value[1])
    if len(value) != 4 or min(value) < 0:
        raise ValueError(
            f"{name} must be an int, (ph, pw) or (top, left, bottom, right) >= 0, got {value!r}"
        )
    return value


def _weights(name: str, value, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(np.float32)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


@dataclass(eq=False)
class Conv2d:
    """2-D convolution (cross-correlation, as in PyTorch/ONNX), no dilation, one group.

    Attributes
    ----------
    weight : numpy.ndarray, shape (C_out, C_in, kh, kw)
    bias : numpy.ndarray, shape (C_out,), or None
    stride : (int, int)
    padding : (top, left, bottom, right) zero padding in pixels (ONNX ``pads`` order);
        an int or ``(ph, pw)`` is accepted and expanded.
    name : str
        Layer name (weight/bias tensors are stored as ``name + ".weight"``/``".bias"``
        unless ``weight_key``/``bias_key`` say otherwise).
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    name: str = "conv"
    weight_key: str | None = None
    bias_key: str | None = None

    kind = "conv2d"

    def __post_init__(self):
        self.weight = _weights(f"{self.name}.weight", self.weight, 4)
        if self.bias is not None:
            self.bias = _weights(f"{self.name}.bias", self.bias, 1).astype(self.weight.dtype)
            if self.bias.shape[0] != self.weight.shape[0]:
                raise ValueError(
                    f"{self.name}: bias has {self.bias.shape[0]} entries but the weight has "
                    f"{self.weight.shape[0]} output channels"
                )
        self.stride = _pair(f"{self.name}.stride", self.stride)
        if min(self.stride) < 1:
            raise ValueError(f"{self.name}.stride must be >= 1, got {self.stride}")
        self.padding = _pads(f"{self.name}.padding", self.padding)
        self.weight_key = self.weight_key or f"{self.name}.weight"
        if self.bias is not None:
            self.bias_key = self.bias_key or f"{self.name}.bias"

    def output_shape(self, shape: tuple) -> tuple:
        """Output shape ``(C_out, H_out, W_out)`` for an input of ``shape = (C, H, W)``."""
        if len(shape) != 3:
            raise ValueError(f"expects an input of shape (C, H, W), receives {shape}")
        c_out, c_in, kh, kw = self.weight.shape
        if shape[0] != c_in:
            raise ValueError(
                f"its weight {self.weight.shape} expects {c_in} input channels, "
                f"receives shape {shape} with {shape[0]} channels"
            )
        t, left, b, r = self.padding
        h, w = shape[1] + t + b, shape[2] + left + r
        if h < kh or w < kw:
            raise ValueError(f"kernel {kh}x{kw} is larger than the padded input {h}x{w}")
        return (c_out, (h - kh) // self.stride[0] + 1, (w - kw) // self.stride[1] + 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape (batch, *input shape)."""
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)


@dataclass(eq=False)
class Linear:
    """Dense layer ``y = x @ weight.T + bias``.

    Attributes
    ----------
    weight : numpy.ndarray, shape (n_out, n_in)
    bias : numpy.ndarray, shape (n_out,), or None
    name : str
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    name: str = "linear"
    weight_key: str | None = None
    bias_key: str | None = None

    kind = "linear"

    def __post_init__(self):
        self.weight = _weights(f"{self.name}.weight", self.weight, 2)
        if self.bias is not None:
            self.bias = _weights(f"{self.name}.bias", self.bias, 1).astype(self.weight.dtype)
            if self.bias.shape[0] != self.weight.shape[0]:
                raise ValueError(
                    f"{self.name}: bias has {self.bias.shape[0]} entries but the weight has "
                    f"{self.weight.shape[0]} outputs"
                )
        self.weight_key = self.weight_key or f"{self.name}.weight"
        if self.bias is not None:
            self.bias_key = self.bias_key or f"{self.name}.bias"

    def output_shape(self, shape: tuple) -> tuple:
        """Output shape ``(n_out,)`` for an input of ``shape = (n_in,)``."""
        if len(shape) != 1:
            raise ValueError(
                f"expects a flat input of shape ({self.weight.shape[1]},), receives {shape} "
                "(add a flatten layer before it)"
            )
        if shape[0] != self.weight.shape[1]:
            raise ValueError(
                f"its weight {self.weight.shape} expects {self.weight.shape[1]} inputs, "
                f"receives {shape[0]}"
            )
        return (self.weight.shape[0],)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape (batch, *input shape)."""
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y


@dataclass(eq=False)
class ReLU:
    """Rectified linear unit ``max(x, 0)``."""

    name: str = "relu"
    kind = "relu"

    def output_shape(self, shape: tuple) -> tuple:
        """Same as the input shape."""
        return tuple(shape)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape (batch, *input shape)."""
        return np.maximum(x, 0)


@dataclass(eq=False)
class AvgPool2d:
    """Average pooling without padding (every window lies inside the input).

    Attributes
    ----------
    kernel : (int, int)
    stride : (int, int), default equal to ``kernel``
    """

    kernel: tuple = (2, 2)
    stride: tuple | None = None
    name: str = "avgpool"
    kind = "avgpool2d"

    def __post_init__(self):
        self.kernel = _pair(f"{self.name}.kernel", self.kernel)
        self.stride = self.kernel if self.stride is None else _pair(f"{self.name}.stride",
                                                                     self.stride)
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{self.name}: kernel and stride must be >= 1")

    def output_shape(self, shape: tuple) -> tuple:
        """Output shape for an input of ``shape = (C, H, W)``."""
        if len(shape) != 3:
            raise ValueError(f"expects an input of shape (C, H, W), receives {shape}")
        kh, kw = self.kernel
        if shape[1] < kh or shape[2] < kw:
            raise ValueError(f"kernel {self.kernel} is larger than the input {shape[1:]}")
        return (shape[0], (shape[1] - kh) // self.stride[0] + 1,
                (shape[2] - kw) // self.stride[1] + 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape (batch, *input shape)."""
        return avgpool2d(x, self.kernel, self.stride)


@dataclass(eq=False)
class Flatten:
    """Flatten ``(C, H, W)`` to ``(C*H*W,)`` in C order."""

    name: str = "flatten"
    kind = "flatten"

    def output_shape(self, shape: tuple) -> tuple:
        """``(prod(shape),)``."""
        return (int(np.prod(shape)),)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape (batch, *input shape)."""
        return x.reshape(x.shape[0], -1)


@dataclass(eq=False)
class MaxPool2d:
    """Max pooling without padding (every window lies inside the input).

    Attributes
    ----------
    kernel : (int, int)
    stride : (int, int), default equal to ``kernel``
    """

    kernel: tuple = (2, 2)
    stride: tuple | None = None
    name: str = "maxpool"
    kind = "maxpool2d"

    __post_init__ = AvgPool2d.__post_init__
    output_shape = AvgPool2d.output_shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Apply the layer to a batch ``x`` of shape (batch, *input shape)."""
        return maxpool2d(x, self.kernel, self.stride)


@dataclass(eq=False)
class Add:
    """Element-wise sum of two inputs of the same shape (a residual connection).

    Its two inputs are named in ``Network.inputs``; by convention the first is the
    block's main branch and the second the shortcut (identity or projection).
    """

    name: str = "add"
    kind = "add"
    n_inputs = 2

    def output_shape(self, shape: tuple, other: tuple) -> tuple:
        """The common shape of both inputs."""
        if tuple(shape) != tuple(other):
            raise ValueError(f"adds inputs of different shapes {tuple(shape)} and {tuple(other)}")
        return tuple(shape)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The sum ``x + y`` of two batches of the same shape."""
        return x + y


LAYER_TYPES = {cls.kind: cls for cls in (Conv2d, Linear, ReLU, AvgPool2d, MaxPool2d, Flatten, Add)}


def conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), *,
           max_bytes: int = 8 * 2**20) -> np.ndarray:
    """Batched 2-D convolution (cross-correlation) by im2col and one matrix product.

    Parameters
    ----------
    x : numpy.ndarray, shape (batch, C_in, H, W)
    weight : numpy.ndarray, shape (C_out, C_in, kh, kw)
    bias : numpy.ndarray, shape (C_out,), optional
    stride : (int, int)
    padding : (top, left, bottom, right), zero padding
    max_bytes : int
        Bound on the im2col buffer; larger batches are processed in chunks. The default
        (8 MiB) keeps the buffer in cache between its writes and the matrix product:
        1.3-1.6x faster than 64 MiB on the VGG-5's 64- and 128-channel layers here.

    Returns
    -------
    numpy.ndarray, shape (batch, C_out, H_out, W_out)
    """
    sh, sw = _pair("stride", stride)
    t, left, b, r = _pads("padding", padding)
    xh = x.transpose(0, 2, 3, 1)  # NHWC: the patch of one output pixel is contiguous in C
    if any((t, left, b, r)):
        xh = np.pad(xh, ((0, 0), (t, b), (left, r), (0, 0)))
    n, h, w, c = xh.shape
    c_out, _, kh, kw = weight.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    dtype = np.result_type(x, weight)
    wm = weight.transpose(2, 3, 1, 0).reshape(kh * kw * c, c_out).astype(dtype, copy=False)
    out = np.empty((n, ho, wo, c_out), dtype=dtype)
    per_sample = ho * wo * kh * kw * c * dtype.itemsize
    chunk = max(1, min(n, max_bytes // max(per_sample, 1)))
    cols = np.empty((chunk, ho, wo, kh, kw, c), dtype=dtype)
    for s0 in range(0, n, chunk):
        m = min(chunk, n - s0)
        for i in range(kh):
            for j in range(kw):
                cols[:m, :, :, i, j, :] = xh[s0:s0 + m, i:i + sh * (ho - 1) + 1:sh,
                                             j:j + sw * (wo - 1) + 1:sw, :]
        np.matmul(cols[:m].reshape(m * ho * wo, -1), wm,
                  out=out[s0:s0 + m].reshape(m * ho * wo, c_out))
    if bias is not None:
        out += bias
    return out.transpose(0, 3, 1, 2)


def avgpool2d(x, kernel=(2, 2), stride=None) -> np.ndarray:
    """Average pooling of ``x`` of shape (batch, C, H, W) without padding."""
    kh, kw = _pair("kernel", kernel)
    sh, sw = (kh, kw) if stride is None else _pair("stride", stride)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    if (sh, sw) == (kh, kw):
        return x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw).mean(axis=(3, 5))
    out = np.zeros((n, c, ho, wo), dtype=np.result_type(x, np.float32))
    for i in range(kh):
        for j in range(kw):
            out += x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
    return out / (kh * kw)


def maxpool2d(x, kernel=(2, 2), stride=None) -> np.ndarray:
    """Max pooling of ``x`` of shape (batch, C, H, W) without padding."""
    kh, kw = _pair("kernel", kernel)
    sh, sw = (kh, kw) if stride is None else _pair("stride", stride)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = None
    for i in range(kh):
        for j in range(kw):
            part = x[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]
            out = part.copy() if out is None else np.maximum(out, part)
    return out


def _check_inputs(layers: list, inputs) -> list[tuple[int, ...]]:
    """Normalise ``inputs`` (None: a chain) to one tuple of node indices per layer."""
    if inputs is None:
        inputs = [None] * len(layers)
    inputs = list(inputs)
    if len(inputs) != len(layers):
        raise ValueError(f"inputs must name the inputs of each of the {len(layers)} layers, "
                         f"got {len(inputs)} entries")
    out = []
    for i, (lay, src) in enumerate(zip(layers, inputs, strict=True)):
        n_in = getattr(lay, "n_inputs", 1)
        src = (i - 1,) if src is None else tuple(int(k) for k in np.atleast_1d(src))
        if len(src) != n_in or any(not -1 <= k < i for k in src):
            raise ValueError(
                f"inputs[{i}] ({lay.kind} '{lay.name}') must be {n_in} index(es) of earlier "
                f"layers in [-1, {i - 1}] (-1 is the network input), got {src}")
        out.append(src)
    return out


@dataclass(eq=False)
class Network:
    """A feed-forward network: input shape plus a list of layers, shapes validated.

    Attributes
    ----------
    input_shape : tuple of int
        One sample's shape, channels first, no batch axis (e.g. ``(1, 28, 28)``).
    layers : list
        :class:`Conv2d`, :class:`Linear`, :class:`ReLU`, :class:`AvgPool2d`,
        :class:`MaxPool2d`, :class:`Flatten`, :class:`Add` in execution order; the last
        layer's output is the network's output.
    name : str
    metadata : dict
        Free-form JSON-serialisable metadata (e.g. ``history`` of adjustments).
    inputs : list of tuple of int, optional
        ``inputs[i]`` holds the indices of the layers whose outputs ``layers[i]`` takes
        (``-1`` is the network input; two entries for :class:`Add`). Default (None or a
        None entry): the previous layer, so a chain needs nothing. Stored normalised.
    shapes : list of tuple
        Filled on construction: ``shapes[0]`` is the input shape, ``shapes[i+1]`` the
        output shape of ``layers[i]``.
    """

    input_shape: tuple
    layers: list
    name: str = "network"
    metadata: dict = field(default_factory=dict)
    inputs: list | None = None

    def __post_init__(self):
        self.input_shape = tuple(int(s) for s in self.input_shape)
        if not self.input_shape or min(self.input_shape) < 1:
            raise ValueError(f"input_shape must be positive ints, got {self.input_shape}")
        self.layers = list(self.layers)
        if not self.layers:
            raise ValueError("a network needs at least one layer")
        for i, layer in enumerate(self.layers):
            if type(layer) not in LAYER_TYPES.values():
                raise ValueError(f"layer {i} has unsupported type {type(layer).__name__}")
        self.inputs = _check_inputs(self.layers, self.inputs)
        shapes = [self.input_shape]
        for i, layer in enumerate(self.layers):
            try:
                shapes.append(tuple(int(s) for s in layer.output_shape(
                    *(shapes[k + 1] for k in self.inputs[i]))))
            except ValueError as exc:
                prev = " and ".join(
                    f"layer {k} ({self.layers[k].kind} '{self.layers[k].name}')" if k >= 0
                    else "the network input" for k in self.inputs[i])
                raise ValueError(
                    f"layer {i} ({layer.kind} '{layer.name}'): {exc}; the shape comes from "
                    f"{prev}"
                ) from None
        self.shapes = shapes

    # ------------------------------------------------------------------ structure
    @property
    def output_shape(self) -> tuple:
        """Shape of one output sample."""
        return self.shapes[-1]

    @property
    def weight_layers(self) -> list[int]:
        """Indices of the :class:`Conv2d` and :class:`Linear` layers."""
        return [i for i, lay in enumerate(self.layers) if lay.kind in ("conv2d", "linear")]

    @property
    def is_chain(self) -> bool:
        """Whether every layer takes the previous layer's output (no residual graph)."""
        return all(src == (i - 1,) for i, src in enumerate(self.inputs))

    @property
    def spiking_layers(self) -> list[int]:
        """Indices of the weight layers that own an integrate-and-fire layer, in order.

        A ReLU whose input is a weight layer's output (possibly after pooling or
        flattening) becomes a layer of IF neurons, named after that weight layer; the
        ReLU after a residual :class:`Add` is named after the earliest weight layer that
        feeds the sum (the block's main branch). The last weight layer (the readout) is
        not one of them. :func:`l4theory.convert.graph.spiking_units` gives the details.
        """
        from .graph import spiking_units

        return [u.weight for u in spiking_units(self)]

    def n_parameters(self) -> int:
        """Total number of weights and biases."""
        return sum(lay.weight.size + (0 if lay.bias is None else lay.bias.size)
                   for lay in (self.layers[i] for i in self.weight_layers))

    def describe(self) -> str:
        """A table of layers and output shapes."""
        lines = [f"{self.name}: input {self.input_shape}"]
        for i, lay in enumerate(self.layers):
            extra = ""
            if lay.kind in ("conv2d", "linear"):
                extra = f" weight {lay.weight.shape}" + ("" if lay.bias is None else " +bias")
                if lay.kind == "conv2d":
                    extra += f" stride {lay.stride} pad {lay.padding}"
            elif lay.kind in ("avgpool2d", "maxpool2d"):
                extra = f" kernel {lay.kernel} stride {lay.stride}"
            if self.inputs[i] != (i - 1,):
                extra += f" inputs {list(self.inputs[i])}"
            lines.append(f"  [{i:2d}] {lay.kind:<9} {lay.name:<22} -> {self.shapes[i + 1]}{extra}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ forward
    def _check_input(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype == np.uint8:
            raise ValueError("x is uint8: normalise the pixels first (datasets.normalize)")
        if not np.issubdtype(x.dtype, np.floating):
            x = x.astype(np.float32)
        if x.shape[1:] != self.input_shape:
            if x.ndim == 1 + len(self.input_shape) or x.size % int(np.prod(self.input_shape)):
                raise ValueError(
                    f"x has shape {x.shape}; expected (batch, {', '.join(map(str, self.input_shape))})"
                )
            x = x.reshape((-1, *self.input_shape))
        return x

    def iter_layers(self, x, *, batch_size: int = 256) -> Iterator[tuple[slice, list]]:
        """Run the network batch by batch, yielding every layer's output.

        Parameters
        ----------
        x : numpy.ndarray, shape (n, *input_shape)
            Inputs (already normalised).
        batch_size : int
            Samples per batch; bounds the memory to one batch's activations.

        Yields
        ------
        rows : slice
            The samples of ``x`` in this batch.
        outputs : list of numpy.ndarray
            ``outputs[i]`` is the output of ``layers[i]`` (so the pre-activation of a
            weight layer ``i`` is ``outputs[i]``), each of shape (batch, *shapes[i+1]).
        """
        x = self._check_input(x)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        dtype = np.result_type(x.dtype, *(self.layers[i].weight.dtype for i in self.weight_layers))
        for start in range(0, x.shape[0], batch_size):
            rows = slice(start, min(start + batch_size, x.shape[0]))
            h = x[rows].astype(dtype, copy=False)
            outs = []
            for lay, src in zip(self.layers, self.inputs, strict=True):
                outs.append(lay(*(h if k < 0 else outs[k] for k in src)))
            yield rows, outs

    def forward(self, x, *, batch_size: int = 256) -> np.ndarray:
        """The ANN output (logits) for inputs ``x``.

        Parameters
        ----------
        x : numpy.ndarray, shape (n, *input_shape)
            Normalised inputs (the shipped models expect pixels in [-1, 1]).
        batch_size : int
            Samples per batch (memory bound).

        Returns
        -------
        numpy.ndarray, shape (n, *output_shape)
        """
        x = self._check_input(x)
        out = np.empty((x.shape[0], *self.output_shape), dtype=np.float64)
        for rows, outs in self.iter_layers(x, batch_size=batch_size):
            out[rows] = outs[-1]
        return out

    __call__ = forward

    def predict(self, x, *, batch_size: int = 256) -> np.ndarray:
        """Predicted class per sample, shape (n,)."""
        return self.forward(x, batch_size=batch_size).reshape(len(x), -1).argmax(axis=1)

    def accuracy(self, x, labels, *, batch_size: int = 256) -> float:
        """Fraction of samples whose argmax output equals ``labels`` (shape (n,))."""
        return accuracy(self.forward(x, batch_size=batch_size), labels)

    def copy(self) -> Network:
        """A deep copy (weights copied)."""
        import copy

        return copy.deepcopy(self)


def accuracy(logits, labels) -> float:
    """Fraction of rows of ``logits`` (shape (n, k)) whose argmax equals ``labels`` (n,)."""
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"logits must be (n, k) and labels (n,), got {logits.shape} and {labels.shape}"
        )
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(logits.argmax(axis=1) == labels))
