"""The first weight layer of a network: lookup, input-current moments, row scaling, fits.

Every first-layer method of the toolkit (the paper's L4 adjustment and its exact-variance
variant in :mod:`l4theory.adjust`; rate matching and overshoot-aware scaling in
:mod:`l4theory.calibrate`) is built from the same four pieces, defined once here:

:func:`first_weight_layer`
    The index and layer of a network's first ``conv2d``/``linear`` layer, with a clear
    error when there is none (or, on request, when it does not see the encoded input
    directly).
:func:`current_moments`
    Mean and variance of the per-step input current ``I_j = w_j . s (+ b_j)`` of every
    first-layer neuron, per sample and per output position (every convolution window,
    zero padding included), from the per-input mean ``E[s]`` and variance ``Var[s]`` of
    the encoder.
:func:`scale_rows` / :func:`scale_first_layer`
    Multiply each output row (filter) of the weights, and its bias, by a per-row factor
    ``row_factors[j]``. For the discrete neuron this is exactly threshold division
    (``docs/adjustment.md``).
:class:`FirstLayerFit`
    The result every first-layer function returns: the per-row factors, the adjusted
    weights and bias, the adjusted network (when the function was given one) and a
    JSON-safe :meth:`~FirstLayerFit.summary`. Each method's result is a subclass with the
    quantities that method computes (:class:`l4theory.adjust.AdjustResult`,
    :class:`l4theory.calibrate.RateMatchResult`,
    :class:`l4theory.calibrate.OvershootResult`).

Naming: ``row_factors`` are per-row weight factors; "scale" is left to the threshold
multiplier of a sweep.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._checks import as_array, fmt
from .network import Network, conv2d

__all__ = ["CurrentMoments", "FirstLayerFit", "current_moments", "first_weight_layer",
           "membrane_mean", "scale_first_layer", "scale_rows"]


# --------------------------------------------------------------------------- lookup


def first_weight_layer(net: Network, *, direct_input: bool = False) -> tuple[int, object]:
    """The index and layer of the first ``conv2d`` or ``linear`` layer of ``net``.

    Parameters
    ----------
    net : Network
    direct_input : bool
        Also require that the layer sees the encoded input directly (only ``flatten``
        layers before it), as every first-layer method assumes.

    Returns
    -------
    (int, Conv2d or Linear)
        Index into ``net.layers`` and the layer itself (not a copy).

    Raises
    ------
    ValueError
        ``net`` is not a :class:`~l4theory.convert.network.Network`, has no weight layer,
        or (with ``direct_input``) has another kind of layer before it.
    """
    if not isinstance(net, Network):
        raise ValueError(f"net must be a Network, got {type(net).__name__}")
    weight_layers = net.weight_layers
    if not weight_layers:
        kinds = ", ".join(lay.kind for lay in net.layers)
        raise ValueError(f"network '{net.name}' has no conv2d or linear layer (layers: {kinds})")
    first = weight_layers[0]
    if direct_input and any(lay.kind != "flatten" for lay in net.layers[:first]):
        raise ValueError("the first weight layer must receive the encoded input directly")
    return first, net.layers[first]


# --------------------------------------------------------------------------- moments


class CurrentMoments(NamedTuple):
    """Per-step input-current moments of every first-layer neuron.

    A named tuple ``(mean, var)``: unpack it, or read the fields by name.

    Attributes
    ----------
    mean, var : numpy.ndarray or None
        ``mean`` is ``E[I_j]`` (threshold units per step), ``var`` is
        ``Var[I_j] = sum_i w_ji^2 Var[s_i]`` (inputs independent; squared threshold units).
        Each has shape ``(batch, n_out)`` for a dense layer or ``(batch, C_out, H_out, W_out)``
        for a convolution, or is None if not asked for.
    """

    mean: np.ndarray | None
    var: np.ndarray | None


def current_moments(weight, mean=None, var=None, *, bias=None, stride=1,
                    padding=0) -> CurrentMoments:
    """Mean and variance of the per-step input current of every neuron of one layer.

    The current of neuron ``j`` (for a convolution: output channel ``j`` at one output
    position, i.e. one window of the zero-padded input) is ``I_j = w_j . s (+ b_j)``.
    With independent inputs of mean ``E[s_i]`` and variance ``Var[s_i]``,
    ``E[I_j] = w_j . E[s] (+ b_j)`` and ``Var[I_j] = w_j**2 . Var[s]``. Both are computed
    for every sample and every window with the project's convolution
    (:func:`l4theory.convert.network.conv2d`) in float64.

    Parameters
    ----------
    weight : array_like, shape (n_out, n_in) or (C_out, C_in, kh, kw)
        The layer's weights (threshold units per input spike).
    mean : array_like, shape (batch, n_in) or (batch, C_in, H, W), optional
        ``E[s]`` per input and sample (spikes per step). For a dense layer any
        ``(batch, ...)`` shape with ``n_in`` features per sample is flattened in C order.
    var : array_like, same shapes as ``mean``, optional
        ``Var[s]`` per input and sample (spikes squared per step, ``>= 0``).
    bias : array_like, shape (n_out,), optional
        Added to the mean current (a constant does not change the variance).
    stride : int or (int, int)
        Convolution stride.
    padding : int, (ph, pw) or (top, left, bottom, right)
        Zero padding of the convolution.

    Returns
    -------
    CurrentMoments
        ``mean`` and ``var``, shape ``(batch, n_out)`` or ``(batch, C_out, H_out, W_out)``;
        a field is None when its input was not given.

    Raises
    ------
    ValueError
        Neither ``mean`` nor ``var`` is given, or a shape does not match ``weight``.
    """
    w = as_array("weight", weight)
    if w.ndim not in (2, 4):
        raise ValueError("weight must be a dense matrix (n_out, n_in) or a conv kernel "
                         f"(C_out, C_in, kh, kw), got shape {w.shape}")
    if mean is None and var is None:
        raise ValueError("current_moments needs mean (E[s]) or var (Var[s]), got neither")
    b = None
    if bias is not None:
        b = as_array("bias", bias)
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},) (one entry per output "
                             f"row of weight), got shape {b.shape}: {fmt(b)}")
    m1 = None
    if mean is not None:
        m1 = _linear(w, _check_input("mean", mean, w), stride, padding)
        if b is not None:
            m1 = m1 + (b if w.ndim == 2 else b[:, None, None])
    v = None
    if var is not None:
        v = np.maximum(_linear(w * w, _check_input("var", var, w, nonneg=True), stride,
                               padding), 0.0)
    return CurrentMoments(m1, v)


def _check_input(name: str, value, w: np.ndarray, *, nonneg: bool = False) -> np.ndarray:
    x = as_array(name, value, nonneg=nonneg)
    if w.ndim == 2:
        if x.ndim >= 2 and x.shape[0] >= 1 and int(np.prod(x.shape[1:])) == w.shape[1]:
            return x.reshape(x.shape[0], w.shape[1])
        raise ValueError(f"{name} must have shape (batch, {w.shape[1]}) (or (batch, ...) "
                         f"with {w.shape[1]} features per sample) to match weight of shape "
                         f"{w.shape}, got shape {x.shape}")
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[1] != w.shape[1]:
        raise ValueError(f"{name} must have shape (batch, {w.shape[1]}, H, W) to match a "
                         f"conv kernel of shape {w.shape}, got shape {x.shape}")
    return x


def _linear(w: np.ndarray, x: np.ndarray, stride, padding) -> np.ndarray:
    if w.ndim == 2:
        return x @ w.T
    return conv2d(x, w, None, stride, padding)


def membrane_mean(net: Network, x, *, v_th: float, steps: int, alpha: float = 1.0,
                  reset: str = "soft", semantics: str = "project", encoder: str = "signed",
                  seed: int = 0, sample_ids=None, bias_scale: float = 1.0,
                  batch_size: int = 16) -> np.ndarray:
    """Mean membrane potential of every first-layer neuron, sampled in simulation.

    The paper's Eq. 6 takes ``mu_j`` as the mean membrane potential of neuron ``j``,
    sampled on a training batch; :func:`current_moments` gives the per-step input current
    ``w_j . E[s]`` instead, which equals it only without leak and before any reset. This
    function runs the first layer alone (the layers after it do not act on it) under
    ``encoder`` spikes for ``steps`` steps and averages, over the images, the output
    positions and the steps, the value each neuron compares with its threshold:

    - ``semantics="project"``: ``x[t] = alpha v[t-1] + I[t]`` (before the reset);
    - ``semantics="rathi"``: the state ``v[t]`` (compared at step ``t + 1``), with the
      reset of the previous spike applied in the update, as in Rathi et al.'s code.

    The update is :func:`l4theory.convert._kernels.if_scan`'s, in float64. The input
    spikes are the simulator's (:func:`l4theory.convert.simulate.encode_steps`, stream
    key ``(seed, sample_ids[i])``).

    Parameters
    ----------
    net : Network
        Its first weight layer must see the encoded input directly and be followed by a
        ReLU.
    x : numpy.ndarray, shape (n, *net.input_shape)
        Calibration images (normalised as for the ANN).
    v_th : float
        The first layer's threshold (``> 0``; ``inf``: never fires).
    steps : int
        Time steps (>= 1).
    alpha : float
        Leak factor per step in (0, 1].
    reset : {"soft", "hard"}
    semantics : {"project", "rathi"}
    encoder : {"signed", "bernoulli", "poisson", "constant"}
    seed : int
        Seed of the input spike streams.
    sample_ids : array_like of int, shape (n,), optional
        Stream key of each image (default ``0 .. n-1``).
    bias_scale : float
        Factor on the first layer's bias (balancing).
    batch_size : int
        Images per batch (memory only; the result does not depend on it).

    Returns
    -------
    numpy.ndarray, shape (n_out,)
        Mean membrane potential per neuron (output channel), threshold units.

    Raises
    ------
    ValueError
        On an invalid argument (named with its value).
    """
    from .._checks import check_alpha, check_choice, check_int
    from .simulate import ENCODERS, RESETS, SEMANTICS, encode_steps

    first, layer = first_weight_layer(net, direct_input=True)
    if first not in net.spiking_layers:
        raise ValueError("the first weight layer is not followed by a ReLU (no membrane)")
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    alpha = check_alpha("alpha", alpha)
    check_choice("reset", reset, RESETS)
    check_choice("semantics", semantics, SEMANTICS)
    check_choice("encoder", encoder, ENCODERS)
    if not (isinstance(v_th, (int, float, np.floating, np.integer)) and v_th > 0):
        raise ValueError(f"v_th must be a threshold > 0 (or inf), got {v_th!r}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 2 or x.shape[1:] != tuple(net.input_shape) or len(x) < 1:
        raise ValueError(f"x must have shape (n, {', '.join(map(str, net.input_shape))}) "
                         f"with n >= 1, got {x.shape}")
    ids = (np.arange(len(x)) if sample_ids is None
           else np.asarray(sample_ids, dtype=np.int64).ravel())
    if ids.shape != (len(x),):
        raise ValueError(f"sample_ids must have one entry per image ({len(x)}), got "
                         f"shape {ids.shape}")
    w = np.asarray(layer.weight, dtype=np.float64)
    bias = None if layer.bias is None else np.asarray(layer.bias, np.float64) * bias_scale
    hard, rathi = reset == "hard", semantics == "rathi"
    total = np.zeros(w.shape[0])
    count = 0
    for b0 in range(0, len(x), batch_size):
        xb, ib = x[b0:b0 + batch_size], ids[b0:b0 + batch_size]
        s = encode_steps(xb, encoder, int(seed), ib.astype(np.uint64), 0, steps)
        shape = (-1,) if w.ndim == 2 else tuple(net.input_shape)
        cur = _linear(w, s.reshape(steps * len(xb), *shape).astype(np.float64),
                      layer.stride if w.ndim == 4 else 1,
                      layer.padding if w.ndim == 4 else 0)
        if bias is not None:
            cur = cur + (bias if w.ndim == 2 else bias[:, None, None])
        cur = cur.reshape(steps, len(xb), *cur.shape[1:])
        v = np.zeros(cur.shape[1:])
        acc = np.zeros(cur.shape[1:])
        for t in range(steps):
            if rathi:
                fire = v > v_th
                xt = alpha * v + cur[t]
                v = np.where(fire, cur[t] if hard else xt - v_th, xt)
                acc += v
            else:
                xt = alpha * v + cur[t]
                acc += xt
                fire = xt >= v_th
                v = np.where(fire, 0.0 if hard else xt - v_th, xt)
        axes = (0,) if w.ndim == 2 else (0, 2, 3)
        total += acc.sum(axis=axes)
        count += len(xb) * steps * (1 if w.ndim == 2 else acc.shape[2] * acc.shape[3])
    return total / count


# --------------------------------------------------------------------------- row scaling


def _out_dtype(value) -> np.dtype:
    dt = getattr(value, "dtype", None)
    if dt is not None and np.issubdtype(dt, np.floating):
        return dt
    return np.dtype(np.float64)


def _check_row_factors(row_factors, n_out: int) -> np.ndarray:
    k = as_array("row_factors", row_factors, ndim=1)
    if k.shape != (n_out,) or not (k > 0).all():
        raise ValueError(f"row_factors must be {n_out} positive finite factors (one per "
                         f"output row), got shape {k.shape}: {fmt(k)}")
    return k


def scale_rows(weight, bias, row_factors):
    """Multiply output row ``j`` of ``weight`` (and ``bias[j]``) by ``row_factors[j]``.

    Parameters
    ----------
    weight : array_like, shape (n_out, ...)
        Dense weights or a conv kernel; row ``j`` is everything at ``weight[j]``.
    bias : array_like, shape (n_out,), or None
    row_factors : array_like, shape (n_out,)
        Positive finite factors (dimensionless).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray or None)
        New weights and bias (the inputs are not modified), each in its input's floating
        dtype (float64 for integer input). The product is formed in float64 and rounded
        once to that dtype.

    Raises
    ------
    ValueError
        ``row_factors`` has the wrong shape or a factor that is not positive and finite,
        or ``bias`` has the wrong shape.
    """
    w = np.asarray(weight)
    if w.ndim < 1 or w.shape[0] < 1:
        raise ValueError(f"weight must have at least one output row, got shape {w.shape}")
    k = _check_row_factors(row_factors, w.shape[0])
    w_new = (w * k.reshape((-1,) + (1,) * (w.ndim - 1))).astype(_out_dtype(weight))
    if bias is None:
        return w_new, None
    b = np.asarray(bias)
    if b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},) (one entry per output row), "
                         f"got shape {b.shape}: {fmt(b)}")
    return w_new, (b * k).astype(_out_dtype(bias))


def scale_first_layer(net: Network, row_factors) -> Network:
    """A copy of ``net`` whose first weight layer's row ``j`` (and bias) is times a factor.

    Parameters
    ----------
    net : Network
    row_factors : array_like, shape (n_out,)
        Positive finite factors, one per output channel / unit of the first weight layer.

    Returns
    -------
    Network
        A copy (:meth:`Network.copy`); the other layers are unchanged and ``net`` is not
        modified.
    """
    first, lay = first_weight_layer(net)
    w_new, b_new = scale_rows(lay.weight, lay.bias, row_factors)
    out = net.copy()
    out.layers[first].weight = w_new
    if b_new is not None:
        out.layers[first].bias = b_new
    return out


# --------------------------------------------------------------------------- results


def deprecated(old: str, new: str, stacklevel: int = 3) -> None:
    """Issue the :class:`DeprecationWarning` of a call form kept for one release."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; use {new}",
                  DeprecationWarning, stacklevel=stacklevel)


