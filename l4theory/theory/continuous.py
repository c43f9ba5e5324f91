"""Cumulants of the continuous-time shot-noise membrane potential (Campbell's theorem).

Model (the project's *jump-w* convention)::

    dV/dt = -V / tau + sum_i w_i sum_k delta(t - t_ik),    V(0) = 0,

with input ``i`` an independent homogeneous Poisson process of rate ``rates[i]``. Each
input spike makes ``V`` jump by ``w_i`` and the jump then decays with time constant
``tau``. Campbell's theorem gives every cumulant of the free (threshold-less) membrane::

    kappa_n(t) = (tau / n) * sum_i rates_i * w_i**n * (1 - exp(-n t / tau)).

``n = 1`` is the paper's Eq. 1 and ``n = 2`` its Eq. 2 (with the printed factor 1/2).
With the other common convention, ``tau dV/dt = -V + ...``, Eq. 1 would be off by a factor
``tau`` and Eq. 2 by ``tau**2``; the paper's examples all use ``tau = 1`` and cannot tell.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import as_array, check_int, check_positive

__all__ = ["poisson_cumulant", "poisson_mean", "poisson_var", "time_factor"]


def _rates_weights(rates, weights):
    rates = as_array("rates", rates, ndim=1, nonneg=True)
    weights = as_array("weights", weights)
    if weights.ndim == 0 or weights.shape[-1] != rates.shape[0]:
        raise ValueError(
            f"weights must have the number of inputs ({rates.shape[0]}, the length of rates) "
            f"as its last axis, got shape {weights.shape}"
        )
    return rates, weights


def time_factor(n: int, tau: float, t: ArrayLike = np.inf) -> np.ndarray:
    """Time dependence of the n-th cumulant per unit ``sum_i rates_i w_i**n``.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1``.
    tau : float
        Membrane time constant (time units, ``> 0``; ``np.inf`` for no leak).
    t : float or array_like
        Time since the membrane started at ``V(0) = 0`` (``>= 0``; ``np.inf`` for the
        stationary state, which requires a finite ``tau``).

    Returns
    -------
    numpy.ndarray
        ``(tau / n) * (1 - exp(-n t / tau))`` with the shape of ``t``; ``t`` when
        ``tau = inf``. Computed with ``expm1`` so that ``t << tau`` keeps full accuracy.
    """
    n = check_int("n", n, minimum=1)
    tau = float(check_positive("tau", tau, allow_inf=True))
    t = as_array("t", t, nonneg=True, allow_inf=True)
    if np.isinf(tau):
        if np.isinf(t).any():
            raise ValueError("t = inf needs a finite tau: without leak there is no stationary state")
        return t.copy()
    with np.errstate(over="ignore"):
        return -(tau / n) * np.expm1(-n * t / tau)


def poisson_cumulant(n: int, rates: ArrayLike, weights: ArrayLike, tau: float,
                     t: ArrayLike = np.inf) -> np.ndarray:
    """n-th cumulant of the free membrane driven by Poisson inputs (Campbell's theorem).

    ``kappa_n(t) = (tau/n) * sum_i rates_i w_i**n (1 - exp(-n t/tau))`` under the jump-w
    convention ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``, ``V(0) = 0``.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1`` (1: mean, 2: variance).
    rates : array_like, shape (n_inputs,)
        Poisson rate of each input (spikes per unit time, ``>= 0``).
    weights : array_like, shape (..., n_inputs)
        Jump of ``V`` per input spike (units of ``V``; signed). Leading axes are extra
        neurons; the sum runs over the last axis.
    tau : float
        Membrane time constant (same time unit as ``1/rates``; ``np.inf`` = no leak).
    t : float or array_like, optional
        Time after the start (``np.inf``, the default, is the stationary state).

    Returns
    -------
    numpy.ndarray
        ``time_factor(n, tau, t)`` broadcast against ``sum_i rates_i w_i**n`` (whose
        shape is ``weights.shape[:-1]``).
    """
    n = check_int("n", n, minimum=1)
    rates, weights = _rates_weights(rates, weights)
    strength = np.sum(rates * weights**n, axis=-1)
    return time_factor(n, tau, t) * strength


def poisson_mean(rates: ArrayLike, weights: ArrayLike, tau: float, t: ArrayLike = np.inf) -> np.ndarray:
    """Mean of the free membrane, the paper's Eq. 1: ``tau (rates.w) (1 - exp(-t/tau))``.

    :func:`poisson_cumulant` with ``n = 1``, under the jump-w convention
    ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``, ``V(0) = 0``.

    Parameters
    ----------
    rates : array_like, shape (n_inputs,)
        Poisson rate of each input (spikes per unit time, ``>= 0``).
    weights : array_like, shape (..., n_inputs)
        Jump of ``V`` per input spike (units of ``V``; signed).
    tau : float
        Membrane time constant (same time unit as ``1/rates``; ``np.inf`` = no leak).
    t : float or array_like, optional
        Time after the start (``np.inf``, the default, is the stationary state).

    Returns
    -------
    numpy.ndarray
        The mean, shape ``weights.shape[:-1]`` broadcast against ``t`` (units of ``V``).

    See Also
    --------
    poisson_cumulant : every cumulant.
    """
    return poisson_cumulant(1, rates, weights, tau, t)


def poisson_var(rates: ArrayLike, weights: ArrayLike, tau: float, t: ArrayLike = np.inf) -> np.ndarray:
    """Variance of the free membrane, the paper's Eq. 2: ``(tau/2) rates.(w**2) (1 - exp(-2t/tau))``.

    :func:`poisson_cumulant` with ``n = 2``, under the jump-w convention
    ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``, ``V(0) = 0``.

    Parameters
    ----------
    rates : array_like, shape (n_inputs,)
        Poisson rate of each input (spikes per unit time, ``>= 0``).
    weights : array_like, shape (..., n_inputs)
        Jump of ``V`` per input spike (units of ``V``; signed).
    tau : float
        Membrane time constant (same time unit as ``1/rates``; ``np.inf`` = no leak).
    t : float or array_like, optional
        Time after the start (``np.inf``, the default, is the stationary state).

    Returns
    -------
    numpy.ndarray
        The variance, shape ``weights.shape[:-1]`` broadcast against ``t`` (units of ``V**2``).

    See Also
    --------
    poisson_cumulant : every cumulant.
    """
    return poisson_cumulant(2, rates, weights, tau, t)
