"""Threshold balancing: one firing threshold per spiking layer from a calibration batch.

Three methods, each returning a :class:`BalanceResult`:

``max`` (Diehl et al. 2015)
    ``lambda_l`` = the largest ANN pre-activation of layer ``l`` over the batch.
``percentile`` (Rueckauer et al. 2017)
    ``lambda_l`` = the ``q``-th percentile (default 99.9) of the layer's *positive* ANN
    pre-activations (as in SNN-TB), computed exactly with memory bounded by the top
    ``(1 - q/100)`` fraction of the values.
``spike`` (Sengupta et al. 2019; Rathi et al. 2020)
    Layer by layer, the network runs with spiking input (the chosen encoder) through IF
    neurons whose earlier thresholds are already set; ``lambda_l`` = the largest per-step
    input current ``W s[t] (+ b)`` into layer ``l`` over all steps, samples and neurons.
    All thresholds are finally multiplied by ``scale`` (default 0.7, Rathi et al.).

Units. The converted network keeps the ANN weights; every spike carries 1 and the input
encoder emits spikes whose mean is the pixel value. For the ANN-based methods a layer's
threshold is therefore ``v_th_l = scale * lambda_l / lambda_{l-1}`` (``lambda_0 = 1``):
the threshold form of Diehl's weight normalisation, so the spike rate of layer ``l``
approximates ``a_l / lambda_l``. A layer's bias must then be divided by ``lambda_{l-1}``
(``BalanceResult.bias_scales``). For ``spike`` the thresholds are measured directly in
these units (``v_th_l = scale * lambda_l``) and biases enter unscaled, as in Rathi et al.
The first spiking layer's threshold is ``scale * lambda_1`` in every method: this is the
``v_th0`` of the L4 adjustment.

Residual networks. ``lambda_{l-1}`` is the statistic of the layer whose spikes feed
layer ``l``'s owning weight layer (:func:`l4theory.convert.graph.weight_sources`); the
pre-activation of the IF layer after a residual addition is the sum (the ANN value at
the :class:`~l4theory.convert.network.Add`), and under ``spike`` its input current is the
sum of both branches. The simulator scales the shortcut branch into the main branch's
units (:mod:`l4theory.convert.graph`, rule 3), so the same thresholds serve all three
methods.

The spiking measurement runs on :func:`l4theory.convert.simulate.simulate` (project
semantics, float32, the counter-based input encoders; ``record_max_current``): layer
``l``'s run has the earlier layers' thresholds installed and the later ones disabled
(``inf``). The slow float64 loop that this replaced is kept as a test twin
(``validation.reference.if_forward``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._checks import as_rng, check_choice, check_int
from ..theory.discrete import ENCODERS
from .graph import spiking_units, weight_sources
from .network import Network
from .simulate import RESETS, simulate

__all__ = ["METHODS", "BalanceResult", "balance"]

METHODS = ("max", "percentile", "spike")


@dataclass
class BalanceResult:
    """Per-layer thresholds and the statistics they came from.

    Attributes
    ----------
    method : str
        ``"max"``, ``"percentile"`` or ``"spike"``.
    layers : tuple of int
        Indices (into ``network.layers``) of the spiking layers, in order.
    thresholds : numpy.ndarray, shape (n_spiking,)
        Firing threshold per spiking layer, in the units described in the module docs.
    lambdas : numpy.ndarray, shape (n_spiking,)
        The raw statistic per layer (max / percentile of ANN pre-activations, or max
        per-step spiking input current), before ``scale``.
    bias_scales : numpy.ndarray, shape (n_spiking,)
        Factor to multiply each spiking layer's bias by (``1/lambda_{l-1}`` for the ANN
        methods, 1 for ``spike``).
    scale : float
        Factor applied to every threshold.
    readout_bias_scale : float
        Factor for the readout layer's bias (``1/lambda_L`` for the ANN methods).
    n_samples : int
        Calibration samples used.
    stats : dict of str to numpy.ndarray
        Per-layer statistics: ``max``, ``mean`` and ``std`` of the pre-activation (or
        current), ``frac_positive``, and ``percentile`` where computed.
    params : dict
        The method's settings (percentile, steps, encoder, seed, reset).
    """

    method: str
    layers: tuple
    thresholds: np.ndarray
    lambdas: np.ndarray
    bias_scales: np.ndarray
    scale: float
    readout_bias_scale: float
    n_samples: int
    stats: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line per spiking layer."""
        lines = [f"balancing: method={self.method} scale={self.scale:g} "
                 f"n_samples={self.n_samples} {self.params}"]
        for k, i in enumerate(self.layers):
            lines.append(f"  layer {i:2d}: lambda={self.lambdas[k]:.6g} "
                         f"v_th={self.thresholds[k]:.6g} max={self.stats['max'][k]:.6g} "
                         f"mean={self.stats['mean'][k]:.4g} std={self.stats['std'][k]:.4g}")
        return "\n".join(lines)