@dataclass(frozen=True, eq=False, kw_only=True)
class FirstLayerFit:
    """What every first-layer method returns (one contract for all of them).

    Attributes
    ----------
    method : str
        ``"l4"``, ``"exact"``, ``"ratematch"`` or ``"overshoot"``.
    row_factors : numpy.ndarray, shape (n_out,)
        The total factor applied to row ``j`` of the first layer's weights and to its
        bias (dimensionless, ``> 0``).
    weights : numpy.ndarray
        The adjusted weights, same shape and floating dtype as the input weights.
    bias : numpy.ndarray or None
        The adjusted bias, shape ``(n_out,)``, or None when there is none.
    network : Network or None
        The adjusted network (a copy with only the first weight layer changed) when the
        function was given a network; None for the array-level functions.
    layer : int or None
        Index of the adjusted layer in ``network.layers`` (None with ``network``).
    """

    method: str
    row_factors: np.ndarray
    weights: np.ndarray
    bias: np.ndarray | None
    network: Network | None = None
    layer: int | None = None

    def summary(self) -> dict:
        """JSON-safe digest for printing and model metadata (plain Python numbers).

        Returns
        -------
        dict
            ``method``, ``n_neurons`` and ``k_min``/``k_median``/``k_max`` of
            ``row_factors``; subclasses add the quantities of their method.
        """
        k = np.asarray(self.row_factors)
        return {"method": self.method, "n_neurons": int(k.size), "k_min": float(k.min()),
                "k_median": float(np.median(k)), "k_max": float(k.max())}

    def _legacy_pair(self) -> tuple:
        """The ``(Network, second)`` pair the function returned before this contract."""
        return self.network, self.summary()

    def __iter__(self):
        """Deprecated: ``net, info = result`` (the former tuple return)."""
        if self.network is None:
            raise TypeError(f"{type(self).__name__} is not iterable")
        deprecated("unpacking the result as (network, ...)",
                   "result.network and result.summary()")
        return iter(self._legacy_pair())
