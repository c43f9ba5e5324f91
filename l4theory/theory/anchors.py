"""Closed-form anchors for the shot-noise law, and the theory-vs-exact check table.

These are independent of the characteristic-function inversion in
:class:`~l4theory.theory.ShotNoise` and serve as its exact reference.

* **Generalised Dickman law.** For one input (rate ``lam``, weight ``w > 0``) the stationary
  ``V/w`` is the sum of the points of a Poisson process with intensity ``theta/u`` on
  ``(0, 1)``, ``theta = lam tau`` (the arrival times mapped through ``u = exp(-s/tau)``):
  the generalised Dickman law, with ``P(V/w <= y) = exp(-gamma theta) y**theta / Gamma(theta + 1)``
  for ``0 <= y <= 1``.
* **First interval at finite t.** With ``a = exp(-t/tau)`` every spike contributes at least
  ``w a``, so for ``w a <= x < min(2 w a, w)`` only zero or one spike can have arrived:
  ``P(V <= x) = exp(-lam t) (1 + lam tau ln(x / (w a)))``.

``python -m l4theory.theory.anchors`` prints the check table used by ``make reproduce``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from .._checks import as_array, check_positive

__all__ = ["dickman_cdf", "first_interval_cdf", "check_table"]


def dickman_cdf(y: ArrayLike, theta: float) -> np.ndarray:
    """CDF of the generalised Dickman law on its first interval ``0 <= y <= 1``.

    Parameters
    ----------
    y : array_like
        Points in [0, 1] (``V / w``, dimensionless).
    theta : float
        Parameter ``lam * tau`` (> 0).

    Returns
    -------
    numpy.ndarray
        ``exp(-gamma theta) y**theta / Gamma(theta + 1)``.
    """
    y = as_array("y", y, nonneg=True)
    if (y > 1).any():
        raise ValueError(f"y must lie in [0, 1] (the first interval), got max {y.max()}")
    theta = float(check_positive("theta", theta))
    return np.exp(-np.euler_gamma * theta) * y**theta / special.gamma(theta + 1.0)


def first_interval_cdf(x: ArrayLike, rate: float, weight: float, tau: float, t: float) -> np.ndarray:
    """Exact ``P(V(t) <= x)`` for one input while at most one spike can lie below ``x``.

    Parameters
    ----------
    x : array_like
        Membrane values in ``[w a, min(2 w a, w))`` with ``a = exp(-t/tau)`` (units of V).
    rate, weight, tau, t : float
        Input rate (> 0), weight (> 0), time constant (> 0, finite), time (> 0, finite).

    Returns
    -------
    numpy.ndarray
        ``exp(-rate t) (1 + rate tau ln(x / (w a)))``.
    """
    x = as_array("x", x)
    rate, weight = float(check_positive("rate", rate)), float(check_positive("weight", weight))
    tau, t = float(check_positive("tau", tau)), float(check_positive("t", t))
    a = np.exp(-t / tau)
    lo, hi = weight * a, min(2 * weight * a, weight)
    if ((x < lo) | (x >= hi)).any():
        raise ValueError(f"x must lie in [{lo:.6g}, {hi:.6g}) for this formula, got {x}")
    return np.exp(-rate * t) * (1.0 + rate * tau * np.log(x / lo))


def check_table(rng: object = 0) -> list[tuple[str, float, float, float, float, bool]]:
    """Rows ``(name, computed, exact, abs. error, tolerance, ok)`` of theory-vs-exact checks.

    The paper's Fig. 1 moments, ``ShotNoise.cdf`` against the generalised Dickman law and
    the first-interval formula, and the mirrored law of a negative weight; what
    ``python -m l4theory.theory.anchors`` prints.

    Parameters
    ----------
    rng : object, optional
        Not used: every check is deterministic. Accepted so that older callers that pass
        a seed keep working.

    Returns
    -------
    list of tuple
        One ``(name, computed, exact, abs_error, tolerance, ok)`` per check (``ok`` a bool).
    """
    from .continuous import poisson_mean, poisson_var
    from .shot_noise import ShotNoise

    rows = []
    # The paper's Fig. 1 example: equal mean, variances 2:1.
    for lam, w in ((1.0, 2.0), (2.0, 1.0)):
        rows.append((f"Fig. 1 mean, lambda={lam}, w={w}", float(poisson_mean([lam], [w], 1.0)), 2.0, 1e-15))
    rows.append(("Fig. 1 variance, lambda=1, w=2", float(poisson_var([1.0], [2.0], 1.0)), 2.0, 1e-15))
    rows.append(("Fig. 1 variance, lambda=2, w=1", float(poisson_var([2.0], [1.0], 1.0)), 1.0, 1e-15))
    for theta in (0.5, 1.0, 2.0):
        ys = np.array([0.25, 0.5, 1.0])
        sn = ShotNoise([theta], [1.5], 1.0)
        err = np.abs(sn.cdf(1.5 * ys) - dickman_cdf(ys, theta)).max()
        rows.append((f"ShotNoise.cdf vs Dickman, theta={theta}", err, 0.0, 1e-6))
    sn = ShotNoise([1.5], [2.0], 1.0, 1.0)
    xs = 2.0 * np.exp(-1.0) * np.array([1.1, 1.5, 1.9])
    err = np.abs(sn.cdf(xs) - first_interval_cdf(xs, 1.5, 2.0, 1.0, 1.0)).max()
    rows.append(("ShotNoise.cdf vs first interval, t=tau", err, 0.0, 1e-6))
    neg = ShotNoise([1.0], [-2.0], 1.0)
    err = np.abs(neg.sf(-2.0 * np.array([0.3, 0.8])) - dickman_cdf([0.3, 0.8], 1.0)).max()
    rows.append(("ShotNoise.sf, negative weight (mirror of Dickman)", err, 0.0, 1e-6))
    out = []
    for name, got, exact, tol in rows:
        err = abs(got - exact)
        out.append((name, got, exact, err, tol, bool(err <= tol)))
    return out


def main() -> int:
    """Print the check table; exit status 1 if any check fails."""
    rows = check_table()
    print("| check | computed | exact | abs. error | tolerance | ok |")
    print("|---|---|---|---|---|---|")
    for name, got, exact, err, tol, ok in rows:
        print(f"| {name} | {got:.10g} | {exact:.10g} | {err:.1e} | {tol:.0e} | {'yes' if ok else 'NO'} |")
    failed = sum(not r[-1] for r in rows)
    print(f"\n{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
