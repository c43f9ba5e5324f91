"""First-layer calibrations that target the rate error directly (beyond the paper).

The paper's adjustment (:mod:`l4theory.adjust`, Eqs. 6-9) rescales each first-layer row
from a *proxy* of its membrane spread. The two calibrations here aim at the quantity the
paper's argument is about: the first-layer spike rate should equal the ANN activation
over the threshold, ``target = clip(relu(a) / v_th, 0, 1)`` spikes per step
(:mod:`l4theory.convert.fidelity`). Each returns one factor ``k_j > 0`` per first-layer
row (output channel); row ``j`` and its bias are multiplied by ``k_j``, which for the
discrete neuron is exactly the same as dividing its threshold by ``k_j``
(``docs/adjustment.md``, "row scaling is threshold division"). Both are fitted on
calibration *training* images only.

Rate matching (:func:`rate_matching_scales`, :class:`RateMatcher`)
    Per channel, the ``k_j`` from a grid that minimises the calibration-set mean squared
    error between the simulated first-layer rate and the target, in the simulation
    setting that will be used (steps ``T``, leak, reset, encoder, semantics). It captures
    everything the first layer does wrong on average: the hard reset's lost overshoot,
    the leak, the floor of a finite ``T``, the spread of the input. It needs the
    simulator, but only for the first layer: ``len(grid) + refine`` first-layer runs over
    the calibration images (e.g. 24 runs x 64 images x T = 75 of a 1->64 3x3 conv, about
    a second of compute each). The exact discrete-time rate theory
    (:func:`l4theory.theory.rates.if_hard_rate_bernoulli`) would replace the simulation
    only for non-negative weights, no leak and a current whose distribution can be
    enumerated; a signed 3x3 kernel over signed inputs with leak is outside it, so the
    tests use the theory and the calibration uses the simulator.
Overshoot-aware scaling (:func:`overshoot_scales`, :class:`OvershootAdjuster`)
    Hard reset only (soft reset keeps the overshoot: every factor is 1). Renewal theory:
    a hard-reset neuron whose per-step current has mean ``m1`` and second moment ``m2``
    fires at ``m1 / (v_th + E[O])`` with the mean overshoot ``E[O] = m2 / (2 m1)``
    (:func:`l4theory.theory.rates.if_hard_rate_asymptotic`; exact for large ``v_th`` and
    non-negative non-lattice currents) instead of ``m1 / v_th``. Scaling the row by ``k``
    scales ``m1`` and ``E[O]`` by ``k``, so ``k = v_th / (v_th - E[O])`` restores the
    soft-reset rate. ``E[O]`` is averaged per channel over the calibration positions
    where the neuron should fire (``0 < m1 < v_th``), weighted by the target rate. It is
    analytic: two convolutions of the calibration batch (means and variances of the
    encoder), no simulation. It ignores the leak and the sign structure of the current.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import as_array, check_int, check_positive

__all__ = ["OvershootAdjuster", "RateMatcher", "adjusted_first_layer", "overshoot_scales",
           "rate_matching_scales", "scale_first_layer"]

#: Default coarse grid of rate matching: 17 factors from 1/2 to 4, geometric.
DEFAULT_GRID = tuple(float(v) for v in np.geomspace(0.5, 4.0, 17))


# --------------------------------------------------------------------------- helpers


def scale_first_layer(net, k):
    """A copy of ``net`` whose first weight layer's row ``j`` (and bias) is times ``k[j]``.

    Parameters
    ----------
    net : l4theory.convert.network.Network
    k : array_like, shape (n_out,)
        Positive finite factors, one per output channel / unit of the first weight layer.

    Returns
    -------
    Network
    """
    first = net.weight_layers[0]
    lay = net.layers[first]
    k = as_array("k", k, ndim=1)
    if k.shape != (lay.weight.shape[0],) or not (np.isfinite(k).all() and (k > 0).all()):
        raise ValueError(f"k must be {lay.weight.shape[0]} positive finite factors, got "
                         f"shape {k.shape}")
    out = net.copy()
    shape = (-1,) + (1,) * (lay.weight.ndim - 1)
    out.layers[first].weight = (lay.weight * k.reshape(shape)).astype(lay.weight.dtype)
    if lay.bias is not None:
        out.layers[first].bias = (lay.bias * k).astype(lay.bias.dtype)
    return out


def _channel_mse(rate: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean over samples and positions of the squared error, per channel (axis 1)."""
    d = (rate - target) ** 2
    return d.mean(axis=tuple(i for i in range(d.ndim) if i != 1))


