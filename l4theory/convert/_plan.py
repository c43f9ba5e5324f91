"""The simulator's plan: a network turned into a list of operations on channels-last blocks.

:func:`plan` maps every layer of a :class:`~l4theory.convert.network.Network` (a chain
or a small graph, :mod:`l4theory.convert.graph`) to an :class:`Op` that names the
positions of the ops it reads (``src``; ``-1`` is the encoded input): weight layers
(dense or event-driven), IF layers (the ReLUs that act on currents), average and max
pooling, flatten, residual additions and the readout. A ReLU on spikes is the identity
and gets no op. :func:`maxpool_gate` is the spiking max pooling.

Spiking max pooling (Rueckauer et al. 2017, "Conversion of continuous-valued deep
networks to efficient event-driven networks for image classification", Sec. 2.2.3).
A max-pooling layer on spikes passes on, at every step, the spikes of the one input in
each window that has the largest accumulated input before that step (its spike count
so far); ties go to the first input of the window in row-major order. The output's
count never exceeds the largest count in its window (the leader's count grows by every
spike it passes on), and for steady rates it follows the maximal rate, which is the
ANN's max pooling of rate-coded activations.
Max pooling must act on spikes (after a ReLU, with which it commutes in the ANN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import _kernels as K
from .graph import add_factors, node_kinds, spiking_units

__all__ = ["Op", "maxpool_gate", "plan"]


@dataclass
class Op:
    """One operation of the plan (see the module docs)."""

    kind: str                      # linear, conv2d, if, pool, maxpool, add, flatten, readout
    index: int = -1                # layer index in the network
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0, 0, 0)
    kernel: tuple = (1, 1)
    v_th: float = 1.0
    slot: int = -1                 # IF (or max-pool) state slot
    shape: tuple = ()              # output shape per sample in the internal layout
    weight_t: np.ndarray | None = None  # (kh, kw, C_in, C_out) for the event convolution
    src: tuple = (-1,)             # positions of the ops this op reads (-1: encoded input)
    factors: tuple = ()            # add: factor on each input
    copy_in: bool = False          # if: the input current is read elsewhere too
    record: int = -1               # position in ``max_current`` of the current recorded here
    in_shape: tuple = field(default=())  # maxpool: the input shape (internal layout)


def internal(shape: tuple) -> tuple:
    """Internal (channels-last) layout of a ``(C, H, W)`` shape; other shapes unchanged."""
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else tuple(shape)


def events_rule(first: bool, encoder: str) -> bool:
    """Whether a convolution runs event-driven (:func:`_kernels.conv_events`) or dense.

    Every convolution fed by spikes (an IF layer's output, possibly average-pooled: values
    ``k / (kh kw)``) is event-driven, and so is the first one unless the encoder is
    ``constant`` (a dense analog input). Dense layers stay on BLAS. Measured on W3 (see
    ``docs/simulation.md``): the event kernel is 1.7-2.3x faster than im2col + sgemm at
    input densities 0.12-0.5; a static rule keeps the summation order, and so the
    result, independent of batch size and block length.
    """
    return not (first and encoder == "constant")


def _weight_op(net, i, lay, src_pos, bias_scale, flat_from, encoder, backend) -> Op:
    w = np.asarray(lay.weight, dtype=np.float32)
    if lay.kind == "linear" and flat_from is not None:  # columns (C, H, W) -> (H, W, C)
        w = np.ascontiguousarray(w.reshape(w.shape[0], *flat_from).transpose(0, 2, 3, 1)
                                 .reshape(w.shape[0], -1))
    b = None
    if lay.bias is not None:
        b = (np.asarray(lay.bias, dtype=np.float64) * bias_scale).astype(np.float32)
    op = Op(lay.kind, i, w, b, getattr(lay, "stride", (1, 1)),
            getattr(lay, "padding", (0, 0, 0, 0)), shape=internal(net.shapes[i + 1]),
            src=(src_pos,))
    if lay.kind == "conv2d" and backend == "numpy" \
            and events_rule(i == net.weight_layers[0], encoder):
        op.weight_t = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    return op


def _flattened_from(net, k: int):
    """``(C, H, W)`` if node ``k`` is a channels-last flatten (through ReLUs and adds), else None.

    Inside the simulator a flatten of ``(C, H, W)`` is in ``(H, W, C)`` order, so the
    dense layer that reads it permutes its weight columns.
    """
    while k >= 0 and net.layers[k].kind in ("relu", "add"):
        k = net.inputs[k][0]
    if k < 0 or net.layers[k].kind != "flatten":
        return None
    shape = net.shapes[net.inputs[k][0] + 1]
    return tuple(shape) if len(shape) == 3 else None


def _bias_scales(net, units, bias_scales, readout_bias_scale, divisors) -> dict:
    """Factor on every weight layer's bias: its unit's scale over its residual path factor."""
    bsc = dict.fromkeys(net.weight_layers, 1.0)
    for u, s in zip(units, bias_scales, strict=True):
        for f in u.feeders:
            bsc[f] = float(s)
    bsc[net.weight_layers[-1]] = float(readout_bias_scale)
    return {i: (s if divisors[i] == 1.0 else s / divisors[i]) for i, s in bsc.items()}


def plan(net, thresholds, bias_scales, readout_bias_scale: float, readout: str,
         readout_threshold: float, encoder: str = "signed", backend: str = "numpy",
         record_max_current: bool = False):
    """The ops of the converted ``net`` and the number of IF state slots.

    Parameters are those of :func:`l4theory.convert.simulate.simulate` (thresholds and
    bias scales per spiking layer, in the order of ``net.spiking_layers``).

    Returns
    -------
    ops : list of Op
    n_slots : int
        IF layers (the readout's included with ``readout="spikes"``).
    """
    units = spiking_units(net)
    last = net.weight_layers[-1]
    if last in [u.weight for u in units]:
        raise ValueError(f"the last weight layer ({last}, '{net.layers[last].name}') is followed "
                         "by a ReLU; the readout layer must be linear")
    factors, divisors = add_factors(net, thresholds)
    bsc = _bias_scales(net, units, bias_scales, readout_bias_scale, divisors)
    unit_at = {u.relu: (k, u) for k, u in enumerate(units)}
    kinds = node_kinds(net)
    readers: dict = {}
    for src in net.inputs:
        for k in src:
            readers[k] = readers.get(k, 0) + 1
    ops: list[Op] = []
    pos_of = {-1: -1}  # layer index -> position of the op holding its output
    slot = 0
    for i, (lay, src) in enumerate(zip(net.layers, net.inputs, strict=True)):
        p = pos_of[src[0]]
        shape_out = internal(net.shapes[i + 1])
        if lay.kind in ("conv2d", "linear"):
            ops.append(_weight_op(net, i, lay, p, bsc[i], _flattened_from(net, src[0]), encoder,
                                  backend))
            pos_of[i] = len(ops) - 1
            if i == last:
                if readout == "spikes":
                    ops.append(Op("if", i, v_th=float(readout_threshold), slot=slot,
                                  shape=shape_out, src=(len(ops) - 1,)))
                    slot += 1
                ops.append(Op("readout", i, shape=shape_out, src=(len(ops) - 1,)))
                break
        elif lay.kind == "relu" and i in unit_at:
            k, u = unit_at[i]
            ops.append(Op("if", u.weight, v_th=float(thresholds[k]), slot=slot, shape=shape_out,
                          src=(p,), copy_in=readers.get(src[0], 0) > 1))
            if record_max_current:
                at = ops[-1] if net.layers[u.pre].kind == "add" else ops[pos_of[u.weight]]
                at.record = k
            slot += 1
            pos_of[i] = len(ops) - 1
        elif lay.kind == "relu":
            pos_of[i] = p  # a ReLU on spikes is the identity
        elif lay.kind in ("avgpool2d", "maxpool2d"):
            if lay.kind == "maxpool2d" and kinds[src[0]] != "spikes":
                raise ValueError(f"layer {i} (maxpool2d '{lay.name}') acts on input currents; "
                                 "the spiking network max-pools spikes: put it after the ReLU "
                                 "(the two commute in the ANN)")
            ops.append(Op("pool" if lay.kind == "avgpool2d" else "maxpool", i,
                          kernel=lay.kernel, stride=lay.stride, shape=shape_out, src=(p,),
                          in_shape=internal(net.shapes[src[0] + 1])))
            if lay.kind == "maxpool2d":
                ops[-1].slot = slot
                slot += 1
            pos_of[i] = len(ops) - 1
        elif lay.kind == "add":
            ops.append(Op("add", i, shape=shape_out, src=tuple(pos_of[k] for k in src),
                          factors=factors[i]))
            pos_of[i] = len(ops) - 1
        else:  # flatten
            ops.append(Op("flatten", i, shape=shape_out, src=(p,)))
            pos_of[i] = len(ops) - 1
    return ops, slot


def pool(h: np.ndarray, kernel, stride, out: np.ndarray | None = None) -> np.ndarray:
    """Average pooling of channels-last ``h`` (R, H, W, C); sum then one division.

    ``out``: optional float32 array of the result's shape to write into.
    """
    kh, kw = kernel
    sh, sw = stride
    _, hh, ww, _ = h.shape
    ho, wo = (hh - kh) // sh + 1, (ww - kw) // sw + 1
    if not K.DISABLED:
        if out is None:
            out = np.empty((h.shape[0], ho, wo, h.shape[3]), np.float32)
        K.avgpool_nhwc(np.ascontiguousarray(h, dtype=np.float32), kh, kw, sh, sw, out)
        return out
    out = None
    for i in range(kh):
        for j in range(kw):
            part = h[:, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw, :]
            out = part.copy() if out is None else np.add(out, part, out=out)
    out /= np.float32(kh * kw)
    return out  # the NumPy path (no JIT) allocates; speed does not matter there


def maxpool_gate(h: np.ndarray, counts: np.ndarray, kernel, stride, tc: int,
                 out: np.ndarray) -> np.ndarray:
    """Spiking max pooling of a block (module docs): the spikes of each window's leader.

    Parameters
    ----------
    h : numpy.ndarray, float32, shape (tc * B, H, W, C)
        Input spikes of ``tc`` steps (step-major), channels-last.
    counts : numpy.ndarray, float32, shape (B * H * W * C,)
        Accumulated input per neuron before the block; updated in place, step by step
        (``c = c + h[t]`` in float32).
    kernel, stride : (int, int)
    tc : int
        Steps in the block.
    out : numpy.ndarray, float32, shape (tc * B, H_out, W_out, C)

    Returns
    -------
    numpy.ndarray
        ``out``: at step ``t`` each output is the input ``h[t]`` of the window element
        with the largest accumulated input before step ``t`` (the first one on ties).
    """
    kh, kw = kernel
    sh, sw = stride
    rows, hh, ww, cc = h.shape
    ho, wo = out.shape[1], out.shape[2]
    hb = h.reshape(tc, rows // tc, hh, ww, cc)
    c = counts.reshape(rows // tc, hh, ww, cc)
    ob = out.reshape(tc, rows // tc, ho, wo, cc)
    for t in range(tc):
        best = val = None
        for i in range(kh):
            for j in range(kw):
                win = (slice(None), slice(i, i + sh * (ho - 1) + 1, sh),
                       slice(j, j + sw * (wo - 1) + 1, sw))
                cw, vw = c[win], hb[t][win]
                if best is None:
                    best, val = cw.copy(), vw.copy()
                else:
                    take = cw > best
                    best = np.where(take, cw, best)
                    val = np.where(take, vw, val)
        ob[t] = val
        c += hb[t]
    return out
