"""Spiking simulation of a converted network on real data: exact, time-batched, streamed.

The converted network keeps the ANN's weights; every ReLU becomes a layer of
integrate-and-fire neurons with one threshold per layer, and the last weight layer is the
readout. Two discrete-time conventions (``semantics``; ``docs/simulation.md``), both with
``V[0] = 0`` and ``I[t] = W s_in[t] (+ b)``:

``"project"`` (default)
    ``V[t] = alpha * V[t-1] + I[t]``; the neuron fires when ``V[t] >= v_th`` in the same
    step (no extra step of delay per layer); soft reset subtracts ``v_th`` from ``V[t]``
    (so the reset is leaked from the next step on), hard reset sets ``V[t] = 0``.
``"rathi"`` (the code of Rathi et al. 2020, the paper's base)
    The spike of step ``t`` comes from the previous membrane, ``s[t] = V[t-1] > v_th``
    (strict), and the reset is applied with the update, not leaked: soft
    ``V[t] = (alpha * V[t-1] + I[t]) - v_th * s[t]``; hard (not in that code; our
    definition) ``V[t] = (1 - s[t]) * alpha * V[t-1] + I[t]``, i.e. the membrane that
    fired restarts from 0 and integrates ``I[t]``. ``s[t]`` reaches the next layer in the
    same step ``t``, so each spiking layer adds one step of delay.

``alpha = 1`` is the IF neuron, ``alpha < 1`` the leaky one (``alpha = exp(-dt/tau)``).
Average pooling acts on whatever reaches it (spikes after an IF layer, currents before
one); flatten is C-order over ``(C, H, W)``, as in the ANN.

Inputs are encoded every step (``encoder``):

``signed`` (default; Rathi et al. 2020)
    ``sign(x) * Bernoulli(min(|x|, 1))`` for inputs normalised to [-1, 1].
``bernoulli``
    ``Bernoulli(clip(x, 0, 1))``.
``poisson``
    ``Poisson(x)`` counts per step (``x >= 0``).
``constant``
    the analog value ``x`` every step.

Readout (``readout``): ``"membrane"`` (default, as in Rathi et al.'s code) accumulates the
last layer's input current without threshold or leak and predicts its argmax at every
step; ``"spikes"`` makes the last layer IF too (threshold ``readout_threshold``, same leak
and reset) and predicts the argmax of the accumulated spike counts (ties go to the lower
class index).

How it is fast and exact. For a feed-forward network the input current of a layer at
step ``t`` depends only on the layer below at steps ``<= t``, so a block of ``Tc`` steps
of a batch of ``B`` samples goes through each weight layer at once (``Tc * B`` rows),
and the neuron update then runs over the block in a fused Numba kernel
(:func:`l4theory.convert._kernels.if_scan`), parallel over neurons. Convolutions fed by
spikes (and the first one, unless the encoder is ``constant``) are event-driven
(:func:`l4theory.convert._kernels.conv_events`: each nonzero input adds its weight row,
contiguous over output channels, to the outputs it drives; first layers with few inputs
per output use :func:`l4theory.convert._kernels.conv_taps`, the same sums in the same
order; rule in :func:`_events_rule`);
dense layers, and every layer with ``backend="torch"``, are one matrix product
(:func:`linear_op`). The result is the same as stepping one step at a time. Activations
are channels-last (NHWC) inside. Batches are streamed, so memory stays bounded by
``memory_mb``. Input spikes come from a counter-based stream keyed by ``(seed, sample
index, step, pixel)``, and every kernel sums in a fixed order: results do not depend on
the thread count, the batch size or the block length.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_alpha, check_choice, check_int
from ..theory.discrete import ENCODERS
from . import _kernels as K
from ._plan import maxpool_gate, plan
from ._plan import pool as _pool
from .graph import spiking_units
from .network import Network, conv2d

__all__ = [
    "BACKENDS",
    "ENCODERS",
    "READOUTS",
    "RESETS",
    "SEMANTICS",
    "SimResult",
    "encode_steps",
    "linear_op",
    "simulate",
]

READOUTS = ("membrane", "spikes")
RESETS = ("soft", "hard")
SEMANTICS = ("project", "rathi")


@dataclass
class SimResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    accuracy : numpy.ndarray, shape (steps,)
        Fraction of samples classified correctly after each step ``1 .. steps`` (NaN
        when no labels were given).
    predictions : numpy.ndarray of int16, shape (steps, n)
        Predicted class of every sample after every step.
    readout : numpy.ndarray of float64, shape (n, n_classes)
        Final accumulated readout (membrane potential or spike counts).
    spike_rates : numpy.ndarray, shape (n_spiking,)
        Mean spikes per neuron per step of each spiking layer, over samples and steps.
    layers : tuple of int
        Indices (into ``network.layers``) of the spiking weight layers, in order.
    layer_names : tuple of str
    counts : dict of int to numpy.ndarray
        Per-neuron spike counts over all steps for the layers in ``record_counts``,
        shape (n, *layer output shape) in the ANN's (C, H, W) order.
    labels : numpy.ndarray or None, shape (n,)
    max_current : numpy.ndarray or None, shape (n_spiking,)
        With ``record_max_current``: the largest per-step input current ``W s[t] (+ b)``
        into each spiking layer over all steps, samples and neurons (before any pooling
        between the weight layer and its ReLU).
    params : dict
        Settings of the run (steps, alpha, reset, encoder, readout, seed, thresholds).
    """

    accuracy: np.ndarray
    predictions: np.ndarray
    readout: np.ndarray
    spike_rates: np.ndarray
    layers: tuple
    layer_names: tuple
    counts: dict = field(default_factory=dict)
    labels: np.ndarray | None = None
    max_current: np.ndarray | None = None
    params: dict = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        """Accuracy after the last step."""
        return float(self.accuracy[-1])

    def correct(self, step: int = -1) -> np.ndarray:
        """Boolean per sample (shape (n,)): correct after ``step`` (default the last)."""
        if self.labels is None:
            raise ValueError("the simulation was run without labels")
        return self.predictions[step] == self.labels


