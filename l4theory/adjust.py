"""The L4-norm weight adjustment of a converted network's first layer (paper Eqs. 6-9).

Under rate-coded (Bernoulli/Poisson) input the pre-firing membrane potential of neuron
``j`` has a mean set by ``w_j . E[s]`` and a spread that the paper bounds by the L4 norm
``||w_j||_4``. A neuron whose weights are "peaky" (large L4 norm relative to the layer)
crosses a threshold set for the mean more often than its ANN activation warrants; the
adjustment rescales each row so that its *effective* threshold (Eq. 6) moves back to the
balanced threshold ``v_th0``.

For a layer with rows ``w_j`` (a conv kernel is flattened over ``(C_in, kh, kw)``):

1. ``mu_j`` = mean per-step input current ``w_j . E[s] (+ b_j)`` over the calibration
   batch and over every convolution window, zero padding included.
2. ``L4_j = ||w_j||_4``, ``muL4 = mean_j L4_j``.
3. Eq. 8: ``L4s_j = (L4_j + r_s muL4) / (1 + r_s)``, ``rho_j = L4s_j / muL4``.
4. Eq. 6: ``v_hat_j = mu_j + rho_j (v_th0 - mu_j)``.
5. Eq. 7: ``s_j = v_th0 / v_hat_j``; Eq. 9: ``s_hat_j = (s_j + r_s) / (1 + r_s)``.
6. Row ``j`` (and its bias) is multiplied by ``s_hat_j``; then the whole layer is
   multiplied by ``c = mean|W| / mean|W_scaled|`` so that its mean weight magnitude is
   the original one.

Guard: where ``v_hat_j <= 0`` or is not finite, Eq. 7 has no meaning (the neuron's
effective threshold is not positive). Such a neuron is left unadjusted: its ``s_j`` and
``s_hat_j`` are set to exactly 1 (``v_hat_j`` is reported as computed), it is flagged in
``guarded`` and counted in ``n_guarded``. It still takes the layer rescale ``c`` like every
other row, because ``c`` is a property of the layer (it restores the layer's mean ``|w|``),
so its weights relative to the rest of the layer are unchanged. With ``strict=True`` a
guarded neuron raises :class:`ValueError` instead, naming the neurons.

``method="exact"`` (beyond the paper) replaces the L4 proxy in Eq. 8 by the exact
per-step standard deviation of the input current, ``sigma_j = mean over batch and windows
of sqrt(sum_i w_ji^2 Var[s_i])``; see ``docs/adjustment.md``.

The contract (shared with :mod:`l4theory.calibrate`): a function and an estimator twin.

- :func:`adjusted_network` (network in) and :func:`adjust_weights` (one layer's arrays in)
  return an :class:`AdjustResult`, a :class:`~l4theory.convert.first_layer.FirstLayerFit`:
  ``row_factors`` (``c * s_hat_j``), the adjusted ``weights`` and ``bias``, ``network``
  (the adjusted copy; None from :func:`adjust_weights`), :meth:`~AdjustResult.summary`
  and every intermediate of Eqs. 6-9.
- :class:`L4Adjuster` stores settings in ``__init__``; ``fit(net, x, v_th0)`` sets the
  fitted attributes (``row_factors_``, ``result_``, ``summary_`` and one per intermediate);
  ``adjust(net)`` always returns a new :class:`~l4theory.convert.network.Network` whose
  first layer is adjusted.

The forms before this contract (``net, res = adjusted_network(...)``,
``L4Adjuster.fit(weights, inputs, v_th0, bias)``, ``adjust(weights, bias)`` returning
arrays, ``AdjustResult.scales``) still work for one release with a
:class:`DeprecationWarning` that names the new form.

See ``docs/adjustment.md`` for the conventions and the invariances the tests check.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ._checks import as_array, check_int, check_positive, fmt
from .convert.first_layer import (
    FirstLayerFit,
    current_moments,
    deprecated,
    first_weight_layer,
    scale_first_layer,
    scale_rows,
)

__all__ = ["AdjustResult", "L4Adjuster", "NotFittedError", "adjust_weights", "adjusted_network",
           "mean_patch"]

_METHODS = ("l4", "exact")
# Upper bound on the elements of one chunk of the exact-variance convolution.
_CHUNK_ELEMS = 1 << 22


class NotFittedError(ValueError, AttributeError):
    """Raised when :meth:`L4Adjuster.adjust` is called before :meth:`L4Adjuster.fit`."""


# --------------------------------------------------------------------------- validation


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (check_int(name, value[0], minimum=minimum),
                check_int(name, value[1], minimum=minimum))
    v = check_int(name, value, minimum=minimum)
    return (v, v)


def _check_weights(weights) -> np.ndarray:
    w = as_array("weights", weights)
    if w.ndim not in (2, 4):
        raise ValueError(
            "weights must be a dense matrix (n_out, n_in) or a conv kernel "
            f"(C_out, C_in, kh, kw), got shape {w.shape}"
        )
    if 0 in w.shape:
        raise ValueError(f"weights must not be empty, got shape {w.shape}")
    if not np.any(w):
        raise ValueError(
            f"weights are all zero (shape {w.shape}): the layer's mean L4 norm is 0 and "
            "Eq. 8 is undefined"
        )
    return w


def _check_bias(bias, n_out: int) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_array("bias", bias)
    if b.shape != (n_out,):
        raise ValueError(
            f"bias must have shape ({n_out},) (one entry per output row of weights), "
            f"got shape {b.shape}: {fmt(b)}"
        )
    return b


def _check_method(method) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return method


def _check_r_s(r_s) -> float:
    arr = as_array("r_s", r_s, nonneg=True, allow_inf=True)
    if arr.ndim != 0:
        raise ValueError(f"r_s must be a scalar >= 0 (np.inf allowed), got {fmt(arr)}")
    return float(arr)


def _check_v_th0(v_th0) -> float:
    arr = check_positive("v_th0", v_th0)
    if arr.ndim != 0:
        raise ValueError(f"v_th0 must be a scalar > 0, got {fmt(arr)}")
    return float(arr)


def _check_inputs(name: str, inputs, w: np.ndarray, *, nonneg: bool = False) -> np.ndarray:
    """Validate the calibration batch against the weights; dense inputs come back 2-D."""
    x = as_array(name, inputs, nonneg=nonneg)
    if w.ndim == 2:
        n_in = w.shape[1]
        if x.ndim >= 2 and x.shape[0] >= 1 and math.prod(x.shape[1:]) == n_in:
            return x.reshape(x.shape[0], n_in)
        raise ValueError(
            f"{name} must have shape (batch, {n_in}) (or (batch, ...) with {n_in} features "
            f"per sample, flattened in C order) to match weights of shape {w.shape}, "
            f"got shape {x.shape}"
        )
    if x.ndim != 4 or x.shape[0] < 1 or x.shape[1] != w.shape[1]:
        raise ValueError(
            f"{name} must have shape (batch, {w.shape[1]}, H, W) to match a conv kernel of "
            f"shape {w.shape}, got shape {x.shape}"
        )
    return x


def _conv_geometry(x_shape, w_shape, stride, padding) -> tuple[int, int]:
    (sh, sw), (ph, pw) = stride, padding
    kh, kw = w_shape[2:]
    h, wd = x_shape[2:]
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    if h + 2 * ph < kh or wd + 2 * pw < kw or oh < 1 or ow < 1:
        raise ValueError(
            f"kernel {kh}x{kw} does not fit inputs of spatial size {h}x{wd} with "
            f"padding={padding}, stride={stride}"
        )
    return oh, ow


def _window_slices(a: int, b: int, oh: int, ow: int, stride) -> tuple[slice, slice]:
    """Slices of the padded map that kernel offset ``(a, b)`` sees over all windows."""
    sh, sw = stride
    return slice(a, a + sh * (oh - 1) + 1, sh), slice(b, b + sw * (ow - 1) + 1, sw)


# --------------------------------------------------------------------------- statistics


def mean_patch(inputs, kernel_size, *, stride=1, padding=0) -> np.ndarray:
    """Mean im2col patch of a batch, over samples and every convolution window.

    By linearity ``mean over (batch, windows) of w . patch == w . mean_patch``, so the
    adjustment's ``mu_j`` only needs this one patch. It is computed from shifted strided
    views of the batch-mean (zero-padded) input map, ``kh * kw`` sums in all; the batch is
    never unfolded.

    Parameters
    ----------
    inputs : array_like, shape (batch, C_in, H, W)
        Expected per-step spike input ``E[s]`` (dimensionless spikes per step).
    kernel_size : int or (int, int)
        ``(kh, kw)``.
    stride, padding : int or (int, int)
        Convolution stride (``>= 1``) and symmetric zero padding (``>= 0``).

    Returns
    -------
    numpy.ndarray, shape (C_in * kh * kw,)
        The mean patch, flattened in ``(C_in, kh, kw)`` C order like the kernel rows.
    """
    x = as_array("inputs", inputs, ndim=4)
    kh, kw = _pair("kernel_size", kernel_size, 1)
    stride = _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    if x.shape[0] < 1:
        raise ValueError(f"inputs must hold at least one sample, got shape {x.shape}")
    return _mean_patch(x, (kh, kw), stride, padding)


def _mean_patch(x: np.ndarray, ksize, stride, padding) -> np.ndarray:
    kh, kw = ksize
    oh, ow = _conv_geometry(x.shape, (0, 0, kh, kw), stride, padding)
    ph, pw = padding
    xbar = np.pad(x.mean(axis=0), ((0, 0), (ph, ph), (pw, pw)))
    patch = np.empty((x.shape[1], kh, kw))
    for a in range(kh):
        for b in range(kw):
            rs, cs = _window_slices(a, b, oh, ow, stride)
            patch[:, a, b] = xbar[:, rs, cs].mean(axis=(1, 2))
    return patch.reshape(-1)


def _l4_rows(w2d: np.ndarray) -> np.ndarray:
    """Row-wise L4 norms (:func:`l4theory.theory.norms.l4_norm`, overflow-safe)."""
    from .theory.norms import l4_norm

    return l4_norm(w2d, axis=1)


def _exact_sigma(w: np.ndarray, var: np.ndarray, stride, padding) -> np.ndarray:
    """Mean over batch and windows of ``sqrt(sum_i w_ji^2 Var[s_i])``, per output row.

    The variances come from :func:`l4theory.convert.first_layer.current_moments`, one chunk
    of samples at a time (bounded memory).
    """
    n_out = w.shape[0]
    if w.ndim == 2:
        chunk = max(1, _CHUNK_ELEMS // max(n_out, 1))
        total = np.zeros(n_out)
        for start in range(0, var.shape[0], chunk):
            v = current_moments(w, var=var[start:start + chunk]).var
            total += np.sqrt(v).sum(axis=0)
        return total / var.shape[0]
    oh, ow = _conv_geometry(var.shape, w.shape, stride, padding)
    chunk = max(1, _CHUNK_ELEMS // (max(n_out, math.prod(w.shape[1:])) * oh * ow))
    total = np.zeros(n_out)
    for start in range(0, var.shape[0], chunk):
        v = current_moments(w, var=var[start:start + chunk], stride=stride,
                            padding=padding).var
        sd = np.ascontiguousarray(np.sqrt(v)).reshape(v.shape[0], n_out, oh * ow)
        total += sd.sum(axis=(0, 2))
    return total / (var.shape[0] * oh * ow)


# --------------------------------------------------------------------------- core


@dataclass(frozen=True, eq=False, kw_only=True)
class AdjustResult(FirstLayerFit):
    """Outcome of :func:`adjust_weights` and :func:`adjusted_network`.

    A :class:`~l4theory.convert.first_layer.FirstLayerFit` (``method``, ``row_factors``,
    ``weights``, ``bias``, ``network``, ``layer``, :meth:`summary`) with every intermediate
    of Eqs. 6-9; every per-neuron array has shape ``(n_out,)``.

    Attributes
    ----------
    weights : numpy.ndarray
        Adjusted weights, same shape (and floating dtype) as the input weights.
    bias : numpy.ndarray or None
        Adjusted bias, shape ``(n_out,)``, or None when no bias was given.
    row_factors : numpy.ndarray
        Total factor ``c * s_hat_j`` applied to row ``j`` and its bias.
    network : Network or None
        The adjusted network (:func:`adjusted_network`); None from :func:`adjust_weights`.
    layer : int or None
        Index of the adjusted layer in ``network.layers``.
    mu : numpy.ndarray
        ``mu_j``, the mean per-step input current (threshold units), bias included.
    l4 : numpy.ndarray
        ``L4_j = ||w_j||_4`` of the flattened rows.
    mu_l4 : float
        ``muL4 = mean_j L4_j``.
    spread : numpy.ndarray
        The per-neuron spread used in Eq. 8: ``l4`` for ``method="l4"``, the exact mean
        per-step standard deviation ``sigma_j`` for ``method="exact"``.
    rho : numpy.ndarray
        ``rho_j`` of Eq. 8 (smoothed spread over its layer mean).
    v_hat : numpy.ndarray
        ``v_hat_j`` of Eq. 6, as computed (also where guarded).
    s : numpy.ndarray
        ``s_j = v_th0 / v_hat_j`` (Eq. 7); exactly 1 where guarded.
    s_hat : numpy.ndarray
        ``s_hat_j = (s_j + r_s) / (1 + r_s)`` (Eq. 9); exactly 1 where guarded.
    c : float
        Layer rescale ``mean|W| / mean|W * s_hat|``; the adjusted row ``j`` is
        ``c * s_hat_j * w_j``.
    guarded : numpy.ndarray of bool
        Neurons with ``v_hat_j <= 0`` or not finite, left unadjusted.
    n_guarded : int
        ``guarded.sum()``.
    r_s : float
        Smoothing ratio used (``inf`` = no change).
    v_th0 : float
        Balanced threshold used.
    method : str
        ``"l4"`` (the paper) or ``"exact"``.
    """

    mu: np.ndarray
    l4: np.ndarray
    mu_l4: float
    spread: np.ndarray
    rho: np.ndarray
    v_hat: np.ndarray
    s: np.ndarray
    s_hat: np.ndarray
    c: float
    guarded: np.ndarray
    n_guarded: int
    r_s: float
    v_th0: float
    method: str = "l4"

    @property
    def scales(self) -> np.ndarray:
        """Deprecated alias of ``row_factors`` (``c * s_hat_j``)."""
        deprecated("AdjustResult.scales", "AdjustResult.row_factors")
        return self.row_factors

    def summary(self) -> dict:
        """JSON-safe summary for printing and model metadata.

        Returns
        -------
        dict
            ``method``, ``r_s`` (a float, or the string ``"inf"``), ``v_th0``,
            ``n_neurons``, ``n_guarded``, ``c``, ``s_min``/``s_median``/``s_max`` and
            ``s_hat_min``/``s_hat_median``/``s_hat_max`` (plain Python numbers).
        """
        return _summary(self.method, self.r_s, self.v_th0, self.s, self.s_hat, self.c,
                        self.n_guarded)

    def _legacy_pair(self) -> tuple:
        return self.network, self


def _summary(method, r_s, v_th0, s, s_hat, c, n_guarded) -> dict:
    return {
        "method": method,
        "r_s": r_s if math.isfinite(r_s) else "inf",
        "v_th0": float(v_th0),
        "n_neurons": int(s.size),
        "n_guarded": int(n_guarded),
        "c": float(c),
        "s_min": float(np.min(s)),
        "s_median": float(np.median(s)),
        "s_max": float(np.max(s)),
        "s_hat_min": float(np.min(s_hat)),
        "s_hat_median": float(np.median(s_hat)),
        "s_hat_max": float(np.max(s_hat)),
    }


@dataclass(frozen=True, eq=False)
class _Fit:
    """The fitted quantities of Eqs. 6-9 for one layer (see :class:`AdjustResult`)."""

    shape: tuple
    mu: np.ndarray
    l4: np.ndarray
    mu_l4: float
    spread: np.ndarray
    rho: np.ndarray
    v_hat: np.ndarray
    s: np.ndarray
    s_hat: np.ndarray
    c: float
    guarded: np.ndarray
    n_guarded: int
    r_s: float
    v_th0: float
    method: str

    #: Per-neuron arrays, copied read-only onto a fitted :class:`L4Adjuster` as ``name_``.
    ARRAYS = ("mu", "l4", "spread", "rho", "v_hat", "s", "s_hat", "guarded")


def _check_geometry(w: np.ndarray, stride, padding) -> tuple:
    stride = _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    if w.ndim == 2 and (stride != (1, 1) or padding != (0, 0)):
        raise ValueError(
            f"stride and padding apply to conv kernels only; weights of shape {w.shape} are "
            f"dense, got stride={stride}, padding={padding}"
        )
    return stride, padding


def _exact_spread(w, x, inputs, input_var, stride, padding) -> np.ndarray:
    """``sigma_j`` of ``method="exact"``: the exact per-step std of the input current."""
    if input_var is None:
        if np.any(np.abs(x) > 1):
            raise ValueError(
                'method="exact" derives Var[s] = |E[s]| (1 - |E[s]|) (bernoulli and '
                "signed encoders), which needs |inputs| <= 1; got max |inputs| = "
                f"{float(np.abs(x).max())!r}. Pass input_var for other encoders."
            )
        var = np.abs(x) * (1.0 - np.abs(x))
    else:
        var = _check_inputs("input_var", input_var, w, nonneg=True)
        if var.shape != x.shape:
            raise ValueError(
                f"input_var has shape {np.shape(input_var)} but inputs has shape "
                f"{np.shape(inputs)}; they must match"
            )
    spread = _exact_sigma(w if w.ndim == 4 else w.reshape(w.shape[0], -1), var, stride, padding)
    if not np.any(spread > 0):
        raise ValueError(
            'method="exact": every neuron has zero input-current variance on this '
            "calibration batch (deterministic input), so Eq. 8 is undefined"
        )
    return spread


def _factors(mu, spread, v_th0, r_s, strict):
    """Eqs. 8, 6, 7 and 9: ``(rho, v_hat, s, s_hat, guarded)`` per neuron."""
    n_out = mu.shape[0]
    spread_mean = float(spread.mean())
    if math.isinf(r_s):  # Eq. 8
        rho = np.ones(n_out)
    else:
        rho = ((spread + r_s * spread_mean) / (1.0 + r_s)) / spread_mean
    with np.errstate(over="ignore", invalid="ignore"):  # Eq. 6
        v_hat = mu + rho * (v_th0 - mu)
    guarded = ~np.isfinite(v_hat) | (v_hat <= 0)
    if strict and guarded.any():
        idx = np.flatnonzero(guarded)
        shown = ", ".join(f"{i} (v_hat={v_hat[i]!r})" for i in idx[:10])
        more = f" and {idx.size - 10} more" if idx.size > 10 else ""
        raise ValueError(
            f"strict=True: {idx.size} neuron(s) have v_hat <= 0 or not finite, so Eq. 7 "
            f"is undefined: neurons {shown}{more}"
        )
    # Eq. 7 and Eq. 9 (guarded neurons: exactly 1).
    safe_v_hat = np.where(guarded, v_th0, v_hat)
    s = np.where(guarded, 1.0, v_th0 / safe_v_hat)
    s_hat = np.ones(n_out) if math.isinf(r_s) else (s + r_s) / (1.0 + r_s)
    return rho, v_hat, s, np.where(guarded, 1.0, s_hat), guarded


def _rescale(w2d: np.ndarray, s_hat: np.ndarray, r_s: float) -> float:
    """Layer factor ``c`` restoring the mean ``|w|`` (1 for ``r_s = inf``)."""
    if math.isinf(r_s):
        return 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        c = float(np.abs(w2d).mean() / np.abs(w2d * s_hat[:, None]).mean())
    if not (math.isfinite(c) and c > 0):
        raise ValueError(
            f"the layer rescale c = mean|W| / mean|W_scaled| is {c!r}; the factors "
            f"s_hat ({fmt(s_hat)}) overflow for these weights"
        )
    return c


def _fit(weights, inputs, v_th0, r_s, bias, stride, padding, strict, method,
         input_var, mu=None) -> _Fit:
    """Validate everything and compute Eqs. 6-9 for one layer."""
    w = _check_weights(weights)
    n_out = w.shape[0]
    b = _check_bias(bias, n_out)
    v_th0 = _check_v_th0(v_th0)
    r_s = _check_r_s(r_s)
    method = _check_method(method)
    if not isinstance(strict, (bool, np.bool_)):
        raise ValueError(f"strict must be a bool, got {strict!r}")
    stride, padding = _check_geometry(w, stride, padding)
    x = _check_inputs("inputs", inputs, w)
    if input_var is not None and method != "exact":
        raise ValueError('input_var is used by method="exact" only; got method="l4"')

    w2d = w.reshape(n_out, -1)
    # Step 1: mu_j = mean over batch and windows of w_j . patch (+ b_j).
    patch = x.mean(axis=0) if w.ndim == 2 else _mean_patch(x, w.shape[2:], stride, padding)
    with np.errstate(over="ignore", invalid="ignore"):
        mu_current = w2d @ patch
        if b is not None:
            mu_current = mu_current + b
    if mu is None:
        mu = mu_current
    else:  # a measured mean (the paper's sampled membrane, membrane_mean) replaces step 1
        mu = np.asarray(mu, dtype=np.float64)
        if mu.shape != (n_out,) or not np.isfinite(mu).all():
            raise ValueError(f"mu must be {n_out} finite values (one per output row), got "
                             f"shape {mu.shape}: {fmt(mu)}")
    # Step 2: L4 norms per (flattened) row; the spread of Eq. 8.
    l4 = _l4_rows(w2d)
    spread = l4 if method == "l4" else _exact_spread(w, x, inputs, input_var, stride, padding)
    # Steps 3-6: Eqs. 8, 6, 7, 9 and the layer rescale.
    rho, v_hat, s, s_hat, guarded = _factors(mu, spread, v_th0, r_s, strict)
    c = _rescale(w2d, s_hat, r_s)
    return _Fit(shape=w.shape, mu=mu, l4=l4, mu_l4=float(l4.mean()), spread=spread, rho=rho,
                v_hat=v_hat, s=s, s_hat=s_hat, c=c, guarded=guarded,
                n_guarded=int(guarded.sum()), r_s=r_s, v_th0=v_th0, method=method)


def _apply(weights, bias, row_factors: np.ndarray, shape=None):
    """Multiply row ``j`` of ``weights`` (and ``bias[j]``) by ``row_factors[j]``."""
    w = as_array("weights", weights)
    if shape is not None and w.shape != tuple(shape):
        raise ValueError(
            f"weights has shape {w.shape} but the adjuster was fitted on shape "
            f"{tuple(shape)}; they must match"
        )
    _check_bias(bias, row_factors.shape[0])
    return scale_rows(weights, bias, row_factors)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


def _result(fit: _Fit, weights, bias) -> AdjustResult:
    """The :class:`AdjustResult` of a fit applied to ``weights`` and ``bias``."""
    row_factors = fit.c * fit.s_hat
    w_new, b_new = _apply(weights, bias, row_factors)
    ro = {k: _readonly(getattr(fit, k)) for k in _Fit.ARRAYS}
    return AdjustResult(weights=w_new, bias=b_new, row_factors=_readonly(row_factors),
                        mu_l4=fit.mu_l4, c=fit.c, n_guarded=fit.n_guarded, r_s=fit.r_s,
                        v_th0=fit.v_th0, method=fit.method, **ro)


def adjust_weights(weights, inputs, v_th0, r_s, *, bias=None, stride=1, padding=0,
                   strict=False, method="l4", input_var=None) -> AdjustResult:
    """Apply the paper's L4 adjustment (Eqs. 6-9) to one layer's weights.

    Parameters
    ----------
    weights : array_like, shape (n_out, n_in) or (C_out, C_in, kh, kw)
        Dense weights or a conv kernel, in threshold units per input spike. Rows (output
        channels) are flattened over ``(C_in, kh, kw)`` in C order.
    inputs : array_like, shape (batch, n_in) or (batch, C_in, H, W)
        Calibration batch of the *expected* per-step spike input ``E[s]`` (the caller
        converts pixels with its encoder's mean: ``clip(x, -1, 1)`` for the signed
        encoder, ``clip(x, 0, 1)`` for bernoulli). For dense weights any
        ``(batch, ...)`` shape with ``n_in`` features per sample is flattened in C order.
    v_th0 : float
        The layer's balanced threshold before any sweep scale (``> 0``, threshold units).
    r_s : float
        Smoothing ratio ``>= 0`` of Eqs. 8 and 9 (applied in both, as the paper writes);
        ``np.inf`` means no change.
    bias : array_like, shape (n_out,), optional
        Bias per row; it enters ``mu_j`` and is scaled with its row.
    stride, padding : int or (int, int)
        Convolution stride (``>= 1``) and symmetric zero padding (``>= 0``); conv only.
    strict : bool
        Raise :class:`ValueError` naming the neurons with ``v_hat_j <= 0`` or not finite
        instead of leaving them unadjusted.
    method : {"l4", "exact"}
        ``"l4"`` (default, the paper): the spread in Eq. 8 is ``||w_j||_4``. ``"exact"``
        (beyond the paper): the spread is the exact per-step standard deviation of the
        input current, averaged over the calibration batch and windows.
    input_var : array_like, optional
        ``method="exact"`` only: per-step spike variance ``Var[s]``, same shape as
        ``inputs``. Default ``|E[s]| (1 - |E[s]|)``, right for the bernoulli and signed
        encoders (use ``E[s]`` for poisson, 0 for constant input).

    Returns
    -------
    AdjustResult
        Adjusted weights and bias, every intermediate of Eqs. 6-9, the guard mask and
        count; :meth:`AdjustResult.summary` gives a JSON-safe digest.

    Raises
    ------
    ValueError
        On invalid input (the message names the parameter and value), all-zero weights,
        or, with ``strict=True``, guarded neurons.
    """
    fit = _fit(weights, inputs, v_th0, r_s, bias, stride, padding, strict, method, input_var)
    return _result(fit, weights, bias)


def _network_fit(net, x_calib, v_th0, r_s, encoder, method, strict, input_var, mu=None):
    """Eqs. 6-9 on the first weight layer of ``net``: ``(index, layer, _Fit)``."""
    from .theory import spike_cumulant

    first, layer = first_weight_layer(net, direct_input=True)
    if first not in net.spiking_layers:
        raise ValueError("the first weight layer is not followed by a ReLU (nothing to adjust)")
    es = spike_cumulant(1, encoder, np.asarray(x_calib, dtype=np.float64))
    kw = {}
    if layer.kind == "conv2d":
        t, left, b, r = layer.padding
        if (t, left) != (b, r):
            raise ValueError(f"layer '{layer.name}' has asymmetric padding {layer.padding}")
        kw = {"stride": layer.stride, "padding": (t, left)}
    else:
        es = es.reshape(len(es), -1)
    fit = _fit(layer.weight, es, v_th0, r_s, layer.bias, kw.get("stride", 1),
               kw.get("padding", 0), strict, method, input_var, mu)
    return first, layer, fit


def adjusted_network(net, x_calib, v_th0: float, r_s: float, *, encoder: str = "signed",
                     method: str = "l4", strict: bool = False,
                     input_var=None, mu=None) -> AdjustResult:
    """A copy of ``net`` whose first weight layer is L4-adjusted (Eqs. 6-9).

    Parameters
    ----------
    net : l4theory.convert.network.Network
    x_calib : numpy.ndarray, shape (n, *net.input_shape)
        Calibration inputs (training set); their expected spikes per step ``E[s]``
        (:func:`l4theory.theory.spike_cumulant` of order 1 under ``encoder``) give ``mu_j``.
    v_th0 : float
        The first layer's balanced threshold (before any sweep scale).
    r_s : float
        Smoothing ratio (``>= 0``; ``inf`` = no change).
    encoder : str
        Input encoder (sets ``E[s]``).
    method : {"l4", "exact"}
        Spread measure of Eq. 8.
    strict : bool
        Raise instead of leaving guarded neurons (``v_hat <= 0``) unadjusted.
    input_var : array_like, optional
        ``method="exact"`` only: ``Var[s]`` per input, shape of ``x_calib``; see
        :func:`adjust_weights`.
    mu : array_like, shape (n_out,), optional
        The mean ``mu_j`` of Eq. 6, measured elsewhere, instead of step 1's per-step
        current ``w_j . E[s]``: the paper samples the first layer's mean membrane
        potential on a training batch
        (:func:`l4theory.convert.first_layer.membrane_mean`). It changes Eq. 6 only.

    Returns
    -------
    AdjustResult
        ``network`` is the adjusted copy of ``net`` and ``layer`` the index of its first
        weight layer; ``weights``/``bias`` are that layer's new arrays. (Unpacking the
        result as ``(network, result)``, the form before this contract, still works for
        one release with a :class:`DeprecationWarning`.)
    """
    first, layer, fit = _network_fit(net, x_calib, v_th0, r_s, encoder, method, strict,
                                     input_var, mu)
    res = _result(fit, layer.weight, layer.bias)
    out = scale_first_layer(net, res.row_factors)
    return dataclasses.replace(res, network=out, layer=first)


class L4Adjuster:
    """Estimator-style twin of :func:`adjusted_network` (scikit-learn conventions).

    ``__init__`` only stores the settings; :meth:`fit` computes Eqs. 6-9 on the first
    weight layer of a network and a calibration batch and sets the fitted attributes
    (trailing underscore); :meth:`adjust` returns a copy of a network with the fitted
    per-row factors ``row_factors_ = c_ * s_hat_`` applied to its first layer.
    ``L4Adjuster(r_s).fit(net, x, v).adjust(net)`` equals
    ``adjusted_network(net, x, v, r_s).network`` exactly: both share one implementation.

    Parameters
    ----------
    r_s : float
        Smoothing ratio ``>= 0`` (``np.inf`` = no change).
    strict : bool
        Raise on guarded neurons instead of leaving them unadjusted.
    stride, padding : int or (int, int)
        Convolution geometry; used only by the deprecated array form of :meth:`fit` (a
        network's layer carries its own).
    method : {"l4", "exact"}
        Spread measure in Eq. 8; see :func:`adjust_weights`.
    encoder : str
        Input encoder that turns the calibration inputs into ``E[s]``.

    Attributes
    ----------
    row_factors_ : numpy.ndarray, shape (n_out,)
        The fitted per-row factors ``c_ * s_hat_``.
    result_ : AdjustResult
        The full result of the fit (its ``network`` is None: see :meth:`adjust`).
    summary_ : dict
        ``result_.summary()``.
    mu_, l4_, spread_, rho_, v_hat_, s_, s_hat_, guarded_ : numpy.ndarray, shape (n_out,)
        As in :class:`AdjustResult`.
    mu_l4_, c_ : float
        Mean L4 norm and the layer rescale.
    n_guarded_ : int
        Number of guarded neurons.
    v_th0_ : float
        Threshold used in the fit.
    weights_shape_ : tuple of int
        Shape of the fitted weights.
    """

    def __init__(self, r_s=1.0, *, strict=False, stride=1, padding=0, method="l4",
                 encoder="signed"):
        self.r_s = r_s
        self.strict = strict
        self.stride = stride
        self.padding = padding
        self.method = method
        self.encoder = encoder

    def __repr__(self) -> str:
        return (f"L4Adjuster(r_s={self.r_s!r}, strict={self.strict!r}, stride={self.stride!r}, "
                f"padding={self.padding!r}, method={self.method!r}, encoder={self.encoder!r})")

    def get_params(self) -> dict:
        """Settings given to ``__init__``.

        Returns
        -------
        dict
            ``r_s``, ``strict``, ``stride``, ``padding``, ``method``, ``encoder``.
        """
        return {"r_s": self.r_s, "strict": self.strict, "stride": self.stride,
                "padding": self.padding, "method": self.method, "encoder": self.encoder}

    def fit(self, net, x, v_th0, bias=None, *, input_var=None) -> L4Adjuster:
        """Compute ``mu_``, ``l4_``, ``v_hat_``, ``s_``, ``s_hat_``, ``c_``, ``row_factors_``.

        Parameters
        ----------
        net : Network
            The network whose first weight layer is fitted. (Deprecated form: the layer's
            weights, shape (n_out, n_in) or (C_out, C_in, kh, kw), with ``x`` the batch of
            ``E[s]`` and ``bias`` the layer's bias.)
        x : array_like, shape (n, *net.input_shape)
            Calibration inputs (training set), turned into ``E[s]`` by ``encoder``.
        v_th0 : float
            Balanced threshold of the first layer (``> 0``).
        bias : array_like, shape (n_out,), optional
            Deprecated array form only: the bias per row (enters ``mu_``).
        input_var : array_like, optional
            ``method="exact"`` only; see :func:`adjust_weights`.

        Returns
        -------
        L4Adjuster
            ``self``.
        """
        from .convert.network import Network

        if isinstance(net, Network):
            if bias is not None:
                raise ValueError("bias is taken from the network's layer; pass bias only "
                                 "with the (deprecated) array form fit(weights, inputs, ...)")
            _, layer, fit = _network_fit(net, x, v_th0, self.r_s, self.encoder, self.method,
                                         self.strict, input_var)
            weights, bias = layer.weight, layer.bias
        else:
            deprecated("L4Adjuster.fit(weights, inputs, v_th0, bias)",
                       "L4Adjuster.fit(net, x, v_th0), or adjust_weights(...) for arrays")
            fit = _fit(net, x, v_th0, self.r_s, bias, self.stride, self.padding,
                       self.strict, self.method, input_var)
            weights = net
        self._set_fit(fit, _result(fit, weights, bias))
        return self

    def _set_fit(self, fit: _Fit, result: AdjustResult) -> None:
        for key in _Fit.ARRAYS:
            setattr(self, key + "_", _readonly(getattr(fit, key)))
        self.mu_l4_ = fit.mu_l4
        self.c_ = fit.c
        self.n_guarded_ = fit.n_guarded
        self.v_th0_ = fit.v_th0
        self.weights_shape_ = tuple(fit.shape)
        self.row_factors_ = result.row_factors
        self.result_ = result
        self.summary_ = result.summary()

    def _check_fitted(self) -> None:
        if not hasattr(self, "row_factors_"):
            raise NotFittedError("this L4Adjuster is not fitted yet; call fit(...) first")

    def adjust(self, net, bias=None):
        """A copy of ``net`` with row ``j`` of its first layer (and bias) times ``row_factors_[j]``.

        Parameters
        ----------
        net : Network
            A network whose first weight layer has the fitted shape ``weights_shape_``.
            (Deprecated form: the weights themselves, with an optional ``bias``; it
            returns the weights, or ``(weights, bias)`` when a bias is given.)
        bias : array_like, shape (n_out,), optional
            Deprecated array form only.

        Returns
        -------
        Network
        """
        from .convert.network import Network

        self._check_fitted()
        if isinstance(net, Network):
            _, layer = first_weight_layer(net)
            if tuple(layer.weight.shape) != self.weights_shape_:
                raise ValueError(
                    f"the first weight layer of net has shape {layer.weight.shape} but the "
                    f"adjuster was fitted on shape {self.weights_shape_}; they must match"
                )
            return scale_first_layer(net, self.row_factors_)
        deprecated("L4Adjuster.adjust(weights, bias)", "L4Adjuster.adjust(net) -> Network")
        w_new, b_new = _apply(net, bias, self.row_factors_, self.weights_shape_)
        return w_new if b_new is None else (w_new, b_new)

    def fit_adjust(self, net, x, v_th0, bias=None, *, input_var=None):
        """``fit(net, x, v_th0).adjust(net)`` in one call.

        Parameters
        ----------
        net, x, v_th0, bias, input_var
            As in :meth:`fit`.

        Returns
        -------
        Network
            (The deprecated array form returns what ``adjust(weights, bias)`` returns.)
        """
        from .convert.network import Network

        if isinstance(net, Network):
            return self.fit(net, x, v_th0, bias, input_var=input_var).adjust(net)
        deprecated("L4Adjuster.fit_adjust(weights, inputs, v_th0, bias)",
                   "L4Adjuster.fit_adjust(net, x, v_th0) -> Network")
        fit = _fit(net, x, v_th0, self.r_s, bias, self.stride, self.padding, self.strict,
                   self.method, input_var)
        result = _result(fit, net, bias)
        self._set_fit(fit, result)
        return result.weights if result.bias is None else (result.weights, result.bias)

    def summary(self) -> dict:
        """JSON-safe digest of the fit (``summary_``); see :meth:`AdjustResult.summary`.

        Returns
        -------
        dict
            A copy of ``summary_`` (plain Python numbers and strings).

        Raises
        ------
        NotFittedError
            :meth:`fit` has not been called.
        """
        self._check_fitted()
        return dict(self.summary_)
