"""The statistics of every comparison: paired confidence intervals, power, recovered fraction.

The unit of replication is the image: an image's correctness is averaged over the input
spike seeds, and a comparison of two series is the mean of the per-image differences with
a two-sided t interval (:func:`mean_ci`). Its power against an effect and its minimum
detectable effect use the same standard error (:func:`power_of`, :func:`mde`). The
fraction of the conversion gap a method recovers, ``mean(arm - base) / mean(ann - base)``,
gets Fieller's interval for a ratio of paired means (:func:`recovered_fraction`), which
uses every image and is unbounded when the gap itself is not resolved -- unlike a
bootstrap that drops the resamples with a non-positive gap.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["compare", "mde", "mean_ci", "power_of", "recovered_fraction"]


def mean_ci(values, level: float = 0.95) -> dict:
    """Mean and two-sided t confidence interval of the mean of ``values`` (shape (n,)).

    Parameters
    ----------
    values : array_like, shape (n,)
        The samples (flattened; ``n >= 2``), e.g. per-image accuracies (fractions).
    level : float
        Confidence level in (0, 1).

    Returns
    -------
    dict
        ``mean``, ``lo``, ``hi``, ``half_width``, ``sd``, ``n`` (plain floats / int).
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        raise ValueError(f"a confidence interval needs at least 2 values, got {v.size}")
    m = float(v.mean())
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * sd / math.sqrt(v.size))
    return {"mean": m, "lo": m - half, "hi": m + half, "half_width": half, "sd": sd,
            "n": int(v.size)}


def power_of(ci: dict, effect: float = 0.003) -> float:
    """Power of the two-sided 5% z test of a paired difference against ``effect``.

    Parameters
    ----------
    ci : dict
        A :func:`mean_ci` of per-image differences (``sd`` and ``n`` are used:
        ``se = sd / sqrt(n)``).
    effect : float
        The true difference (fraction; 0.003 = 0.3 points).

    Returns
    -------
    float
        ``Phi(effect / se - 1.96)`` (1 when ``se`` is 0).
    """
    from scipy import stats

    se = ci["sd"] / math.sqrt(ci["n"])
    z = stats.norm.ppf(0.975)
    return float(stats.norm.cdf(effect / se - z)) if se > 0 else 1.0


def mde(ci: dict, power: float = 0.8) -> float:
    """Smallest difference the two-sided 5% z test detects with ``power`` (``ci``'s se).

    Parameters
    ----------
    ci : dict
        A :func:`mean_ci` of per-image differences (``sd`` and ``n`` are used:
        ``se = sd / sqrt(n)``).
    power : float
        Power in (0, 1).

    Returns
    -------
    float
        ``(z_{0.975} + z_power) * se``, in the units of the differences (fractions).
    """
    from scipy import stats

    if not 0 < power < 1:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    se = ci["sd"] / math.sqrt(ci["n"])
    return float((stats.norm.ppf(0.975) + stats.norm.ppf(power)) * se)


def recovered_fraction(ann, base, arm, level: float = 0.95) -> dict:
    """Fraction of the conversion gap an arm recovers, with Fieller's interval.

    With per-image ``d_i = arm_i - base_i`` and ``g_i = ann_i - base_i`` (correctness
    averaged over seeds), the estimate is ``theta = mean(d) / mean(g)``; the interval is
    every ``theta`` that a two-sided t test of ``mean(d - theta g) = 0`` does not reject
    (Fieller 1954), which uses every image. It is bounded only when the gap is resolved
    (``mean(g)^2 > t^2 var(g) / n``); otherwise ``lo``/``hi`` are None and ``bounded``
    is False.

    Parameters
    ----------
    ann : array_like, shape (n,)
        ANN correctness per image.
    base, arm : array_like, shape (n_seeds, n) or (n,)
        Correctness of the baseline and the arm (averaged over the seeds axis).
    level : float
        Confidence level.

    Returns
    -------
    dict
        ``mean`` (NaN when the mean gap is not positive), ``lo``, ``hi`` (None when
        unbounded), ``bounded``, ``method`` ("fieller").
    """
    from scipy import stats

    ann = np.asarray(ann, np.float64).ravel()
    b = np.asarray(base, np.float64)
    a = np.asarray(arm, np.float64)
    b = b.mean(axis=0) if b.ndim == 2 else b
    a = a.mean(axis=0) if a.ndim == 2 else a
    if not (ann.shape == b.shape == a.shape) or ann.size < 2:
        raise ValueError(f"ann, base and arm must cover the same >= 2 images, got shapes "
                         f"{ann.shape}, {b.shape}, {a.shape}")
    d, g = a - b, ann - b
    n = d.size
    md, mg = float(d.mean()), float(g.mean())
    cov = np.cov(np.vstack([d, g]), ddof=1) / n  # variances of the two means
    vdd, vdg, vgg = float(cov[0, 0]), float(cov[0, 1]), float(cov[1, 1])
    t2 = float(stats.t.ppf(0.5 + level / 2, n - 1)) ** 2
    point = md / mg if mg > 0 else float("nan")
    # (md - theta mg)^2 <= t2 (vdd - 2 theta vdg + theta^2 vgg): A theta^2 - 2 B theta + C <= 0
    qa, qb, qc = mg * mg - t2 * vgg, md * mg - t2 * vdg, md * md - t2 * vdd
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:
        return {"mean": point, "lo": None, "hi": None, "bounded": False, "method": "fieller"}
    r = math.sqrt(disc)
    return {"mean": point, "lo": (qb - r) / qa, "hi": (qb + r) / qa, "bounded": True,
            "method": "fieller"}


def compare(ann, base, arm) -> dict:
    """An arm against the baseline on the same images and seeds (common random numbers).

    Parameters
    ----------
    ann : array_like, shape (n,)
    base, arm : array_like, shape (n_seeds, n)
        Per-seed, per-image correctness.

    Returns
    -------
    dict
        ``arm`` (:func:`mean_ci` of its seed-averaged accuracy), ``difference`` (of the
        per-image difference arm - base), ``recovered`` (:func:`recovered_fraction`),
        ``discordant`` (fraction of (seed, image) pairs where the two disagree).
    """
    base, arm = np.asarray(base), np.asarray(arm)
    d = arm.mean(axis=0) - base.mean(axis=0)
    return {"arm": mean_ci(arm.mean(axis=0)), "difference": mean_ci(d),
            "recovered": recovered_fraction(ann, base, arm),
            "discordant": float((arm != base).mean())}