# --------------------------------------------------------------------------- linear ops


BACKENDS = ("numpy", "torch")


def _torch_linear(kind, h, weight, bias, stride, padding, device="cpu"):
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        x = torch.from_numpy(h).to(device)
        w = torch.from_numpy(weight).to(device)
        b = None if bias is None else torch.from_numpy(bias).to(device)
        if kind == "linear":
            return F.linear(x, w, b).cpu().numpy()
        t, left, bot, r = padding
        x = x.permute(0, 3, 1, 2)  # NCHW view with channels-last strides
        if (t, left) != (bot, r):
            x = F.pad(x, (left, r, t, bot))
            pad = (0, 0)
        else:
            pad = (t, left)
        w = w.contiguous(memory_format=torch.channels_last)
        out = F.conv2d(x, w, b, stride=stride, padding=pad)
        return np.ascontiguousarray(out.permute(0, 2, 3, 1).cpu().numpy())


def linear_op(kind: str, h: np.ndarray, weight: np.ndarray, bias, stride=(1, 1),
              padding=(0, 0, 0, 0), backend: str = "numpy",
              out: np.ndarray | None = None, device: str = "cpu") -> np.ndarray:
    """The one place where the simulator does linear algebra (backends plug in here).

    Parameters
    ----------
    kind : {"conv2d", "linear"}
    h : numpy.ndarray, float32
        ``(R, H, W, C_in)`` channels-last for ``conv2d``; ``(R, n_in)`` for ``linear``
        (``R`` = steps x samples of a block).
    weight : numpy.ndarray, float32
        ``(C_out, C_in, kh, kw)`` or ``(n_out, n_in)``.
    bias : numpy.ndarray or None, shape (C_out,) / (n_out,)
    stride, padding : as in :class:`l4theory.convert.network.Conv2d`.
    backend : {"numpy", "torch"}
        ``numpy`` (default): im2col + BLAS (:func:`l4theory.convert.network.conv2d`).
        ``torch``: PyTorch's CPU convolution (oneDNN, channels-last), fp32; optional
        (``pip install l4theory[bench]``). Both are fp32; they differ only in summation
        order (last-bit differences of the currents).
    out : numpy.ndarray, optional
        For ``linear`` with the ``numpy`` backend: a C-contiguous float32 array of the
        result's shape to write into (the simulator reuses one per layer); ignored
        otherwise.
    device : str
        For ``backend="torch"``: the torch device of the products (``"cpu"``,
        ``"cuda"``, ``"cuda:1"``); the operands travel there and the result comes back.

    Returns
    -------
    numpy.ndarray, float32, C-contiguous
        ``(R, H_out, W_out, C_out)`` or ``(R, n_out)``.
    """
    if backend == "torch":
        return _torch_linear(kind, h, weight, bias, stride, padding, device)
    if kind == "conv2d":
        out = conv2d(h.transpose(0, 3, 1, 2), weight, bias, stride, padding)
        return out.transpose(0, 2, 3, 1)  # conv2d computes in NHWC: this view is contiguous
    out = np.matmul(h, weight.T, out=out)
    if bias is not None:
        out += bias
    return out