# --------------------------------------------------------------------------- rate matching


@dataclass(frozen=True, eq=False)
class RateMatchResult:
    """Outcome of :func:`rate_matching_scales` (per-channel arrays have shape (n_out,)).

    Attributes
    ----------
    scales : numpy.ndarray
        ``k_j``, the fitted factor of row ``j``.
    error : numpy.ndarray
        Calibration MSE of each channel at ``k_j``.
    error_before : numpy.ndarray
        Calibration MSE of each channel unadjusted (``k = 1``).
    grid : numpy.ndarray
        The coarse grid of factors.
    at_edge : numpy.ndarray of bool
        Channels whose coarse optimum sat at the first or last grid point.
    n_runs : int
        First-layer simulations used.
    """

    scales: np.ndarray
    error: np.ndarray
    error_before: np.ndarray
    grid: np.ndarray
    at_edge: np.ndarray
    n_runs: int

    def summary(self) -> dict:
        """JSON-safe digest: method, MSE before/after (means), factor quantiles, edges."""
        return {"method": "ratematch", "mse_before": float(self.error_before.mean()),
                "mse_after": float(self.error.mean()), "k_min": float(self.scales.min()),
                "k_median": float(np.median(self.scales)), "k_max": float(self.scales.max()),
                "n_at_edge": int(self.at_edge.sum()), "n_runs": int(self.n_runs)}


def _check_grid(grid) -> np.ndarray:
    g = np.unique(as_array("grid", grid, ndim=1))
    if g.size < 2 or not (np.isfinite(g).all() and (g > 0).all()):
        raise ValueError(f"grid must hold at least 2 positive finite factors, got {grid!r}")
    return g


def rate_matching_scales(net, x, *, v_th: float, steps: int, grid=DEFAULT_GRID,
                         refine: int = 8, seed: int = 0, sample_ids=None,
                         bias_scale: float = 1.0, reference=None,
                         **sim_kwargs) -> RateMatchResult:
    """Per-channel first-layer factors that minimise the calibration rate MSE.

    Stage 1 simulates the first layer once per grid factor ``g`` (every row times
    ``g``); stage 2 refines each channel around its stage-1 optimum with ``refine``
    factors spaced evenly (in log) over one grid step on either side, one simulation per
    offset (row ``j`` times its own factor). All runs use the same input spikes (``seed``,
    ``sample_ids``: common random numbers), and ``k = 1`` is always a candidate, so the
    fitted calibration error is never above the unadjusted one.

    Parameters
    ----------
    net : Network
        The ANN; its first weight layer is calibrated, and its activations define the
        target.
    x : array_like, shape (n, *net.input_shape)
        Calibration inputs (training images, normalised).
    v_th : float
        First-layer threshold of the spiking run (balanced threshold times the scale).
    steps : int
        Time steps ``T`` of the run the calibration is for.
    grid : sequence of float
        Coarse factors (positive); default 17 geometric factors from 1/2 to 4.
    refine : int
        Factors per channel in the refinement stage (0: none).
    seed, sample_ids, bias_scale, **sim_kwargs
        Input spikes and settings (``alpha``, ``reset``, ``encoder``, ``semantics``,
        ``batch_size``, ...) passed to :func:`l4theory.convert.fidelity.first_layer_rates`.
    reference : Network, optional
        The ANN whose first-layer activations define the target (default ``net``).

    Returns
    -------
    RateMatchResult
    """
    from .convert.fidelity import first_layer_rates, first_layer_target

    g = _check_grid(np.append(np.asarray(grid, dtype=float), 1.0))
    refine = check_int("refine", refine, minimum=0)
    v_th = float(check_positive("v_th", v_th))
    target = first_layer_target(net if reference is None else reference, x, v_th,
                                bias_scale=bias_scale)

    def err_of(k):
        rate = first_layer_rates(scale_first_layer(net, k), x, v_th=v_th, steps=steps,
                                 seed=seed, sample_ids=sample_ids, bias_scale=bias_scale,
                                 **sim_kwargs)
        return _channel_mse(rate, target)

    n_out = target.shape[1]
    cand = np.repeat(g[:, None], n_out, axis=1)              # (n_cand, n_out)
    err = np.array([err_of(np.full(n_out, v)) for v in g])
    i1 = int(np.argmin(np.abs(np.log(g))))                     # the factor 1
    before = err[i1].copy()
    j = _pick_columns(err, cand)
    at_edge = (j == 0) | (j == g.size - 1)
    if refine:
        step = np.log(g[1:] / g[:-1])
        lo = np.log(g[j]) - step[np.clip(j - 1, 0, step.size - 1)]
        hi = np.log(g[j]) + step[np.clip(j, 0, step.size - 1)]
        fine = np.exp(lo[None] + (hi - lo)[None] * (np.arange(1, refine + 1)[:, None]
                                                    / (refine + 1)))
        cand = np.concatenate([cand, fine])
        err = np.concatenate([err, [err_of(f) for f in fine]])
    best = _pick_columns(err, cand)
    cols = np.arange(n_out)
    return RateMatchResult(scales=cand[best, cols], error=err[best, cols],
                           error_before=before, grid=g, at_edge=at_edge,
                           n_runs=g.size + refine)


