"""Cumulants of the discrete-time membrane that converted networks actually simulate.

Model (the project's discrete convention)::

    V[t] = alpha * V[t-1] + I[t],    I[t] = sum_i w_i s_i[t],    V[0] = 0,

with ``s_i[t]`` independent across inputs and steps. Because ``V[t]`` is a sum of
independent terms ``alpha**k I[t-k]``, its cumulants are geometric sums::

    kappa_n(V[t]) = kappa_n(I) * (1 - alpha**(n t)) / (1 - alpha**n)   (t kappa_n(I) at alpha = 1)
    kappa_n(I)    = sum_i w_i**n kappa_n(s_i).

The per-input cumulants ``kappa_n(s_i)`` depend on the input encoder:

``bernoulli``
    ``s ~ Bernoulli(p)``, ``p = clip(x, 0, 1)``: ``p, p(1-p), p(1-p)(1-2p), ...``
    (recursion ``kappa_{n+1} = p(1-p) d kappa_n / dp``).
``signed``
    ``s = sign(x) * Bernoulli(q)``, ``q = min(|x|, 1)`` (Rathi et al. 2020):
    ``sign(x)**n * kappa_n(Bernoulli(q))``.
``poisson``
    ``s ~ Poisson(x)`` counts per step (``x = rate * dt >= 0``): every cumulant is ``x``.
``constant``
    ``s = x`` every step: mean ``x`` and no higher cumulants.

The paper's variance ``lambda . w**2`` is the Poisson form; for Bernoulli inputs the
variance is ``p(1-p) . w**2``, its small-``p`` limit being the paper's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import polynomial as P
from numpy.typing import ArrayLike

from .._checks import as_array, check_alpha, check_int, check_probs, fmt

__all__ = [
    "ENCODERS",
    "bernoulli_cumulant",
    "bernoulli_mean",
    "bernoulli_var",
    "current_cumulant",
    "discrete_cumulant",
    "leak_gain",
    "spike_cumulant",
]

#: The input encoders: the one list (simulate, balance, diagnostics and the CLI import it).
ENCODERS = ("bernoulli", "signed", "poisson", "constant")


@lru_cache(maxsize=64)
def _bernoulli_poly(n: int) -> np.ndarray:
    """Coefficients (increasing powers of p) of the n-th Bernoulli cumulant."""
    coef = np.array([0.0, 1.0])  # kappa_1 = p
    p_one_minus_p = np.array([0.0, 1.0, -1.0])
    for _ in range(n - 1):
        coef = P.polymul(p_one_minus_p, P.polyder(coef))
    return coef


def _bernoulli_kappa(n: int, p: np.ndarray) -> np.ndarray:
    return P.polyval(p, _bernoulli_poly(n))


def spike_cumulant(n: int, encoder: str, x: ArrayLike) -> np.ndarray:
    """n-th cumulant of one input's spike variable ``s_i`` in one time step.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1`` (``n = 1`` gives ``E[s_i]``).
    encoder : {'bernoulli', 'signed', 'poisson', 'constant'}
        How the input value is turned into spikes (see the module docstring).
    x : array_like, shape (..., n_inputs)
        Input values: probabilities (``bernoulli``, clipped to [0, 1]), signed intensities
        (``signed``, magnitude clipped to 1), expected counts per step (``poisson``,
        ``>= 0``) or analog currents (``constant``).

    Returns
    -------
    numpy.ndarray
        Per-input cumulant, same shape as ``x`` (dimensionless spike units).
    """
    n = check_int("n", n, minimum=1)
    x = as_array("x", x)
    if encoder == "bernoulli":
        return _bernoulli_kappa(n, np.clip(x, 0.0, 1.0))
    if encoder == "signed":
        q = np.minimum(np.abs(x), 1.0)
        return np.sign(x) ** n * _bernoulli_kappa(n, q)
    if encoder == "poisson":
        if (x < 0).any():
            raise ValueError(f"x must be >= 0 (expected counts per step) for the poisson encoder, got {fmt(x)}")
        return x.copy()
    if encoder == "constant":
        return x.copy() if n == 1 else np.zeros_like(x)
    raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}")


def current_cumulant(n: int, encoder: str, x: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """n-th cumulant of one step's input current ``I = sum_i w_i s_i``.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1``.
    encoder : {'bernoulli', 'signed', 'poisson', 'constant'}
        Input encoder (see :func:`spike_cumulant`).
    x : array_like, shape (n_inputs,) or broadcastable to ``weights``
        Input values.
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike); the sum runs over the last axis.

    Returns
    -------
    numpy.ndarray
        ``sum_i w_i**n kappa_n(s_i)``, shape ``broadcast(x, weights).shape[:-1]``.
    """
    kappa = spike_cumulant(n, encoder, x)
    weights = as_array("weights", weights)
    if weights.ndim == 0 or kappa.ndim == 0 or weights.shape[-1] != kappa.shape[-1]:
        raise ValueError(
            f"weights (shape {weights.shape}) and x (shape {kappa.shape}) must share their "
            "last axis (the inputs)"
        )
    return np.sum(weights**n * kappa, axis=-1)


def leak_gain(n: int, alpha: float, steps: ArrayLike = np.inf) -> np.ndarray:
    """Geometric gain ``sum_{k<steps} alpha**(n k)`` of the n-th cumulant.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1``.
    alpha : float
        Per-step leak factor in (0, 1] (``alpha = exp(-dt/tau)``; 1 = no leak).
    steps : int or array_like
        Number of integrated steps (``>= 0``, integers) or ``np.inf`` for the stationary
        state (requires ``alpha < 1``).

    Returns
    -------
    numpy.ndarray
        ``(1 - alpha**(n steps)) / (1 - alpha**n)``, or ``steps`` when ``alpha = 1``,
        shape of ``steps``. Uses ``expm1`` so ``alpha`` close to 1 stays accurate.
    """
    n = check_int("n", n, minimum=1)
    alpha = check_alpha("alpha", alpha)
    steps = as_array("steps", steps, nonneg=True, allow_inf=True)
    finite = steps[np.isfinite(steps)]
    if (finite != np.round(finite)).any():
        raise ValueError(f"steps must be whole numbers of steps (or inf), got {fmt(steps)}")
    if alpha == 1.0:
        if np.isinf(steps).any():
            raise ValueError("steps = inf needs alpha < 1: without leak there is no stationary state")
        return steps.copy()
    log_a = n * np.log(alpha)
    with np.errstate(over="ignore", invalid="ignore"):
        num = np.where(np.isinf(steps), -1.0, np.expm1(log_a * np.where(np.isinf(steps), 0.0, steps)))
    return num / np.expm1(log_a)


def discrete_cumulant(n: int, encoder: str, x: ArrayLike, weights: ArrayLike, alpha: float = 1.0,
                      steps: ArrayLike = np.inf) -> np.ndarray:
    """n-th cumulant of ``V[steps]`` for ``V[t] = alpha V[t-1] + sum_i w_i s_i[t]``, ``V[0] = 0``.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1``.
    encoder : {'bernoulli', 'signed', 'poisson', 'constant'}
        Input encoder (see :func:`spike_cumulant`).
    x : array_like, shape (n_inputs,)
        Input values for the encoder.
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]; 1 (default) is the IF neuron.
    steps : int or array_like, optional
        Steps integrated; ``np.inf`` (default) is the stationary state (``alpha < 1``).

    Returns
    -------
    numpy.ndarray
        ``leak_gain(n, alpha, steps) * current_cumulant(n, encoder, x, weights)``, the two
        broadcast together.
    """
    return leak_gain(n, alpha, steps) * current_cumulant(n, encoder, x, weights)


def bernoulli_cumulant(n: int, probs: ArrayLike, weights: ArrayLike, alpha: float = 1.0,
                       steps: ArrayLike = np.inf) -> np.ndarray:
    """n-th cumulant of the discrete membrane driven by Bernoulli spike trains.

    Parameters
    ----------
    n : int
        Cumulant order, ``n >= 1``.
    probs : array_like, shape (n_inputs,)
        Spike probability per step of each input, in [0, 1].
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]; 1 (default) means no leak.
    steps : int or array_like, optional
        Steps integrated; ``np.inf`` (default) is the stationary state (``alpha < 1``).

    Returns
    -------
    numpy.ndarray
        ``(1 - alpha**(n steps))/(1 - alpha**n) * sum_i w_i**n kappa_n(Bernoulli(p_i))``.
    """
    probs = check_probs("probs", probs)
    return discrete_cumulant(n, "bernoulli", probs, weights, alpha, steps)


def bernoulli_mean(probs: ArrayLike, weights: ArrayLike, alpha: float = 1.0,
                   steps: ArrayLike = np.inf) -> np.ndarray:
    """Mean ``(w.p)(1 - alpha**steps)/(1 - alpha)`` of the discrete membrane with Bernoulli inputs.

    ``V[t] = alpha V[t-1] + sum_i w_i s_i[t]``, ``V[0] = 0``, ``s_i[t] ~ Bernoulli(p_i)``.

    Parameters
    ----------
    probs : array_like, shape (n_inputs,)
        Spike probability per step of each input, in [0, 1].
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]; 1 (default) means no leak.
    steps : int or array_like, optional
        Steps integrated; ``np.inf`` (default) is the stationary state (``alpha < 1``).

    Returns
    -------
    numpy.ndarray
        The mean of ``V[steps]``, shape ``weights.shape[:-1]`` broadcast against ``steps``.

    See Also
    --------
    bernoulli_cumulant : every cumulant.
    """
    return bernoulli_cumulant(1, probs, weights, alpha, steps)


def bernoulli_var(probs: ArrayLike, weights: ArrayLike, alpha: float = 1.0,
                  steps: ArrayLike = np.inf) -> np.ndarray:
    """Variance ``sum_i p_i(1-p_i) w_i**2 (1 - alpha**(2 steps))/(1 - alpha**2)`` (Bernoulli inputs).

    ``V[t] = alpha V[t-1] + sum_i w_i s_i[t]``, ``V[0] = 0``, ``s_i[t] ~ Bernoulli(p_i)``:
    the per-input variance is ``p (1 - p)``, not the paper's Poisson ``p``.

    Parameters
    ----------
    probs : array_like, shape (n_inputs,)
        Spike probability per step of each input, in [0, 1].
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]; 1 (default) means no leak.
    steps : int or array_like, optional
        Steps integrated; ``np.inf`` (default) is the stationary state (``alpha < 1``).

    Returns
    -------
    numpy.ndarray
        The variance of ``V[steps]``, shape ``weights.shape[:-1]`` broadcast against ``steps``.

    See Also
    --------
    bernoulli_cumulant : every cumulant.
    """
    return bernoulli_cumulant(2, probs, weights, alpha, steps)
