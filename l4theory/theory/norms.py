"""Norm relations behind the paper's "std is proportional to the L4 norm".

For shot noise the variance is ``g * r . (w∘2)`` with ``w∘2`` the element-wise square
and ``r`` the per-input variance rate (``lambda`` for Poisson inputs, ``p(1-p)`` for
Bernoulli ones) and ``g`` a leak gain (``tau/2`` stationary). By Eq. 3,
``||w∘2||_2 = ||w||_4**2``, so Cauchy-Schwarz gives the envelope::

    Var = g ||r||_2 ||w||_4**2 cos(psi) <= g ||r||_2 ||w||_4**2,

``psi`` being the angle between ``r`` and ``w∘2``. "std ∝ L4" is this envelope: it is an
equality only when ``r`` is parallel to ``w∘2``; a flat input makes the variance follow
the L2 norm instead (``r . w∘2 = r_0 ||w||_2**2``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._checks import as_array, check_positive, fmt

__all__ = [
    "VarianceDecomposition",
    "hadamard_angle",
    "hadamard_drift",
    "hadamard_square",
    "l4_norm",
    "lp_norm",
    "variance_decomposition",
]


def lp_norm(weights: ArrayLike, p: float, axis: int = -1) -> np.ndarray:
    """The Lp norm ``(sum |w|**p)**(1/p)`` along ``axis``.

    Parameters
    ----------
    weights : array_like
        Signed weights (any shape).
    p : float
        Order, ``p > 0`` (``np.inf`` gives the max norm).
    axis : int, optional
        Axis to reduce (default: last).

    Returns
    -------
    numpy.ndarray
        The norms, ``weights`` with ``axis`` removed. Scaled by the largest magnitude
        first so that high orders neither overflow nor underflow.
    """
    w = np.abs(as_array("weights", weights))
    p = float(check_positive("p", p, allow_inf=True))
    if w.ndim == 0:
        raise ValueError(f"weights must have at least one axis, got a scalar {fmt(w)}")
    scale = np.max(w, axis=axis, keepdims=True)
    if np.isinf(p):
        return np.squeeze(scale, axis=axis)
    safe = np.where(scale > 0, scale, 1.0)
    return np.squeeze(safe, axis=axis) * np.sum((w / safe) ** p, axis=axis) ** (1.0 / p)


def l4_norm(weights: ArrayLike, axis: int = -1) -> np.ndarray:
    """The L4 norm ``(sum w**4)**(1/4)`` along ``axis`` (see :func:`lp_norm`).

    Parameters
    ----------
    weights : array_like
        Signed weights (any shape; units of ``V`` per spike).
    axis : int, optional
        Axis to reduce (default: last, the inputs of each neuron).

    Returns
    -------
    numpy.ndarray
        The norms, ``weights`` with ``axis`` removed (units of the weights).
    """
    return lp_norm(weights, 4.0, axis=axis)


def hadamard_square(weights: ArrayLike) -> np.ndarray:
    """Element-wise square ``w∘2`` (the direction that sets the variance).

    Parameters
    ----------
    weights : array_like
        Signed weights (any shape).

    Returns
    -------
    numpy.ndarray
        ``weights**2``, same shape (units of the weights squared).
    """
    return as_array("weights", weights) ** 2


def hadamard_angle(theta: ArrayLike) -> np.ndarray:
    """Polar angle of ``w∘2`` for the unit vector ``w = (cos theta, sin theta)``.

    Parameters
    ----------
    theta : array_like
        Angle(s) of ``w`` in radians, in ``[0, pi/2]``.

    Returns
    -------
    numpy.ndarray
        ``atan2(sin**2 theta, cos**2 theta) = atan(tan**2 theta)``, in ``[0, pi/2]``.
    """
    theta = as_array("theta", theta)
    if ((theta < 0) | (theta > np.pi / 2)).any():
        raise ValueError(f"theta must lie in [0, pi/2], got {fmt(theta)}")
    return np.arctan2(np.sin(theta) ** 2, np.cos(theta) ** 2)


def hadamard_drift(theta: ArrayLike) -> np.ndarray:
    """Rotation ``hadamard_angle(theta) - theta`` from ``w`` to ``w∘2`` (radians).

    Negative below ``pi/4`` and positive above it: ``w∘2`` drifts toward the nearer axis.
    Exactly zero at ``0``, ``pi/4`` and ``pi/2``.

    Parameters
    ----------
    theta : array_like
        Angle(s) of the unit vector ``w = (cos theta, sin theta)``, radians in ``[0, pi/2]``.

    Returns
    -------
    numpy.ndarray
        The drift in radians, shape of ``theta``.
    """
    theta = as_array("theta", theta)
    return hadamard_angle(theta) - theta


@dataclass(frozen=True)
class VarianceDecomposition:
    """Exact split of a shot-noise variance into the L4 envelope and an angle factor.

    Attributes
    ----------
    variance : numpy.ndarray
        ``gain * r . w∘2``.
    envelope : numpy.ndarray
        ``gain * ||r||_2 * ||w||_4**2`` (Cauchy-Schwarz bound on ``variance``).
    cos_psi : numpy.ndarray
        ``variance / envelope`` in [0, 1]: cosine of the angle between ``r`` and ``w∘2``
        (NaN where ``r`` or ``w`` is zero).
    psi : numpy.ndarray
        The angle itself (radians).
    l4 : numpy.ndarray
        ``||w||_4``.
    r_norm : numpy.ndarray
        ``||r||_2``.
    """

    variance: np.ndarray
    envelope: np.ndarray
    cos_psi: np.ndarray
    psi: np.ndarray
    l4: np.ndarray
    r_norm: np.ndarray

    @property
    def std_envelope(self) -> np.ndarray:
        """Bound on the std: ``sqrt(gain ||r||_2) ||w||_4``."""
        return np.sqrt(self.envelope)


def variance_decomposition(r: ArrayLike, weights: ArrayLike, gain: float = 1.0) -> VarianceDecomposition:
    """Decompose ``gain * r . w∘2`` as ``gain ||r||_2 ||w||_4**2 cos(psi)``.

    Parameters
    ----------
    r : array_like, shape (n_inputs,)
        Per-input variance rates, ``>= 0``: ``rates`` for Poisson inputs (per unit time),
        ``p(1-p)`` for Bernoulli inputs (per step).
    weights : array_like, shape (..., n_inputs)
        Signed weights (units of ``V``); the last axis is the inputs.
    gain : float, optional
        Leak gain multiplying the sum (``tau/2`` for the stationary continuous membrane,
        ``1/(1-alpha**2)`` for the stationary discrete one). Default 1.

    Returns
    -------
    VarianceDecomposition
        Every array of shape ``weights.shape[:-1]`` (``r_norm`` a scalar array).
    """
    r = as_array("r", r, ndim=1, nonneg=True)
    w = as_array("weights", weights)
    if w.ndim == 0 or w.shape[-1] != r.shape[0]:
        raise ValueError(f"weights must have {r.shape[0]} inputs on its last axis, got shape {w.shape}")
    gain = float(check_positive("gain", gain))
    variance = gain * np.sum(r * w**2, axis=-1)
    l4 = l4_norm(w)
    r_norm = lp_norm(r, 2.0)  # scaled: no underflow of r**2 for tiny rates
    envelope = gain * r_norm * l4**2
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_psi = np.where(envelope > 0, np.clip(variance / envelope, 0.0, 1.0), np.nan)
    return VarianceDecomposition(
        variance=variance, envelope=envelope, cos_psi=cos_psi, psi=np.arccos(cos_psi),
        l4=l4, r_norm=np.asarray(r_norm),
    )
