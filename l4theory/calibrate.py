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

The contract (shared with :mod:`l4theory.adjust`): each method is a function and an
estimator twin.

- :func:`rate_matching_factors` (network in), :func:`overshoot_factors` (one layer's
  arrays in) and :func:`adjusted_first_layer` (network in, either method) return a
  :class:`~l4theory.convert.first_layer.FirstLayerFit` subclass (:class:`RateMatchResult`,
  :class:`OvershootResult`): ``row_factors`` (the ``k_j``), the adjusted ``weights`` and
  ``bias``, ``network`` (the adjusted copy when a network was given, else None),
  :meth:`~l4theory.convert.first_layer.FirstLayerFit.summary` and the method's own
  quantities.
- :class:`RateMatcher` and :class:`OvershootAdjuster` store settings in ``__init__``;
  ``fit(net, x, v_th)`` sets ``row_factors_``, ``result_``, ``summary_`` and the method's
  attributes; ``adjust(net)`` always returns a new
  :class:`~l4theory.convert.network.Network` whose first layer is adjusted.

The forms before this contract (``rate_matching_scales``, ``overshoot_scales`` returning
a dict, ``net, summary = adjusted_first_layer(...)``,
``OvershootAdjuster.fit(weights, inputs, v_th, bias)`` and ``adjust(weights, bias)``,
the ``scales``/``scales_`` names) still work for one release with a
:class:`DeprecationWarning` that names the new form.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ._checks import as_array, check_int, check_positive
from .convert.first_layer import (
    FirstLayerFit,
    current_moments,
    deprecated,
    first_weight_layer,
    scale_first_layer,
    scale_rows,
)

__all__ = ["OvershootAdjuster", "OvershootResult", "RateMatchResult", "RateMatcher",
           "adjusted_first_layer", "overshoot_factors", "overshoot_scales",
           "rate_matching_factors", "rate_matching_scales", "scale_first_layer"]

#: Default coarse grid of rate matching: 17 factors from 1/2 to 4, geometric.
DEFAULT_GRID = tuple(float(v) for v in np.geomspace(0.5, 4.0, 17))


# --------------------------------------------------------------------------- helpers