def encode_steps(x: np.ndarray, encoder: str, seed: int, samples: np.ndarray, t0: int,
                 n_steps: int) -> np.ndarray:
    """Input spikes of steps ``t0 .. t0 + n_steps - 1`` for a batch.

    Parameters
    ----------
    x : numpy.ndarray, shape (B, ...)
        Inputs; flattened per sample in C order.
    encoder : {"signed", "bernoulli", "poisson", "constant"}
    seed : int
        Stream seed in ``[0, 2**63)``.
    samples : numpy.ndarray of int, shape (B,)
        Global sample indices (the stream of sample ``n`` does not depend on the batch).
    t0, n_steps : int
        First step (0-based) and number of steps.

    Returns
    -------
    numpy.ndarray, float32, shape (n_steps, B, P)
        ``P`` = pixels per sample.
    """
    check_choice("encoder", encoder, ENCODERS)
    xb = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
    out = np.empty((n_steps, xb.shape[0], xb.shape[1]), dtype=np.float32)
    fn = K.encode_block_numpy if K.DISABLED else K.encode_block
    fn(xb, out, np.uint64(seed), np.asarray(samples, dtype=np.uint64), int(t0),
       K.ENCODER_CODES[encoder])
    return out


# --------------------------------------------------------------------------- the plan


# --------------------------------------------------------------------------- simulate


def _check_thresholds(name, value, n):
    th = np.asarray(value, dtype=np.float64).reshape(-1)
    if th.shape != (n,) or np.isnan(th).any() or not (th > 0).all():
        raise ValueError(f"{name} must be {n} positive values (one per spiking layer; inf "
                         f"disables firing), got {np.asarray(value)!r}")
    return th


def _check_inputs(net, x, labels, encoder: str):
    """``x`` as an array of shape (n, *net.input_shape), and the labels (or None)."""
    if not isinstance(net, Network):
        raise ValueError(f"net must be a Network, got {type(net).__name__}")
    x = np.asarray(x)
    if x.dtype == np.uint8:
        raise ValueError("x is uint8: normalise the pixels first (datasets.normalize)")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"x must be a non-empty batch of shape (n, {net.input_shape}), "
                         f"got shape {x.shape}")
    if x.shape[1:] != net.input_shape:
        if x[0].size != math.prod(net.input_shape):
            raise ValueError(f"x has shape {x.shape}; expected (n, "
                             f"{', '.join(map(str, net.input_shape))})")
        x = x.reshape((-1, *net.input_shape))
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    if encoder == "poisson" and (x < 0).any():
        raise ValueError("the poisson encoder needs x >= 0 (expected counts per step), "
                         f"got min {float(x.min())!r}")
    n, n_classes = x.shape[0], math.prod(net.output_shape)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be {n} integers, got shape {labels.shape} dtype "
                             f"{labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"labels must lie in [0, {n_classes}), got range "
                             f"[{labels.min()}, {labels.max()}]")
    return x, labels


def _check_ids(sample_ids, n: int) -> np.ndarray:
    if sample_ids is None:
        return np.arange(n, dtype=np.int64)
    ids = np.asarray(sample_ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer) or (ids < 0).any():
        raise ValueError(f"sample_ids must be {n} non-negative integers, got shape "
                         f"{ids.shape} dtype {ids.dtype}")
    return ids