class _TopK:
    """Running largest ``k`` values plus count, sum and sum of squares of a stream."""

    def __init__(self, k: int):
        self.k = max(int(k), 1)
        self.top = np.empty(0)
        self.n = 0

    def add(self, values: np.ndarray):
        v = values.ravel()
        self.n += v.size
        if v.size > self.k:
            v = np.partition(v, v.size - self.k)[v.size - self.k:]
        both = np.concatenate([self.top, v.astype(np.float64)])
        if both.size > self.k:
            both = np.partition(both, both.size - self.k)[both.size - self.k:]
        self.top = both

    def percentile(self, q: float) -> float:
        """Exact ``np.percentile(values, q)`` (linear interpolation) if enough are kept."""
        if self.n == 0:
            return float("nan")
        pos = (self.n - 1) * q / 100.0
        lo = math.floor(pos)
        need = self.n - lo  # values from rank lo upward
        if need > self.top.size:
            raise RuntimeError("percentile needs more values than were kept")  # pragma: no cover
        srt = np.sort(self.top)[::-1]  # descending; srt[j] has ascending rank n-1-j
        v_lo = srt[self.n - 1 - lo]
        v_hi = srt[self.n - 1 - min(lo + 1, self.n - 1)]
        return float(v_lo + (pos - lo) * (v_hi - v_lo))


def _stats_arrays(acc):
    return {k: np.array([a[k] for a in acc]) for k in acc[0]}


def _check_x(net: Network, x):
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x must be a batch (n, {net.input_shape}), got shape {x.shape}")
    return x


def _preactivations(net) -> dict:
    """Spiking layer -> the layer whose output is its ANN pre-activation.

    The weight layer itself (before any pooling, as always), or the residual
    :class:`~l4theory.convert.network.Add` whose sum the IF layer receives.
    """
    return {u.weight: (u.pre if net.layers[u.pre].kind == "add" else u.weight)
            for u in spiking_units(net)}


def _previous(net, lambdas) -> tuple:
    """``lambda`` of the layer feeding each spiking layer (1 for the input), and the readout's."""
    src = weight_sources(net)
    prev = np.array([1.0 if src[i] < 0 else lambdas[src[i]] for i in net.spiking_layers])
    k = src[net.weight_layers[-1]]
    return prev, 1.0 if k < 0 else lambdas[k]


def _ann_balance(net, x, method, q, scale, batch_size):
    layers = net.spiking_layers
    if not layers:
        raise ValueError("the network has no spiking layer (weight layer followed by ReLU)")
    pre = _preactivations(net)
    n_vals = len(x)
    keep = {}
    acc = {i: {"max": -np.inf, "sum": 0.0, "sum2": 0.0, "n": 0, "npos": 0} for i in layers}
    for i in layers:
        total = n_vals * int(np.prod(net.shapes[pre[i] + 1]))
        if method == "percentile":
            keep[i] = _TopK(math.ceil((1 - q / 100.0) * total) + 2)
    for _, outs in net.iter_layers(x, batch_size=batch_size):
        for i in layers:
            z = outs[pre[i]]
            a = acc[i]
            a["max"] = max(a["max"], float(z.max()))
            z64 = z.astype(np.float64)
            a["sum"] += float(z64.sum())
            a["sum2"] += float((z64 * z64).sum())
            a["n"] += z.size
            pos = z[z > 0]
            a["npos"] += pos.size
            if method == "percentile":
                keep[i].add(pos)
    rows, lambdas = [], []
    for i in layers:
        a = acc[i]
        mean = a["sum"] / a["n"]
        row = {"max": a["max"], "mean": mean,
               "std": math.sqrt(max(a["sum2"] / a["n"] - mean * mean, 0.0)),
               "frac_positive": a["npos"] / a["n"]}
        if method == "percentile":
            row["percentile"] = keep[i].percentile(q)
        lam = row["percentile"] if method == "percentile" else row["max"]
        if not lam > 0:
            raise ValueError(f"layer {i} ('{net.layers[i].name}') has no positive pre-activation "
                             "on the calibration batch; cannot set its threshold")
        rows.append(row)
        lambdas.append(lam)
    lambdas = np.array(lambdas)
    prev, prev_readout = _previous(net, lambdas)
    return lambdas, scale * lambdas / prev, 1.0 / prev, 1.0 / prev_readout, _stats_arrays(rows)


