"""Firing rates of integrate-and-fire neurons driven by Poisson (or Bernoulli) shot noise.

Continuous-time model (jump-``w`` convention): ``dV/dt = -V/tau + sum_i w_i sum_k
delta(t - t_ik)``, input ``i`` a Poisson process of rate ``rates_i``; the neuron spikes when
``V >= v_th`` and resets (hard: ``V = 0``; soft: ``V -= v_th``).

Functions
---------
siegert_rate
    Diffusion approximation for the leaky neuron (Siegert's formula).
if_soft_rate
    Exact long-run rate of the non-leaky neuron with soft reset, ``drift / v_th``.
if_hard_rate
    Exact long-run rate of the non-leaky neuron with hard reset, by renewal theory.
if_hard_rate_bernoulli
    The same for the discrete-time neuron with Bernoulli inputs (rate per step).
if_hard_rate_asymptotic
    Large-threshold renewal asymptotic ``drift / (v_th + E[overshoot])``.
expected_steps_to_threshold
    Expected number of i.i.d. non-negative increments needed to reach a level.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import integrate, special

from l4theory._checks import as_array, check_int, check_positive, check_probs, fmt

__all__ = [
    "expected_steps_to_threshold",
    "if_hard_rate",
    "if_hard_rate_asymptotic",
    "if_hard_rate_bernoulli",
    "if_soft_rate",
    "siegert_rate",
]


def _rates_weights(rates, weights, *, nonneg_w=False):
    rates = as_array("rates", rates, ndim=1, nonneg=True)
    w = as_array("weights", weights, nonneg=nonneg_w)
    if w.ndim < 1 or w.shape[-1] != rates.size:
        raise ValueError(
            f"weights must have shape (..., n_in) with n_in = {rates.size} (the length of "
            f"rates), got shape {w.shape}"
        )
    return rates, w


def _siegert_one(mu, sigma_b, tau, v_th, v_reset, t_ref):
    if sigma_b == 0.0:  # deterministic drive: V(t) = mu (1 - exp(-t/tau)) from v_reset
        if mu <= v_th:
            return 0.0
        return 1.0 / (t_ref + tau * math.log((mu - v_reset) / (mu - v_th)))
    lo = (v_reset - mu) / sigma_b
    hi = (v_th - mu) / sigma_b
    if hi > 26.0:  # the integral exceeds exp(676): the rate underflows
        return 0.0

    def f(u):
        return special.erfcx(-u)

    # erfcx(-u) ~ 1/(|u| sqrt(pi)) for u << 0 and ~ 2 exp(u^2) for u >> 0: split at 0.
    total = 0.0
    if lo < 0.0:
        total += integrate.quad(f, lo, min(hi, 0.0), limit=200, epsabs=0.0, epsrel=1e-10)[0]
    if hi > 0.0:
        total += integrate.quad(f, max(lo, 0.0), hi, limit=200, epsabs=0.0, epsrel=1e-10)[0]
    return 1.0 / (t_ref + tau * math.sqrt(math.pi) * total)


def siegert_rate(rates: ArrayLike, weights: ArrayLike, tau: float, v_th: ArrayLike, *, v_reset: float = 0.0,
                 t_ref: float = 0.0) -> np.ndarray:
    """Siegert's diffusion-approximation firing rate of the leaky integrate-and-fire neuron.

    ``1/nu = t_ref + tau sqrt(pi) int_{(v_reset-mu)/sigma_B}^{(v_th-mu)/sigma_B} erfcx(-u) du``
    with ``mu = tau sum_i rates_i w_i`` and the diffusion constant
    ``sigma_B^2 = tau sum_i rates_i w_i^2``, which is *twice* the stationary variance of the
    free membrane (jump-``w`` convention ``dV/dt = -V/tau + sum w_i delta``). It treats the
    input as Gaussian white noise and fails when single jumps are comparable to
    ``v_th - v_reset`` (see ``docs/validation.md``).

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Input Poisson rates (per unit time), ``>= 0``.
    weights : array_like, shape (..., n_in)
        Jump sizes (signed); leading axes are neurons.
    tau : float
        Membrane time constant (same time unit), ``> 0``.
    v_th : float or array_like
        Threshold, broadcast against the leading shape of ``weights``.
    v_reset : float
        Reset potential, ``< v_th``.
    t_ref : float
        Refractory period, ``>= 0``.

    Returns
    -------
    ndarray, shape ``broadcast(weights.shape[:-1], v_th.shape)``
        Output rate (spikes per unit time).
    """
    rates, w = _rates_weights(rates, weights)
    tau = float(check_positive("tau", tau))
    v_th = as_array("v_th", v_th)
    v_reset = float(as_array("v_reset", v_reset))
    t_ref = float(as_array("t_ref", t_ref, nonneg=True))
    if (v_th <= v_reset).any():
        raise ValueError(f"v_th must exceed v_reset = {v_reset}, got {fmt(v_th)}")
    mu = tau * (w @ rates)
    sigma_b = np.sqrt(tau * ((w * w) @ rates))
    mu, sigma_b, v_th = np.broadcast_arrays(mu, sigma_b, v_th)
    out = np.empty(mu.shape)
    for idx in np.ndindex(mu.shape):
        out[idx] = _siegert_one(float(mu[idx]), float(sigma_b[idx]), tau, float(v_th[idx]),
                                v_reset, t_ref)
    return out


def if_soft_rate(rates: ArrayLike, weights: ArrayLike, v_th: ArrayLike) -> np.ndarray:
    """Exact long-run rate of the non-leaky integrate-and-fire neuron with soft reset.

    With soft reset (subtract ``v_th`` per spike) the count is ``(S(t) - V(t)) / v_th`` with
    ``S`` the summed input, so the long-run rate is ``max(drift, 0) / v_th``,
    ``drift = sum_i rates_i w_i``, whatever the input variance (for non-negative jumps the
    count is exactly ``floor(S(t)/v_th)``).

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Input rates (per unit time, or spike probabilities per step for the discrete neuron).
    weights : array_like, shape (..., n_in)
        Jump sizes.
    v_th : float or array_like
        Threshold ``> 0``, broadcast against ``weights.shape[:-1]``.

    Returns
    -------
    ndarray
        Rate in spikes per unit time (or per step).
    """
    rates, w = _rates_weights(rates, weights)
    v_th = check_positive("v_th", v_th)
    return np.maximum(w @ rates, 0.0) / v_th


def _lattice_unit(values, rel_tol=1e-9):
    """Greatest common unit of non-negative ``values`` (float Euclid), or 0 if none."""
    pos = np.unique(values[values > 0])
    if pos.size == 0:
        return 0.0
    scale = pos.max()
    g = pos[0]
    for v in pos[1:]:
        a, b = v, g
        while b > rel_tol * scale:
            a, b = b, math.fmod(a, b)
        g = a
    if g <= rel_tol * scale * 10:
        return 0.0
    k = values / g
    return g if np.allclose(k, np.round(k), rtol=0, atol=1e-7) else 0.0


def _steps_integer(d, p, n_level):
    """E[#increments until sum >= n_level] for integer increments ``d`` (probabilities p)."""
    p0 = float(p[d == 0].sum())
    if p0 >= 1.0:
        return np.inf
    keep = d > 0
    d, p = d[keep].astype(np.int64), p[keep] / (1.0 - p0)
    g = np.zeros(n_level + int(d.max()) + 1)  # g[off + r]: r <= 0 -> 0
    off = int(d.max())
    scale = 1.0 / (1.0 - p0)
    for r in range(1, n_level + 1):
        g[off + r] = scale + p @ g[off + r - d]
    return float(g[off + n_level])


def expected_steps_to_threshold(values: ArrayLike, probs: ArrayLike, level: float, *,
                                max_grid: int = 1 << 16) -> tuple[float, float, float]:
    """Expected number of i.i.d. increments needed for their sum to reach ``level``.

    ``E[M]``, ``M = min{n : X_1 + ... + X_n >= level}``, with ``X`` taking ``values[k]``
    with probability ``probs[k]``. When the values lie on a lattice ``h Z`` with
    ``level/h <= max_grid`` the result is exact (a linear recursion); otherwise the
    increments are rounded down and up to a grid of ``max_grid`` cells, which brackets
    ``E[M]`` from above and below, and the midpoint is returned with the bracket.

    Parameters
    ----------
    values : array_like, shape (k,)
        Non-negative increment values (zero allowed).
    probs : array_like, shape (k,)
        Their probabilities (summing to 1).
    level : float
        Level to reach, ``> 0``.
    max_grid : int
        Largest number of grid cells.

    Returns
    -------
    mean : float
        ``E[M]``.
    lower, upper : float
        Bounds (equal to ``mean`` in the exact lattice case).
    """
    values = as_array("values", values, ndim=1, nonneg=True)
    probs = check_probs("probs", probs)
    if probs.shape != values.shape:
        raise ValueError(f"probs has shape {probs.shape} but values has shape {values.shape}")
    if not math.isclose(float(probs.sum()), 1.0, rel_tol=0, abs_tol=1e-9):
        raise ValueError(f"probs must sum to 1, got sum {probs.sum()!r}")
    level = float(check_positive("level", level))
    max_grid = check_int("max_grid", max_grid, minimum=16)
    if float(probs[values > 0].sum()) == 0.0:
        return np.inf, np.inf, np.inf
    h = _lattice_unit(values[probs > 0])
    if h > 0 and level / h <= max_grid:
        n_level = int(math.ceil(level / h - 1e-9))
        m = _steps_integer(np.round(values / h).astype(np.int64), probs, n_level)
        return m, m, m
    h = level / max_grid
    upper = _steps_integer(np.floor(values / h).astype(np.int64), probs, max_grid)
    lower = _steps_integer(np.ceil(values / h).astype(np.int64), probs, max_grid)
    return 0.5 * (lower + upper), lower, upper


def if_hard_rate(rates: ArrayLike, weights: ArrayLike, v_th: float, *, max_grid: int = 1 << 16,
                 return_bounds: bool = False) -> float | tuple[float, float, float]:
    """Exact long-run rate of the non-leaky (``tau = inf``) IF neuron with hard reset.

    Each inter-spike interval starts at ``V = 0`` and ends at the first input event at which
    the summed jumps reach ``v_th``; by renewal theory the rate is
    ``Lambda / E[M]``, ``Lambda = sum rates``, ``M`` the number of input events needed
    (:func:`expected_steps_to_threshold` with jump ``w_i`` chosen with probability
    ``rates_i / Lambda``). Exact when the weights lie on a lattice, otherwise bracketed on a
    fine grid.

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Input Poisson rates (per unit time), ``>= 0``.
    weights : array_like, shape (n_in,)
        Non-negative jump sizes.
    v_th : float
        Threshold ``> 0``.
    max_grid : int
        Grid size for non-lattice weights.
    return_bounds : bool
        Also return the lower and upper bounds of the rate.

    Returns
    -------
    float or tuple of float
        Rate (spikes per unit time), or ``(rate, lower, upper)``.
    """
    rates, w = _rates_weights(rates, weights, nonneg_w=True)
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D, got shape {w.shape}")
    total = float(rates.sum())
    if total == 0.0:
        return (0.0, 0.0, 0.0) if return_bounds else 0.0
    m, lo, hi = expected_steps_to_threshold(w, rates / total, v_th, max_grid=max_grid)
    rate = total / m
    return (rate, total / hi, total / lo) if return_bounds else rate


def _bernoulli_current_distribution(probs, weights, max_support=1 << 20):
    vals = {0.0: 1.0}
    for p, wi in zip(probs, weights, strict=True):
        if p == 0.0 or wi == 0.0:
            continue
        new: dict[float, float] = {}
        for v, q in vals.items():
            for v2, q2 in ((v, q * (1.0 - p)), (round(v + wi, 12), q * p)):
                if q2 > 0.0:
                    new[v2] = new.get(v2, 0.0) + q2
        vals = new
        if len(vals) > max_support:
            raise ValueError(
                f"the input current takes more than {max_support} values; use fewer inputs "
                "or weights on a lattice"
            )
    v = np.fromiter(vals.keys(), float)
    q = np.fromiter(vals.values(), float)
    return v, q / q.sum()


def if_hard_rate_bernoulli(probs: ArrayLike, weights: ArrayLike, v_th: float, *, max_grid: int = 1 << 16,
                           return_bounds: bool = False) -> float | tuple[float, float, float]:
    """Exact rate (per step) of the discrete non-leaky neuron with Bernoulli inputs, hard reset.

    ``V[t] = V[t-1] + sum_i w_i s_i[t]``, ``s_i[t] ~ Bernoulli(p_i)``, spike and ``V = 0`` when
    ``V >= v_th``. The per-step current is i.i.d., so the rate is ``1 / E[M]`` with ``M`` the
    number of steps (zero-current steps included) for the summed current to reach ``v_th``.
    The current's distribution is enumerated exactly; the renewal recursion is exact for
    weights on a lattice (e.g. integers) and bracketed otherwise.

    Parameters
    ----------
    probs : array_like, shape (n_in,)
        Spike probabilities per step.
    weights : array_like, shape (n_in,)
        Non-negative weights (threshold units).
    v_th : float
        Threshold ``> 0``.
    max_grid : int
        Grid size for non-lattice weights.
    return_bounds : bool
        Also return the lower and upper bounds.

    Returns
    -------
    float or tuple of float
        Spikes per step, or ``(rate, lower, upper)``.
    """
    probs = check_probs("probs", probs)
    w = as_array("weights", weights, ndim=1, nonneg=True)
    if w.shape != probs.shape:
        raise ValueError(f"weights has shape {w.shape} but probs has shape {probs.shape}")
    vals, q = _bernoulli_current_distribution(probs, w)
    m, lo, hi = expected_steps_to_threshold(vals, q, v_th, max_grid=max_grid)
    rate = 1.0 / m
    return (rate, 1.0 / hi, 1.0 / lo) if return_bounds else rate


def if_hard_rate_asymptotic(rates: ArrayLike, weights: ArrayLike, v_th: ArrayLike) -> np.ndarray:
    """Large-threshold asymptotic of the hard-reset IF rate (renewal theory, non-lattice).

    ``nu ~ drift / (v_th + E[overshoot])`` with ``E[overshoot] -> m2 / (2 m1)``,
    ``m1 = sum rates w``, ``m2 = sum rates w^2``: the hard reset throws away the overshoot
    above threshold (the soft-reset rate is ``drift / v_th``). Relative error
    ``o(1/v_th)`` for non-lattice jumps.

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Input rates (per unit time).
    weights : array_like, shape (..., n_in)
        Non-negative jump sizes.
    v_th : float or array_like
        Threshold ``> 0``.

    Returns
    -------
    ndarray
        Rate (spikes per unit time).
    """
    rates, w = _rates_weights(rates, weights, nonneg_w=True)
    v_th = check_positive("v_th", v_th)
    m1 = w @ rates
    m2 = (w * w) @ rates
    with np.errstate(invalid="ignore", divide="ignore"):
        overshoot = np.where(m1 > 0, m2 / (2.0 * np.where(m1 > 0, m1, 1.0)), 0.0)
    return m1 / (v_th + overshoot)