def _channel_mse(rate: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean over samples and positions of the squared error, per channel (axis 1)."""
    d = (rate - target) ** 2
    return d.mean(axis=tuple(i for i in range(d.ndim) if i != 1))


# --------------------------------------------------------------------------- rate matching


@dataclass(frozen=True, eq=False, kw_only=True)
class RateMatchResult(FirstLayerFit):
    """Outcome of :func:`rate_matching_factors` (per-channel arrays have shape (n_out,)).

    A :class:`~l4theory.convert.first_layer.FirstLayerFit` (``method="ratematch"``,
    ``row_factors``, ``weights``, ``bias``, ``network``, ``layer``, :meth:`summary`) with:

    Attributes
    ----------
    row_factors : numpy.ndarray
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

    error: np.ndarray
    error_before: np.ndarray
    grid: np.ndarray
    at_edge: np.ndarray
    n_runs: int
    method: str = "ratematch"

    @property
    def scales(self) -> np.ndarray:
        """Deprecated alias of ``row_factors``."""
        deprecated("RateMatchResult.scales", "RateMatchResult.row_factors")
        return self.row_factors

    def summary(self) -> dict:
        """JSON-safe digest: method, MSE before/after (means), factor quantiles, edges.

        Returns
        -------
        dict
            ``method``, ``mse_before``, ``mse_after``, ``k_min``/``k_median``/``k_max``
            (of ``row_factors``), ``n_at_edge``, ``n_runs`` (plain Python numbers).
        """
        k = self.row_factors
        return {"method": "ratematch", "mse_before": float(self.error_before.mean()),
                "mse_after": float(self.error.mean()), "k_min": float(k.min()),
                "k_median": float(np.median(k)), "k_max": float(k.max()),
                "n_at_edge": int(self.at_edge.sum()), "n_runs": int(self.n_runs)}


def _check_grid(grid) -> np.ndarray:
    g = np.unique(as_array("grid", grid, ndim=1))
    if g.size < 2 or not (np.isfinite(g).all() and (g > 0).all()):
        raise ValueError(f"grid must hold at least 2 positive finite factors, got {grid!r}")
    return g


def rate_matching_factors(net, x, *, v_th: float, steps: int, grid=DEFAULT_GRID,
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
        ``row_factors`` (the ``k_j``), ``network`` (a copy of ``net`` with them applied),
        the calibration errors before and after.
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
    row_factors = cand[best, cols]
    out = scale_first_layer(net, row_factors)
    first, lay = first_weight_layer(out)
    return RateMatchResult(row_factors=row_factors, weights=lay.weight, bias=lay.bias,
                           network=out, layer=first, error=err[best, cols],
                           error_before=before, grid=g, at_edge=at_edge,
                           n_runs=g.size + refine)


def rate_matching_scales(net, x, **kwargs) -> RateMatchResult:
    """Deprecated name of :func:`rate_matching_factors` (same arguments and result).

    Parameters
    ----------
    net, x, **kwargs
        As in :func:`rate_matching_factors`.

    Returns
    -------
    RateMatchResult
    """
    deprecated("rate_matching_scales(...)", "rate_matching_factors(...)")
    return rate_matching_factors(net, x, **kwargs)


def _pick_columns(err: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Per column, the row of the smallest error; ties go to the factor nearest 1."""
    best = err.min(axis=0)
    ok = err <= best * (1 + 1e-12)
    return np.argmin(np.where(ok, np.abs(np.log(cand)), np.inf), axis=0)


class RateMatcher:
    """Estimator-style twin of :func:`rate_matching_factors` (scikit-learn conventions).

    Parameters
    ----------
    steps : int
        Time steps ``T``.
    grid, refine : see :func:`rate_matching_factors`.
    seed : int
        Input spike seed of the calibration runs.
    **sim_kwargs
        Simulation settings (``alpha``, ``reset``, ``encoder``, ``semantics``, ...).

    Attributes
    ----------
    row_factors_ : numpy.ndarray, shape (n_out,)
        The fitted factors ``k_j``.
    result_ : RateMatchResult
        The full result of the fit (its ``network`` is None: :meth:`adjust` makes one).
    summary_ : dict
        ``result_.summary()``.
    error_, error_before_ : numpy.ndarray, shape (n_out,)
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
        """Fit the factors on calibration inputs ``x``.

        Parameters
        ----------
        net : Network
        x : array_like, shape (n, *net.input_shape)
            Calibration training inputs (normalised).
        v_th : float
            First-layer threshold of the run.
        sample_ids, bias_scale
            See :func:`rate_matching_factors`.

        Returns
        -------
        RateMatcher
            ``self``.
        """
        res = rate_matching_factors(net, x, v_th=v_th, steps=self.steps, grid=self.grid,
                                    refine=self.refine, seed=self.seed, sample_ids=sample_ids,
                                    bias_scale=bias_scale, **self.sim_kwargs)
        self.row_factors_ = res.row_factors
        self.error_, self.error_before_ = res.error, res.error_before
        self.at_edge_, self.grid_, self.n_runs_ = res.at_edge, res.grid, res.n_runs
        self.v_th_ = float(v_th)
        self.result_ = dataclasses.replace(res, network=None, layer=None)
        self.summary_ = res.summary()
        return self

    @property
    def scales_(self) -> np.ndarray:
        """Deprecated alias of ``row_factors_``."""
        deprecated("RateMatcher.scales_", "RateMatcher.row_factors_")
        return self.row_factors_

    def adjust(self, net):
        """A copy of ``net`` with the fitted factors on its first layer.

        Parameters
        ----------
        net : Network

        Returns
        -------
        Network
        """
        if not hasattr(self, "row_factors_"):
            raise ValueError("this RateMatcher is not fitted yet; call fit(...) first")
        return scale_first_layer(net, self.row_factors_)


# --------------------------------------------------------------------------- overshoot


@dataclass(frozen=True, eq=False, kw_only=True)
class OvershootResult(FirstLayerFit):
    """Outcome of :func:`overshoot_factors` (per-row arrays have shape (n_out,)).

    A :class:`~l4theory.convert.first_layer.FirstLayerFit` (``method="overshoot"``,
    ``row_factors``, ``weights``, ``bias``, ``network``, ``layer``, :meth:`summary`) with:

    Attributes
    ----------
    row_factors : numpy.ndarray
        ``k_j = min(v_th / (v_th - E[O_j]), max_scale)`` for hard reset; exactly 1 for soft.
    overshoot : numpy.ndarray
        ``E[O_j]``, the mean overshoot (threshold units).
    n_positions : numpy.ndarray of int
        Calibration positions used per row (``0 < m1 < v_th``).
    n_capped : int
        Rows whose factor was capped at ``max_scale``.
    reset : str
        ``"hard"`` or ``"soft"``.
    v_th : float
        Threshold used.
    max_scale : float
        Upper bound of the factors.
    """

    overshoot: np.ndarray
    n_positions: np.ndarray
    n_capped: int
    reset: str
    v_th: float
    max_scale: float
    method: str = "overshoot"

    def summary(self) -> dict:
        """JSON-safe digest: method, factor quantiles, capped rows, median overshoot.

        Returns
        -------
        dict
            ``method``, ``k_min``/``k_median``/``k_max`` (of ``row_factors``),
            ``n_capped``, ``overshoot_median`` (plain Python numbers).
        """
        k = self.row_factors
        return {"method": "overshoot", "k_min": float(k.min()), "k_median": float(np.median(k)),
                "k_max": float(k.max()), "n_capped": int(self.n_capped),
                "overshoot_median": float(np.median(self.overshoot))}


def _overshoot(weights, inputs, v_th, bias, stride, padding, input_var, max_scale):
    """``(k, E[O], n_positions, n_capped)`` of the hard-reset overshoot compensation."""
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
    m1, v = current_moments(weights, x, var, bias=bias, stride=stride, padding=padding)
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
    return k, eo, use.sum(axis=0), int((k_raw > max_scale).sum())


def _check_reset(reset) -> str:
    if reset not in ("soft", "hard"):
        raise ValueError(f"reset must be 'soft' or 'hard', got {reset!r}")
    return reset


def overshoot_factors(weights, inputs, v_th, *, bias=None, stride=1, padding=0,
                      input_var=None, max_scale: float = 2.0,
                      reset: str = "hard") -> OvershootResult:
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
        Bias per row, already multiplied by its balancing scale; it is scaled with its
        row in the result.
    stride : int or (int, int)
        Convolution stride.
    padding : int, (ph, pw) or (top, left, bottom, right)
        Convolution zero padding.
    input_var : array_like, optional
        ``Var[s]`` per input (same shape as ``inputs``); default ``|E[s]| (1 - |E[s]|)``
        (signed and bernoulli encoders, ``|inputs| <= 1``).
    max_scale : float
        Upper bound of ``k_j`` (``> 1``): where the mean overshoot approaches the
        threshold the asymptotic formula is no longer meaningful.
    reset : {"hard", "soft"}
        ``"soft"`` keeps the overshoot: every factor is exactly 1 (``overshoot`` is still
        reported).

    Returns
    -------
    OvershootResult
        ``row_factors`` (``k_j``), the scaled ``weights`` and ``bias``, ``overshoot``
        (``E[O_j]``, threshold units), ``n_positions``, ``n_capped``; ``network`` is None.
    """
    reset = _check_reset(reset)
    k, eo, n_pos, n_capped = _overshoot(weights, inputs, v_th, bias, stride, padding,
                                        input_var, max_scale)
    if reset == "soft":
        k = np.ones_like(k)
    w_new, b_new = scale_rows(weights, bias, k)
    return OvershootResult(row_factors=k, weights=w_new, bias=b_new, overshoot=eo,
                           n_positions=n_pos, n_capped=n_capped, reset=reset,
                           v_th=float(v_th), max_scale=float(max_scale))


def overshoot_scales(weights, inputs, v_th, **kwargs) -> dict:
    """Deprecated form of :func:`overshoot_factors` that returns a dict.

    Parameters
    ----------
    weights, inputs, v_th, **kwargs
        As in :func:`overshoot_factors` (without ``reset``: hard reset).

    Returns
    -------
    dict
        ``scales`` (``k_j``), ``overshoot``, ``n_positions``, ``n_capped``.
    """
    deprecated("overshoot_scales(...) (a dict)", "overshoot_factors(...) (an OvershootResult)")
    res = overshoot_factors(weights, inputs, v_th, **kwargs)
    return {"scales": res.row_factors, "overshoot": res.overshoot,
            "n_positions": res.n_positions, "n_capped": res.n_capped}


def _overshoot_network(net, x, v_th, *, reset, encoder, bias_scale, max_scale=2.0,
                       input_var=None) -> OvershootResult:
    """:func:`overshoot_factors` on the first weight layer of ``net``, network attached."""
    if encoder not in ("signed", "bernoulli"):
        raise ValueError(f"overshoot needs the signed or bernoulli encoder, got {encoder!r}")
    first, lay = first_weight_layer(net, direct_input=True)
    es = np.clip(np.asarray(x, np.float64), -1 if encoder == "signed" else 0, 1)
    kw = {}
    if lay.kind == "conv2d":
        kw = {"stride": lay.stride, "padding": lay.padding}
    else:
        es = es.reshape(len(es), -1)
    bias = None if lay.bias is None else np.asarray(lay.bias, np.float64) * bias_scale
    res = overshoot_factors(lay.weight, es, v_th, bias=bias, input_var=input_var,
                            max_scale=max_scale, reset=reset, **kw)
    out = scale_first_layer(net, res.row_factors)
    new = out.layers[first]
    return dataclasses.replace(res, weights=new.weight, bias=new.bias, network=out,
                               layer=first)


class OvershootAdjuster:
    """Estimator-style twin of :func:`overshoot_factors` (scikit-learn conventions).

    Parameters
    ----------
    reset : {"hard", "soft"}
        ``"soft"`` keeps the overshoot: every factor is 1.
    encoder : {"signed", "bernoulli"}
        Turns calibration inputs into ``E[s]`` (``clip(x, -1, 1)`` or ``clip(x, 0, 1)``).
    stride, padding : int or (int, int)
        Convolution geometry; used only by the deprecated array form of :meth:`fit` (a
        network's layer carries its own).
    max_scale : float
        Upper bound of the factors.

    Attributes
    ----------
    row_factors_, overshoot_ : numpy.ndarray, shape (n_out,)
        The fitted factors ``k_j`` and mean overshoots ``E[O_j]``.
    result_ : OvershootResult
        The full result of the fit (its ``network`` is None: :meth:`adjust` makes one).
    summary_ : dict
        ``result_.summary()``.
    n_capped_ : int
    v_th_ : float
    """

    def __init__(self, reset="hard", *, encoder="signed", stride=1, padding=0, max_scale=2.0):
        self.reset = reset
        self.encoder = encoder
        self.stride = stride
        self.padding = padding
        self.max_scale = max_scale

    def fit(self, net, x, v_th, bias=None, *, bias_scale=1.0,
            input_var=None) -> OvershootAdjuster:
        """Fit the factors on calibration inputs.

        Parameters
        ----------
        net : Network
            The network whose first weight layer is fitted. (Deprecated form: the layer's
            weights, with ``x`` the batch of ``E[s]`` and ``bias`` the scaled bias.)
        x : array_like, shape (n, *net.input_shape)
            Calibration training inputs (normalised pixels).
        v_th : float
            First-layer threshold of the run (``> 0``).
        bias : array_like, optional
            Deprecated array form only.
        bias_scale : float
            Balancing factor of the first layer's bias (network form).
        input_var : array_like, optional
            ``Var[s]`` per input; see :func:`overshoot_factors`.

        Returns
        -------
        OvershootAdjuster
            ``self``.
        """
        from .convert.network import Network

        reset = _check_reset(self.reset)
        if isinstance(net, Network):
            if bias is not None:
                raise ValueError("bias is taken from the network's layer (times bias_scale); "
                                 "pass bias only with the (deprecated) array form")
            res = _overshoot_network(net, x, v_th, reset=reset, encoder=self.encoder,
                                     bias_scale=bias_scale, max_scale=self.max_scale,
                                     input_var=input_var)
            res = dataclasses.replace(res, network=None, layer=None)
        else:
            deprecated("OvershootAdjuster.fit(weights, inputs, v_th, bias)",
                       "OvershootAdjuster.fit(net, x, v_th), or overshoot_factors(...) for "
                       "arrays")
            res = overshoot_factors(net, x, v_th, bias=bias, stride=self.stride,
                                    padding=self.padding, input_var=input_var,
                                    max_scale=self.max_scale, reset=reset)
        self.row_factors_, self.overshoot_ = res.row_factors, res.overshoot
        self.n_capped_, self.v_th_ = res.n_capped, float(v_th)
        self.result_ = res
        self.summary_ = res.summary()
        return self

    @property
    def scales_(self) -> np.ndarray:
        """Deprecated alias of ``row_factors_``."""
        deprecated("OvershootAdjuster.scales_", "OvershootAdjuster.row_factors_")
        return self.row_factors_

    def adjust(self, net, bias=None):
        """A copy of ``net`` with row ``j`` of its first layer (and bias) times ``row_factors_[j]``.

        Parameters
        ----------
        net : Network
            (Deprecated form: the weights, with an optional ``bias``; it returns the
            weights, or ``(weights, bias)`` when a bias is given.)
        bias : array_like, optional
            Deprecated array form only.

        Returns
        -------
        Network
        """
        from .convert.network import Network

        if not hasattr(self, "row_factors_"):
            raise ValueError("this OvershootAdjuster is not fitted yet; call fit(...) first")
        if isinstance(net, Network):
            return scale_first_layer(net, self.row_factors_)
        deprecated("OvershootAdjuster.adjust(weights, bias)",
                   "OvershootAdjuster.adjust(net) -> Network")
        w = np.asarray(net)
        if w.shape[0] != self.row_factors_.shape[0]:
            raise ValueError(f"weights have {w.shape[0]} rows, fitted "
                             f"{self.row_factors_.shape[0]}")
        w_new, b_new = scale_rows(w, bias, self.row_factors_)
        return w_new if bias is None else (w_new, b_new)


# --------------------------------------------------------------------------- networks


def adjusted_first_layer(net, x_cal, method: str, *, v_th: float, steps: int = 75,
                         alpha: float = 1.0, reset: str = "soft", encoder: str = "signed",
                         bias_scale: float = 1.0, sim_kwargs=None, seed: int = 0,
                         sample_ids=None, **fit_kwargs) -> FirstLayerFit:
    """A copy of ``net`` with a calibrated first layer, as a fit result.

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
    RateMatchResult or OvershootResult
        ``network`` is the calibrated copy of ``net``; ``summary()`` the JSON-safe digest.
        (Unpacking it as ``(network, summary)``, the form before this contract, still
        works for one release with a :class:`DeprecationWarning`.)
    """
    if method == "ratematch":
        return rate_matching_factors(net, x_cal, v_th=v_th, steps=steps, seed=seed,
                                     sample_ids=sample_ids, bias_scale=bias_scale,
                                     alpha=alpha, reset=reset, encoder=encoder,
                                     **(sim_kwargs or {}), **fit_kwargs)
    if method == "overshoot":
        return _overshoot_network(net, x_cal, v_th, reset=_check_reset(reset),
                                  encoder=encoder, bias_scale=bias_scale, **fit_kwargs)
    raise ValueError(f"method must be 'ratematch' or 'overshoot', got {method!r}")
