"""Exact oracles and ``assert_*`` helpers for the norm relations of shot-noise variance.

Every helper computes its reference with the library's own functions (the scaled
:func:`~l4theory.theory.lp_norm` and :func:`~l4theory.theory.l4_norm`, the variance
formulas of :mod:`l4theory.theory.continuous` and :mod:`l4theory.theory.discrete`), so a
property test written with them inherits their numerical care: ``np.linalg.norm(rates)``
squares the rates first and returns 0 for rates near ``1e-194``, which makes a hand-written
envelope check fail on a correct variance; :func:`envelope_std` does not.

The relations (``r`` the per-input variance rate: ``rates`` for Poisson inputs, ``p(1-p)``
for Bernoulli ones; ``g`` the leak gain):

* envelope (Cauchy-Schwarz with Eq. 3): ``std = sqrt(g r.w∘2) <= sqrt(g ||r||_2) ||w||_4``,
  ``g = tau/2`` for the stationary continuous membrane and ``1/(1 - alpha**2)`` for the
  stationary discrete one;
* Eq. 3: ``||w∘2||_2 = ||w||_4**2``, and ``n**(-1/4) ||w||_2 <= ||w||_4 <= ||w||_2``;
* Hadamard drift: for ``w = (cos theta, sin theta)``, ``w∘2`` lies at ``atan(tan**2 theta)``,
  nearer the nearer axis than ``w`` (equal only at 0, pi/4, pi/2);
* Bernoulli vs Poisson: ``Var_Poisson - Var_Bernoulli = g sum_i p_i**2 w_i**2 >= 0``.

Each ``assert_*`` raises :class:`AssertionError` with the worst offending entry, and
returns the reference it checked against (so a test can make further claims about it).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import as_array, check_alpha, check_probs, fmt
from ..theory.continuous import poisson_var, time_factor
from ..theory.discrete import bernoulli_var, discrete_cumulant, leak_gain
from ..theory.norms import hadamard_angle, hadamard_drift, hadamard_square, l4_norm, lp_norm

__all__ = [
    "assert_bernoulli_below_poisson",
    "assert_bernoulli_envelope",
    "assert_eq3",
    "assert_hadamard_drift",
    "assert_l4_between_l2",
    "assert_poisson_envelope",
    "assert_std_envelope",
    "envelope_std",
    "exact_std",
    "poisson_minus_bernoulli_var",
]


def _r_weights(r, weights):
    r = as_array("r", r, ndim=1, nonneg=True)
    w = as_array("weights", weights)
    if w.ndim == 0 or w.shape[-1] != r.shape[0]:
        raise ValueError(f"weights must have {r.shape[0]} inputs (the length of r) on its last "
                         f"axis, got shape {w.shape}")
    return r, w


def _gain(gain):
    g = as_array("gain", gain, nonneg=True)
    return g


def envelope_std(r: ArrayLike, weights: ArrayLike, gain: ArrayLike = 1.0) -> np.ndarray:
    """The L4 envelope of the std, ``sqrt(gain ||r||_2) ||w||_4``, without underflow.

    Parameters
    ----------
    r : array_like, shape (n_inputs,)
        Per-input variance rates, ``>= 0``: Poisson rates (per unit time) or ``p(1-p)``
        of Bernoulli inputs (per step).
    weights : array_like, shape (..., n_inputs)
        Signed weights (units of ``V`` per spike); the last axis is the inputs.
    gain : float or array_like, optional
        Leak gain ``>= 0`` (``tau/2`` stationary continuous, ``1/(1 - alpha**2)``
        stationary discrete, :func:`~l4theory.theory.time_factor` or
        :func:`~l4theory.theory.leak_gain` in general). Default 1.

    Returns
    -------
    numpy.ndarray
        Shape ``weights.shape[:-1]`` broadcast with ``gain`` (units of ``V``). Uses the
        scaled :func:`~l4theory.theory.lp_norm`, so rates near ``1e-194`` (whose squares
        underflow) and weights near ``1e80`` (whose fourth powers overflow) stay exact.
    """
    r, w = _r_weights(r, weights)
    return np.sqrt(_gain(gain) * lp_norm(r, 2.0)) * l4_norm(w)


def exact_std(r: ArrayLike, weights: ArrayLike, gain: ArrayLike = 1.0) -> np.ndarray:
    """The std ``sqrt(gain r.w∘2)`` of a shot-noise membrane, computed scaled.

    Parameters
    ----------
    r : array_like, shape (n_inputs,)
        Per-input variance rates, ``>= 0`` (see :func:`envelope_std`).
    weights : array_like, shape (..., n_inputs)
        Signed weights (units of ``V`` per spike).
    gain : float or array_like, optional
        Leak gain ``>= 0``. Default 1.

    Returns
    -------
    numpy.ndarray
        Shape ``weights.shape[:-1]`` (units of ``V``). Both ``r`` and ``w`` are divided by
        their largest magnitude before the products, so tiny or huge entries neither
        underflow nor overflow; equals ``sqrt(poisson_var)`` or ``sqrt(bernoulli_var)``
        where those do not underflow.
    """
    r, w = _r_weights(r, weights)
    r_max = float(r.max()) if r.size else 0.0
    w_max = np.max(np.abs(w), axis=-1, keepdims=True)
    r_s = r / r_max if r_max > 0 else r
    w_s = np.abs(w) / np.where(w_max > 0, w_max, 1.0)
    inner = np.sum(r_s * w_s**2, axis=-1)
    return np.sqrt(_gain(gain) * r_max * inner) * np.squeeze(w_max, axis=-1)


def _check_le(name, value, bound, rtol, atol, context):
    value, bound = np.broadcast_arrays(np.asarray(value, float), np.asarray(bound, float))
    excess = value - (bound * (1 + rtol) + atol)
    if np.any(np.isnan(value)) or np.any(np.isnan(bound)):
        raise AssertionError(f"{name}: NaN in the value {fmt(value)} or the bound {fmt(bound)}")
    if np.any(excess > 0):
        i = tuple(int(k) for k in np.unravel_index(int(np.argmax(excess)), excess.shape))
        raise AssertionError(
            f"{name} violated{context}: {float(value[i])!r} > {float(bound[i])!r} "
            f"(rtol={rtol:g}, atol={atol:g}; entry {i if i else 'scalar'}, "
            f"{int(np.sum(excess > 0))} of {excess.size} entries)")


def assert_std_envelope(std: ArrayLike, r: ArrayLike, weights: ArrayLike, gain: ArrayLike = 1.0, *, rtol: float = 1e-12,
                        atol: float = 0.0) -> np.ndarray:
    """Assert ``std <= sqrt(gain ||r||_2) ||w||_4`` (the L4 envelope) entry by entry.

    Parameters
    ----------
    std : array_like, shape (...,)
        The std to check (units of ``V``), broadcastable to ``weights.shape[:-1]``:
        typically ``sqrt`` of a variance computed by the code under test.
    r : array_like, shape (n_inputs,)
        Per-input variance rates, ``>= 0`` (see :func:`envelope_std`).
    weights : array_like, shape (..., n_inputs)
        Signed weights (units of ``V`` per spike).
    gain : float, optional
        Leak gain ``>= 0``. Default 1.
    rtol, atol : float, optional
        Allowed excess: ``std <= envelope (1 + rtol) + atol``. The envelope is attained
        when ``r`` is parallel to ``w∘2``, so keep ``rtol`` a few ulps above 0.

    Returns
    -------
    numpy.ndarray
        The envelope (see :func:`envelope_std`).

    Raises
    ------
    AssertionError
        Naming the worst entry, its std and its envelope.
    """
    env = envelope_std(r, weights, gain)
    _check_le("L4 envelope std <= sqrt(gain ||r||_2) ||w||_4", std, env, rtol, atol, "")
    return env


def assert_poisson_envelope(rates: ArrayLike, weights: ArrayLike, tau: float, t: ArrayLike = np.inf, *,
                            rtol: float = 1e-12,
                            atol: float = 0.0) -> np.ndarray:
    """Assert the L4 envelope for Poisson inputs: ``std(V) <= sqrt(tau/2 ||rates||_2) ||w||_4``.

    The std is the library's :func:`~l4theory.theory.poisson_var` (Eq. 2) under the jump-w
    convention ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)``; at finite ``t`` the
    gain ``tau/2`` becomes ``time_factor(2, tau, t) = (tau/2)(1 - exp(-2t/tau))``.

    Parameters
    ----------
    rates : array_like, shape (n_inputs,)
        Poisson rates (spikes per unit time, ``>= 0``).
    weights : array_like, shape (..., n_inputs)
        Jump of ``V`` per input spike (units of ``V``; signed).
    tau : float
        Membrane time constant (``> 0``; ``np.inf`` for no leak with finite ``t``).
    t : float, optional
        Time since ``V(0) = 0``; ``np.inf`` (default) is the stationary state.
    rtol, atol : float, optional
        Allowed excess (see :func:`assert_std_envelope`).

    Returns
    -------
    numpy.ndarray
        The envelope, shape ``weights.shape[:-1]``.
    """
    std = np.sqrt(poisson_var(rates, weights, tau, t))
    return assert_std_envelope(std, rates, weights, time_factor(2, tau, t), rtol=rtol, atol=atol)


def assert_bernoulli_envelope(probs: ArrayLike, weights: ArrayLike, alpha: float = 1.0, steps: ArrayLike = np.inf, *,
                              rtol: float = 1e-12, atol: float = 0.0) -> np.ndarray:
    """Assert the L4 envelope for Bernoulli inputs: ``std(V) <= sqrt(g ||p(1-p)||_2) ||w||_4``.

    The std is the library's :func:`~l4theory.theory.bernoulli_var` of the discrete membrane
    ``V[t] = alpha V[t-1] + sum_i w_i s_i[t]``, ``V[0] = 0``; ``g = leak_gain(2, alpha,
    steps)`` (``1/(1 - alpha**2)`` stationary).

    Parameters
    ----------
    probs : array_like, shape (n_inputs,)
        Spike probability per step of each input, in [0, 1].
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]; 1 (default) is no leak.
    steps : int or float, optional
        Steps integrated; ``np.inf`` (default) is the stationary state (``alpha < 1``).
    rtol, atol : float, optional
        Allowed excess (see :func:`assert_std_envelope`).

    Returns
    -------
    numpy.ndarray
        The envelope, shape ``weights.shape[:-1]``.
    """
    p = check_probs("probs", probs)
    std = np.sqrt(bernoulli_var(p, weights, alpha, steps))
    return assert_std_envelope(std, p * (1 - p), weights, leak_gain(2, alpha, steps),
                               rtol=rtol, atol=atol)


def poisson_minus_bernoulli_var(probs: ArrayLike, weights: ArrayLike, alpha: float = 1.0,
                                steps: ArrayLike = np.inf) -> np.ndarray:
    """Exact gap ``Var_Poisson - Var_Bernoulli = g sum_i p_i**2 w_i**2`` (``>= 0``).

    Parameters
    ----------
    probs : array_like, shape (n_inputs,)
        Spike probabilities per step in [0, 1] (the Poisson input has mean count ``p``).
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]. Default 1.
    steps : int or float, optional
        Steps integrated; ``np.inf`` (default) is stationary (``alpha < 1``).

    Returns
    -------
    numpy.ndarray
        Shape ``weights.shape[:-1]`` (units of ``V**2``).
    """
    p = check_probs("probs", probs)
    w = as_array("weights", weights)
    check_alpha("alpha", alpha)
    return leak_gain(2, alpha, steps) * np.sum(p**2 * w**2, axis=-1)


def assert_bernoulli_below_poisson(probs: ArrayLike, weights: ArrayLike, alpha: float = 1.0,
                                   steps: ArrayLike = np.inf, *,
                                   rtol: float = 1e-9) -> np.ndarray:
    """Assert ``Var_Bernoulli <= Var_Poisson`` and that their gap is exactly ``g sum p**2 w**2``.

    Compares the library's :func:`~l4theory.theory.bernoulli_var` with the ``poisson``
    encoder's :func:`~l4theory.theory.discrete_cumulant` (mean count ``p`` per step, the
    paper's variance form) at the same ``alpha`` and ``steps``.

    Parameters
    ----------
    probs : array_like, shape (n_inputs,)
        Spike probabilities per step, in [0, 1].
    weights : array_like, shape (..., n_inputs)
        Synaptic weights (units of ``V`` per spike).
    alpha : float, optional
        Per-step leak factor in (0, 1]. Default 1.
    steps : int or float, optional
        Steps integrated; ``np.inf`` (default) is stationary (``alpha < 1``).
    rtol : float, optional
        Relative tolerance of the gap identity; the inequality allows ``rtol`` too.

    Returns
    -------
    tuple of numpy.ndarray
        ``(var_bernoulli, var_poisson)``.

    Raises
    ------
    AssertionError
        When the Bernoulli variance exceeds the Poisson one or the gap is not exact.
    """
    p = check_probs("probs", probs)
    var_b = bernoulli_var(p, weights, alpha, steps)
    var_p = discrete_cumulant(2, "poisson", p, weights, alpha, steps)
    _check_le("Bernoulli variance <= Poisson variance", var_b, var_p, rtol, 0.0, "")
    gap = poisson_minus_bernoulli_var(p, weights, alpha, steps)
    # the two sums round independently: allow a few ulps of the larger one
    tol = rtol * np.abs(gap) + 8 * np.finfo(float).eps * np.abs(var_p)
    bad = np.abs((var_p - var_b) - gap) > tol
    if np.any(bad):
        raise AssertionError(f"Var_Poisson - Var_Bernoulli = {fmt(var_p - var_b)} differs from "
                             f"g sum p**2 w**2 = {fmt(gap)} (rtol={rtol:g})")
    return var_b, var_p


def assert_eq3(weights: ArrayLike, *, rtol: float = 1e-12, atol: float = 1e-300) -> np.ndarray:
    """Assert the paper's Eq. 3, ``||w∘2||_2 = ||w||_4**2``, along the last axis.

    Parameters
    ----------
    weights : array_like, shape (..., n_inputs)
        Signed weights.
    rtol, atol : float, optional
        Tolerances of :func:`numpy.isclose` (``atol`` covers squares that underflow).

    Returns
    -------
    numpy.ndarray
        ``||w||_4**2``, shape ``weights.shape[:-1]``.
    """
    w = as_array("weights", weights)
    lhs, rhs = lp_norm(hadamard_square(w), 2.0), l4_norm(w) ** 2
    if not np.all(np.isclose(lhs, rhs, rtol=rtol, atol=atol)):
        raise AssertionError(f"Eq. 3 violated: ||w∘2||_2 = {fmt(lhs)} but ||w||_4**2 = {fmt(rhs)}")
    return rhs


def assert_l4_between_l2(weights: ArrayLike, *, rtol: float = 1e-12) -> np.ndarray:
    """Assert ``n**(-1/4) ||w||_2 <= ||w||_4 <= ||w||_2`` along the last axis (n inputs).

    Parameters
    ----------
    weights : array_like, shape (..., n_inputs)
        Signed weights.
    rtol : float, optional
        Relative slack on both sides.

    Returns
    -------
    numpy.ndarray
        ``||w||_4``, shape ``weights.shape[:-1]``.
    """
    w = as_array("weights", weights)
    l2, l4 = lp_norm(w, 2.0), l4_norm(w)
    n = w.shape[-1]
    _check_le("n**(-1/4) ||w||_2 <= ||w||_4", n ** -0.25 * l2, l4, rtol, 0.0, "")
    _check_le("||w||_4 <= ||w||_2", l4, l2, rtol, 0.0, "")
    return l4


def assert_hadamard_drift(theta: ArrayLike, *, atol: float = 1e-12) -> np.ndarray:
    """Assert that ``w∘2`` drifts from ``w = (cos theta, sin theta)`` toward the nearer axis.

    Checks, for each angle: the polar angle of the library's ``hadamard_square(w)`` equals
    :func:`~l4theory.theory.hadamard_angle` (``atan(tan**2 theta)``); it lies no farther from
    the nearer axis than ``theta`` does; the drift :func:`~l4theory.theory.hadamard_drift`
    is ``<= 0`` below ``pi/4`` and ``>= 0`` above it; and it vanishes at 0, pi/4 and pi/2.

    Parameters
    ----------
    theta : array_like
        Angles of ``w`` in radians, in ``[0, pi/2]``.
    atol : float, optional
        Absolute tolerance in radians.

    Returns
    -------
    numpy.ndarray
        The drift ``hadamard_angle(theta) - theta`` (radians), shape of ``theta``.
    """
    theta = as_array("theta", theta)
    w = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
    sq = hadamard_square(w)
    angle = np.arctan2(sq[..., 1], sq[..., 0])
    lib = hadamard_angle(theta)
    if not np.allclose(angle, lib, rtol=0, atol=max(atol, 1e-13)):
        raise AssertionError(f"angle of w∘2 {fmt(angle)} != hadamard_angle {fmt(lib)}")
    drift = hadamard_drift(theta)
    axis = np.where(theta < np.pi / 4, 0.0, np.pi / 2)
    _check_le("|angle(w∘2) - nearer axis| <= |theta - nearer axis|", np.abs(lib - axis),
              np.abs(theta - axis), 0.0, atol, "")
    below, above = theta < np.pi / 4 - atol, theta > np.pi / 4 + atol
    if np.any(drift[below] > atol) or np.any(drift[above] < -atol):
        raise AssertionError(f"drift does not point to the nearer axis: theta {fmt(theta)}, "
                             f"drift {fmt(drift)}")
    fixed = np.isclose(theta, 0.0, atol=atol) | np.isclose(theta, np.pi / 4, atol=atol) | \
        np.isclose(theta, np.pi / 2, atol=atol)
    if np.any(np.abs(drift[fixed]) > 4 * max(atol, 1e-15)):
        raise AssertionError(f"drift must vanish at 0, pi/4, pi/2, got {fmt(drift[fixed])}")
    return drift