def _spike_balance(net, x, scale, steps, encoder, reset, rng, batch_size):
    layers = net.spiking_layers
    if not layers:
        raise ValueError("the network has no spiking layer (weight layer followed by ReLU)")
    seed = int(as_rng(rng).integers(2**63))
    raw = []
    for k, i in enumerate(layers):
        # earlier thresholds installed unscaled (as Rathi et al.), later ones disabled;
        # the same input spikes (one seed) for every layer's measurement
        res = simulate(net, x, thresholds=raw + [np.inf] * (len(layers) - k), steps=steps,
                       encoder=encoder, reset=reset, seed=seed, batch_size=batch_size,
                       record_max_current=True)
        cur_max = float(res.max_current[k])
        if not cur_max > 0:
            raise ValueError(f"layer {i} ('{net.layers[i].name}') receives no positive input "
                             "current under spiking input; cannot set its threshold")
        raw.append(cur_max)
    lambdas = np.array(raw)
    # ANN pre-activation statistics alongside, for reference
    ann, _, _, _, st = _ann_balance(net, x, "max", 100.0, 1.0, 256)
    stats = {"max": lambdas, "mean": st["mean"], "std": st["std"],
             "frac_positive": st["frac_positive"], "ann_max": ann}
    return lambdas, scale * lambdas, np.ones_like(lambdas), 1.0, stats


def balance(net: Network, x, method: str = "max", *, percentile: float = 99.9,
            scale: float | None = None, steps: int = 100, encoder: str = "signed",
            reset: str = "soft", rng=None, batch_size: int = 256) -> BalanceResult:
    """Per-layer firing thresholds from a calibration batch.

    Parameters
    ----------
    net : Network
    x : numpy.ndarray, shape (n, *input_shape)
        Calibration inputs from the training set, normalised as for the ANN.
    method : {"max", "percentile", "spike"}
    percentile : float
        For ``percentile``: in (0, 100].
    scale : float, optional
        Multiplies every threshold; default 1 for ``max``/``percentile``, 0.7 for
        ``spike`` (Rathi et al. 2020).
    steps : int
        For ``spike``: time steps per layer measurement.
    encoder : {"bernoulli", "signed", "poisson", "constant"}
        For ``spike``: the input encoder (:data:`l4theory.theory.discrete.ENCODERS`).
    reset : {"soft", "hard"}
        For ``spike``: reset of the IF neurons of earlier layers.
    rng : numpy.random.Generator, int or None
        For ``spike``: draws the seed of the counter-based input streams of
        :func:`~l4theory.convert.simulate.simulate` (the same spikes for every layer's
        measurement).
    batch_size : int
        Samples per forward batch (memory bound).

    Returns
    -------
    BalanceResult
    """
    x = _check_x(net, x)
    check_choice("method", method, METHODS)
    if scale is None:
        scale = 0.7 if method == "spike" else 1.0
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be > 0, got {scale!r}")
    params: dict = {}
    if method == "spike":
        steps = check_int("steps", steps, minimum=1)
        check_choice("encoder", encoder, ENCODERS)
        check_choice("reset", reset, RESETS)
        lam, th, bs, rbs, stats = _spike_balance(net, x, float(scale), steps, encoder, reset, rng,
                                                 batch_size)
        params = {"steps": steps, "encoder": encoder, "reset": reset}
    else:
        if not 0 < percentile <= 100:
            raise ValueError(f"percentile must lie in (0, 100], got {percentile!r}")
        lam, th, bs, rbs, stats = _ann_balance(net, x, method, float(percentile), float(scale),
                                          batch_size)
        if method == "percentile":
            params = {"percentile": float(percentile)}
    return BalanceResult(method, tuple(net.spiking_layers), th, lam, bs, float(scale),
                         float(rbs), len(x), stats, params)