def _check_device(backend: str, device) -> None:
    """``device`` must be ``"cpu"`` for NumPy, a torch device that exists for torch."""
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    if backend != "torch":
        if device != "cpu":
            raise ValueError(f"device={device!r} needs backend='torch' (numpy runs on the cpu)")
        return
    try:
        import torch
    except ImportError:
        raise ValueError("backend='torch' needs PyTorch (pip install l4theory[torch])") from None
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                         f"{device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: torch finds no CUDA device on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r}: only cpu and cuda are supported")


def _check_options(net, o: dict) -> dict:
    """Check the keyword options of :func:`simulate`; return them cleaned."""
    spiking = net.spiking_layers
    o["steps"] = check_int("steps", o["steps"], minimum=1)
    o["alpha"] = check_alpha("alpha", o["alpha"])
    check_choice("reset", o["reset"], RESETS)
    check_choice("encoder", o["encoder"], ENCODERS)
    check_choice("readout", o["readout"], READOUTS)
    check_choice("semantics", o["semantics"], SEMANTICS)
    check_choice("backend", o["backend"], BACKENDS)
    o["thresholds"] = _check_thresholds("thresholds", o["thresholds"], len(spiking))
    if o["readout"] == "spikes":
        _check_thresholds("readout_threshold", [o["readout_threshold"]], 1)
    bs = o["bias_scales"]
    o["bias_scales"] = np.ones(len(spiking)) if bs is None else np.asarray(bs, float)
    if o["bias_scales"].shape != (len(spiking),) or not np.isfinite(o["bias_scales"]).all():
        raise ValueError(f"bias_scales must be {len(spiking)} finite values, got {bs!r}")
    if not np.isfinite(o["readout_bias_scale"]):
        raise ValueError(f"readout_bias_scale must be finite, got {o['readout_bias_scale']!r}")
    o["seed"] = check_int("seed", o["seed"], minimum=0)
    if o["seed"] >= 2**63:
        raise ValueError(f"seed must be < 2**63, got {o['seed']}")
    o["batch_size"] = check_int("batch_size", o["batch_size"], minimum=1)
    if o["block_steps"] is not None:
        o["block_steps"] = check_int("block_steps", o["block_steps"], minimum=1)
    if not (np.isfinite(o["memory_mb"]) and o["memory_mb"] > 0):
        raise ValueError(f"memory_mb must be > 0, got {o['memory_mb']!r}")
    _check_device(o["backend"], o["device"])
    o["record_counts"] = tuple(int(i) for i in o["record_counts"])
    for i in o["record_counts"]:
        if i not in spiking:
            raise ValueError(f"record_counts: layer {i} is not a spiking layer {spiking}")
    return o