def _pick_columns(err: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Per column, the row of the smallest error; ties go to the factor nearest 1."""
    best = err.min(axis=0)
    ok = err <= best * (1 + 1e-12)
    return np.argmin(np.where(ok, np.abs(np.log(cand)), np.inf), axis=0)


class RateMatcher:
    """Estimator-style twin of :func:`rate_matching_scales` (scikit-learn conventions).

    Parameters
    ----------
    steps : int
        Time steps ``T``.
    grid, refine : see :func:`rate_matching_scales`.
    seed : int
        Input spike seed of the calibration runs.
    **sim_kwargs
        Simulation settings (``alpha``, ``reset``, ``encoder``, ``semantics``, ...).

    Attributes
    ----------
    scales_, error_, error_before_ : numpy.ndarray, shape (n_out,)
    at_edge_ : numpy.ndarray of bool, shape (n_out,)
    grid_ : numpy.ndarray
    v_th_ : float
    n_runs_ : int
    """

    def __init__(self, steps=75, *, grid=DEFAULT_GRID, refine=8, seed=0, **sim_kwargs):
        self.steps = steps
        self.grid = grid
        self.refine = refine
        self.seed = seed
        self.sim_kwargs = sim_kwargs

    def fit(self, net, x, v_th, *, sample_ids=None, bias_scale=1.0) -> RateMatcher:
        """Fit the factors on calibration inputs ``x``; returns ``self``."""
        res = rate_matching_scales(net, x, v_th=v_th, steps=self.steps, grid=self.grid,
                                   refine=self.refine, seed=self.seed, sample_ids=sample_ids,
                                   bias_scale=bias_scale, **self.sim_kwargs)
        self.scales_, self.error_, self.error_before_ = res.scales, res.error, res.error_before
        self.at_edge_, self.grid_, self.n_runs_ = res.at_edge, res.grid, res.n_runs
        self.v_th_ = float(v_th)
        self.result_ = res
        return self

    def adjust(self, net):
        """A copy of ``net`` with the fitted factors on its first layer."""
        if not hasattr(self, "scales_"):
            raise ValueError("this RateMatcher is not fitted yet; call fit(...) first")
        return scale_first_layer(net, self.scales_)


# --------------------------------------------------------------------------- overshoot


def _current_moments(weights, bias, es, var, stride, padding):
    """Per-sample, per-position mean and variance of the per-step input current."""
    from .convert.network import conv2d

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 2:
        m1 = es.reshape(len(es), -1) @ w.T
        v = var.reshape(len(var), -1) @ (w * w).T
    else:
        m1 = conv2d(es, w, None, stride, padding)
        v = conv2d(var, w * w, None, stride, padding)
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)
        m1 = m1 + (b if w.ndim == 2 else b[:, None, None])
    return m1, np.maximum(v, 0.0)


def overshoot_scales(weights, inputs, v_th, *, bias=None, stride=1, padding=0,
                     input_var=None, max_scale: float = 2.0) -> dict:
    """Hard-reset overshoot compensation ``k_j = v_th / (v_th - E[O_j])`` per row.

    Parameters
    ----------
    weights : array_like, shape (n_out, n_in) or (C_out, C_in, kh, kw)
        First-layer weights (threshold units per input spike).
    inputs : array_like, shape (batch, n_in) or (batch, C_in, H, W)
        Calibration batch of expected spikes ``E[s]`` (pixels for the signed encoder).
    v_th : float
        First-layer threshold of the run (``> 0``).
    bias : array_like, shape (n_out,), optional
        Bias per row, already multiplied by its balancing scale.
    stride, padding : int or (int, int)
        Convolution geometry (symmetric padding).
    input_var : array_like, optional
        ``Var[s]`` per input (same shape as ``inputs``); default ``|E[s]| (1 - |E[s]|)``
        (signed and bernoulli encoders, ``|inputs| <= 1``).
    max_scale : float
        Upper bound of ``k_j`` (``> 1``): where the mean overshoot approaches the
        threshold the asymptotic formula is no longer meaningful.

    Returns
    -------
    dict
        ``scales`` (``k_j``, shape (n_out,)), ``overshoot`` (``E[O_j]``, threshold units),
        ``n_positions`` (calibration positions used per row), ``n_capped``.
    """
    x = as_array("inputs", inputs)
    v_th = float(check_positive("v_th", v_th))
    if not (np.isfinite(max_scale) and max_scale > 1):
        raise ValueError(f"max_scale must be > 1, got {max_scale!r}")
    if input_var is None:
        if np.abs(x).max() > 1:
            raise ValueError("the default Var[s] = |E[s]| (1 - |E[s]|) needs |inputs| <= 1, "
                             f"got max |inputs| = {float(np.abs(x).max())!r}")
        var = np.abs(x) * (1 - np.abs(x))
    else:
        var = as_array("input_var", input_var, nonneg=True)
        if var.shape != x.shape:
            raise ValueError(f"input_var has shape {var.shape}, inputs {x.shape}")
    st = (stride, stride) if np.isscalar(stride) else tuple(stride)
    pd = (padding,) * 4 if np.isscalar(padding) else (padding[0], padding[1]) * 2
    m1, v = _current_moments(weights, bias, x, var, st, pd)
    m1 = np.moveaxis(m1, 1, -1).reshape(-1, m1.shape[1])
    v = np.moveaxis(v, 1, -1).reshape(-1, v.shape[1])
    use = (m1 > 0) & (m1 < v_th)
    safe = np.where(use, m1, 1.0)
    over = np.minimum((v + m1 * m1) / (2 * safe), v_th)   # E[O] = m2 / (2 m1), capped
    wgt = np.where(use, m1 / v_th, 0.0)                   # spikes happen at the target rate
    tot = wgt.sum(axis=0)
    eo = np.where(tot > 0, (wgt * over).sum(axis=0) / np.where(tot > 0, tot, 1), 0.0)
    with np.errstate(divide="ignore"):
        k_raw = np.where(eo < v_th, v_th / (v_th - eo), np.inf)
    k = np.minimum(k_raw, max_scale)
    return {"scales": k, "overshoot": eo, "n_positions": use.sum(axis=0),
            "n_capped": int((k_raw > max_scale).sum())}


class OvershootAdjuster:
    """Estimator-style twin of :func:`overshoot_scales`.

    Parameters
    ----------
    reset : {"hard", "soft"}
        ``"soft"`` keeps the overshoot: every factor is 1.
    stride, padding : int or (int, int)
        Convolution geometry.
    max_scale : float
        Upper bound of the factors.

    Attributes
    ----------
    scales_, overshoot_ : numpy.ndarray, shape (n_out,)
    n_capped_ : int
    v_th_ : float
    """

    def __init__(self, reset="hard", *, stride=1, padding=0, max_scale=2.0):
        self.reset = reset
        self.stride = stride
        self.padding = padding
        self.max_scale = max_scale

    def fit(self, weights, inputs, v_th, bias=None, *, input_var=None) -> OvershootAdjuster:
        """Fit on a calibration batch of ``E[s]``; returns ``self``."""
        if self.reset not in ("soft", "hard"):
            raise ValueError(f"reset must be 'soft' or 'hard', got {self.reset!r}")
        res = overshoot_scales(weights, inputs, v_th, bias=bias, stride=self.stride,
                               padding=self.padding, input_var=input_var,
                               max_scale=self.max_scale)
        if self.reset == "soft":
            res["scales"] = np.ones_like(res["scales"])
        self.scales_, self.overshoot_ = res["scales"], res["overshoot"]
        self.n_capped_, self.v_th_ = res["n_capped"], float(v_th)
        return self

    def adjust(self, weights, bias=None):
        """Row ``j`` (and ``bias[j]``) times ``scales_[j]``; ``(W, b)`` when a bias is given."""
        if not hasattr(self, "scales_"):
            raise ValueError("this OvershootAdjuster is not fitted yet; call fit(...) first")
        w = np.asarray(weights)
        if w.shape[0] != self.scales_.shape[0]:
            raise ValueError(f"weights have {w.shape[0]} rows, fitted {self.scales_.shape[0]}")
        k = self.scales_.reshape((-1,) + (1,) * (w.ndim - 1))
        w_new = (w * k).astype(w.dtype)
        return w_new if bias is None else (w_new, (np.asarray(bias) * self.scales_)
                                           .astype(np.asarray(bias).dtype))


# --------------------------------------------------------------------------- networks


def adjusted_first_layer(net, x_cal, method: str, *, v_th: float, steps: int = 75,
                         alpha: float = 1.0, reset: str = "soft", encoder: str = "signed",
                         bias_scale: float = 1.0, sim_kwargs=None, seed: int = 0,
                         sample_ids=None, **fit_kwargs):
    """A copy of ``net`` with a calibrated first layer, and a JSON-safe summary of the fit.

    Parameters
    ----------
    net : Network
    x_cal : numpy.ndarray, shape (n, *net.input_shape)
        Calibration training inputs (normalised pixels).
    method : {"ratematch", "overshoot"}
    v_th : float
        First-layer threshold of the run.
    steps, alpha, reset, encoder : the simulation setting.
    bias_scale : float
        Balancing factor of the first layer's bias.
    sim_kwargs : dict, optional
        Further simulator settings (``semantics``, ``backend``, ...), rate matching only.
    seed, sample_ids : input spikes of the rate-matching runs.
    **fit_kwargs
        ``grid``, ``refine`` (rate matching) or ``max_scale`` (overshoot).

    Returns
    -------
    (Network, dict)
    """
    if method == "ratematch":
        res = rate_matching_scales(net, x_cal, v_th=v_th, steps=steps, seed=seed,
                                   sample_ids=sample_ids, bias_scale=bias_scale, alpha=alpha,
                                   reset=reset, encoder=encoder, **(sim_kwargs or {}),
                                   **fit_kwargs)
        return scale_first_layer(net, res.scales), res.summary()
    if method == "overshoot":
        if encoder not in ("signed", "bernoulli"):
            raise ValueError(f"overshoot needs the signed or bernoulli encoder, got {encoder!r}")
        first = net.weight_layers[0]
        lay = net.layers[first]
        es = np.clip(np.asarray(x_cal, np.float64), -1 if encoder == "signed" else 0, 1)
        kw = {}
        if lay.kind == "conv2d":
            kw = {"stride": lay.stride, "padding": lay.padding[:2]}
        bias = None if lay.bias is None else np.asarray(lay.bias, np.float64) * bias_scale
        adj = OvershootAdjuster(reset, **kw, **fit_kwargs).fit(lay.weight, es, v_th, bias)
        k = adj.scales_
        return scale_first_layer(net, k), {
            "method": "overshoot", "k_min": float(k.min()), "k_median": float(np.median(k)),
            "k_max": float(k.max()), "n_capped": adj.n_capped_,
            "overshoot_median": float(np.median(adj.overshoot_))}
    raise ValueError(f"method must be 'ratematch' or 'overshoot', got {method!r}")