def _block_length(net, ops, bsz: int, o: dict) -> int:
    """Steps per block: ``block_steps``, or as many as ``memory_mb`` allows.

    Counted per (sample, step): the encoded input and the output of every weight and
    pooling layer (the IF update and flatten work in place; the event convolution needs
    no buffer). The dense
    path's im2col buffer is bounded by :func:`~l4theory.convert.network.conv2d` itself
    (8 MiB) and is not per row.
    """
    if o["block_steps"] is not None:
        return min(o["block_steps"], o["steps"])
    per_row = 4 * math.prod(net.input_shape)
    for op in ops:
        if op.kind in ("conv2d", "linear", "pool", "maxpool", "add") or op.copy_in:
            # new arrays; IF and flatten are in place
            per_row += 4 * math.prod(op.shape)
    rows = max(1, int(o["memory_mb"] * 2**20) // max(per_row, 1))
    return max(1, min(o["steps"], rows // bsz))


_NO_BIAS = np.zeros(0, np.float32)


def _conv_kernel(op):
    """The kernel that runs the event-order convolution ``op``.

    Layers with at most ``K.TAPS_MAX`` inputs per output (first layers) sweep every tap
    (:func:`~l4theory.convert._kernels.conv_taps`), the others list events
    (:func:`~l4theory.convert._kernels.conv_events`): the same sums in the same order.
    Without JIT the NumPy twin runs every layer.
    """
    if K.DISABLED:
        return K.conv_events_numpy
    kh, kw, cin, _ = op.weight_t.shape
    return K.conv_taps if cin * kh * kw <= K.TAPS_MAX else K.conv_events


def _conv_events(h: np.ndarray, op, out: np.ndarray) -> np.ndarray:
    """The event-order convolution of ``op`` on channels-last ``h`` into ``out``."""
    _conv_kernel(op)(np.ascontiguousarray(h, dtype=np.float32), op.weight_t,
       _NO_BIAS if op.bias is None else op.bias, op.stride, op.padding[:2], out)
    return out


class _Buffers:
    """Output arrays of the weight and pooling layers, reused from block to block.

    A fresh array per layer and block costs page faults and first-touch zeroing (W3's
    first convolution writes 218 MB per block). Nothing outlives its block: every result
    the simulator keeps is copied out of these arrays.
    """

    def __init__(self):
        self._arrays: dict = {}

    def get(self, key, shape: tuple) -> np.ndarray:
        """A C-contiguous float32 array of ``shape`` (contents undefined) for ``key``."""
        n = math.prod(shape)
        a = self._arrays.get(key)
        if a is None or a.size < n:
            a = self._arrays[key] = np.empty(n, np.float32)
        return a[:n].reshape(shape)


class _State:
    """Per-batch simulation state: membranes, counts and the readout accumulator."""

    def __init__(self, sizes: dict, nb: int, n_classes: int, n_spiking: int):
        # slots: IF membranes and counts; max-pool slots use ``cnt`` for their input sums
        self.max_current = np.full(n_spiking, -np.inf)
        self.v = {s: np.zeros(nb * sizes[s], np.float32) for s in sizes}
        self.cnt = {s: np.zeros(nb * sizes[s], np.float32) for s in sizes}
        self.acc = np.zeros((nb, n_classes), dtype=np.float64)


def _add(op, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Residual sum ``a * f0 + b * f1`` in float32 (a factor of 1 is skipped: exact)."""
    f0, f1 = (np.float32(f) for f in op.factors)
    np.multiply(a, f0, out=out) if f0 != 1 else np.copyto(out, a)
    out += b if f1 == 1 else b * f1
    return out


def _run_block(ops, h, st: _State, tc: int, nb: int, o: dict, predictions_block,
               bufs: _Buffers):
    """Push one block of ``tc`` steps of encoded input ``h`` through the plan."""
    scan = K.if_scan_numpy if K.DISABLED else K.if_scan
    alpha32 = np.float32(o["alpha"])
    hard, rathi = o["reset"] == "hard", o["semantics"] == "rathi"
    vals = {-1: h}
    for pos, op in enumerate(ops):
        h = vals[op.src[0]]
        if op.kind in ("conv2d", "linear"):
            if op.weight_t is not None:
                h = _conv_events(h, op, bufs.get(pos, (h.shape[0], *op.shape)))
            else:
                out = (bufs.get(pos, (h.shape[0], *op.shape)) if op.kind == "linear"
                       and o["backend"] == "numpy" else None)
                h = linear_op(op.kind, h, op.weight, op.bias, op.stride, op.padding,
                              o["backend"], out=out, device=o["device"])
        elif op.kind == "if":
            if op.copy_in:  # the current is read elsewhere too: the scan must not overwrite it
                buf = bufs.get(pos, h.shape)
                np.copyto(buf, h)
                h = buf
            if op.record >= 0:
                st.max_current[op.record] = max(st.max_current[op.record], float(h.max()))
            scan(h.reshape(tc, -1), st.v[op.slot], st.cnt[op.slot], np.float32(op.v_th),
                 alpha32, hard, rathi)
        elif op.kind == "pool":
            h = _pool(h, op.kernel, op.stride, bufs.get(pos, (h.shape[0], *op.shape)))
        elif op.kind == "maxpool":
            h = maxpool_gate(h, st.cnt[op.slot], op.kernel, op.stride, tc,
                             bufs.get(pos, (h.shape[0], *op.shape)))
        elif op.kind == "add":
            h = _add(op, h, vals[op.src[1]], bufs.get(pos, (h.shape[0], *op.shape)))
        elif op.kind == "flatten":
            h = h.reshape(h.shape[0], -1)
        else:  # readout
            cur = np.concatenate([st.acc[None], h.reshape(tc, nb, -1)])
            cum = np.cumsum(cur, axis=0, dtype=np.float64)[1:]  # step-by-step order
            st.acc = cum[-1]
            predictions_block[...] = cum.argmax(axis=2)
        if op.record >= 0 and op.kind != "if":
            st.max_current[op.record] = max(st.max_current[op.record], float(h.max()))
        vals[pos] = h


def simulate(net: Network, x, labels=None, *, thresholds, steps: int = 75,
             alpha: float = 1.0, reset: str = "soft", encoder: str = "signed",
             readout: str = "membrane", readout_threshold: float = 1.0, seed: int = 0,
             sample_ids=None, batch_size: int = 64, block_steps: int | None = None,
             memory_mb: float = 512.0, bias_scales=None, readout_bias_scale: float = 1.0,
             record_counts=(), progress: Callable[[int], None] | None = None,
             backend: str = "numpy", semantics: str = "project",
             record_max_current: bool = False, device: str = "cpu") -> SimResult:
    """Run the spiking version of ``net`` on inputs ``x`` for ``steps`` time steps.

    Parameters
    ----------
    net : Network
        The ANN (ReLU network); its ReLUs become IF/LIF neurons.
    x : array_like, shape (n, *net.input_shape)
        Normalised inputs (``[-1, 1]`` for the signed encoder).
    labels : array_like of int, shape (n,), optional
        True classes; without them ``accuracy`` is NaN.
    thresholds : array_like, shape (len(net.spiking_layers),)
        Firing threshold per spiking layer (``> 0``, in the units of the input current;
        ``inf`` disables firing). See :mod:`l4theory.convert.balance`.
    steps : int
        Time steps ``T`` (>= 1).
    alpha : float
        Leak factor per step in (0, 1]; 1 = IF (no leak).
    reset : {"soft", "hard"}
    encoder : {"bernoulli", "signed", "poisson", "constant"}
    readout : {"membrane", "spikes"}
    readout_threshold : float
        Threshold of the readout layer for ``readout="spikes"``.
    seed : int
        Seed of the input spike streams, in ``[0, 2**63)``.
    sample_ids : array_like of int, shape (n,), optional
        Global index of each sample (its stream key); default ``0 .. n-1``. Pass the
        dataset indices to make a subset's spike trains identical to the full run's.
    batch_size : int
        Samples simulated together (memory and speed; results do not depend on it).
    block_steps : int, optional
        Steps per time block; default: as many as ``memory_mb`` allows.
    memory_mb : float
        Rough bound on the activation memory of one block, in MiB (default 512: 13 steps
        per block for W3's VGG at batch 64, 17 for the Fashion-MNIST VGG-5). One step per
        block is markedly slower (more, smaller matrix products and kernel calls); a few
        steps are enough.
    bias_scales : array_like, shape (n_spiking,), optional
        Factors on the spiking layers' biases (``BalanceResult.bias_scales``).
    readout_bias_scale : float
        Factor on the readout layer's bias.
    record_counts : sequence of int
        Weight-layer indices (spiking layers) whose per-neuron spike counts to return.
    progress : callable, optional
        Called with the number of samples finished after each batch.
    backend : {"numpy", "torch"}
        Linear-algebra backend (:func:`linear_op`); ``torch`` needs PyTorch.
    semantics : {"project", "rathi"}
        Neuron update convention (module docs): ``"project"`` fires in the same step
        (``V >= v_th``, reset leaked from the next step on); ``"rathi"`` fires from the
        previous step's membrane (``V[t-1] > v_th``, one step of delay per layer) with the
        reset applied in the update, as in Rathi et al.'s code.
    record_max_current : bool
        Record the largest per-step input current into each spiking layer
        (``SimResult.max_current``; threshold balancing by spikes uses it).
    device : str
        Torch device of the linear algebra with ``backend="torch"`` (``"cpu"`` default,
        ``"cuda"``); with ``backend="numpy"`` only ``"cpu"``. The input spikes, the IF
        update and pooling stay on the CPU (``docs/performance.md``).

    Returns
    -------
    SimResult

    Raises
    ------
    ValueError
        On invalid arguments (the message names the parameter and value).
    """
    o = dict(locals())
    x, labels = _check_inputs(net, x, labels, encoder)
    o = _check_options(net, o)
    n, n_classes, spiking = x.shape[0], math.prod(net.output_shape), net.spiking_layers
    ids = _check_ids(sample_ids, n)
    max_current = np.full(len(spiking), -np.inf)
    ops, n_slots = plan(net, o["thresholds"], o["bias_scales"], float(readout_bias_scale), readout,
                  float(readout_threshold), encoder, backend, record_max_current)
    bsz = min(o["batch_size"], n)
    tc_max = _block_length(net, ops, bsz, o)
    if_ops = [op for op in ops if op.kind == "if"]
    sizes = {op.slot: math.prod(op.shape) for op in if_ops}
    sizes.update({op.slot: math.prod(op.in_shape) for op in ops if op.kind == "maxpool"})
    totals = np.zeros(n_slots)
    relu_of = {u.weight: u.relu for u in spiking_units(net)}
    counts_out = {i: np.zeros((n, *net.shapes[relu_of[i] + 1]), np.float32)
                  for i in o["record_counts"]}
    predictions = np.empty((o["steps"], n), dtype=np.int16)
    readout_final = np.empty((n, n_classes), dtype=np.float64)
    x32 = x.astype(np.float32, copy=False)
    bufs = _Buffers()
    for b0 in range(0, n, bsz):
        b1 = min(n, b0 + bsz)
        nb = b1 - b0
        st = _State(sizes, nb, n_classes, len(spiking))
        for t0 in range(0, o["steps"], tc_max):
            tc = min(tc_max, o["steps"] - t0)
            h = encode_steps(x32[b0:b1], encoder, o["seed"], ids[b0:b1], t0, tc)
            h = h.reshape((tc * nb, *net.input_shape))
            if h.ndim == 4:
                h = np.ascontiguousarray(h.transpose(0, 2, 3, 1))
            _run_block(ops, h, st, tc, nb, o, predictions[t0:t0 + tc, b0:b1], bufs)
        readout_final[b0:b1] = st.acc
        max_current = np.maximum(max_current, st.max_current)
        for op in if_ops:
            totals[op.slot] += float(st.cnt[op.slot].sum(dtype=np.float64))
            if op.index in counts_out and op.index != ops[-1].index:
                c = st.cnt[op.slot].reshape(nb, *op.shape)
                counts_out[op.index][b0:b1] = c.transpose(0, 3, 1, 2) if c.ndim == 4 else c
        if progress is not None:
            progress(nb)
    res = _result(net, o, predictions, readout_final, totals, if_ops, sizes, counts_out,
                  labels, bsz, tc_max)
    res.max_current = max_current if record_max_current else None
    return res


def _result(net, o, predictions, readout_final, totals, if_ops, sizes, counts_out, labels,
            bsz, tc_max) -> SimResult:
    n, steps, spiking = predictions.shape[1], o["steps"], net.spiking_layers
    if labels is not None:
        accuracy = (predictions == labels[None, :]).mean(axis=1)
    else:
        accuracy = np.full(steps, np.nan)
    rates = np.array([totals[op.slot] / (n * steps * sizes[op.slot]) for op in if_ops
                      if op.index in spiking])
    params = {k: o[k] for k in ("steps", "alpha", "reset", "encoder", "readout", "seed",
                                "backend", "semantics")}
    if o["device"] != "cpu":
        params["device"] = o["device"]
    params.update(thresholds=o["thresholds"].tolist(), n_samples=n, batch_size=bsz,
                  block_steps=tc_max)
    if o["readout"] == "spikes":
        params["readout_threshold"] = float(o["readout_threshold"])
    return SimResult(accuracy=accuracy, predictions=predictions, readout=readout_final,
                     spike_rates=rates, layers=tuple(spiking),
                     layer_names=tuple(net.layers[i].name for i in spiking),
                     counts=counts_out, labels=labels, params=params)
