"""Estimators with standard errors, and the pass rule of the validation studies.

Cumulants are estimated with unbiased k-statistics on ``B`` equal batches of trials; the
estimate is the batch mean and its standard error the batch standard deviation over
``sqrt(B)``, so ``z = (mc - theory) / se`` follows Student's t with ``B - 1`` degrees of
freedom under the null. A study with ``m`` checks passes a check when ``|z|`` is below the
two-sided t quantile at level ``FAMILY_ALPHA / m`` (Bonferroni), so the chance that a
correct theory fails any check of the run is below ``FAMILY_ALPHA``.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _st

__all__ = ["FAMILY_ALPHA", "batch_cumulants", "critical_z", "k_statistics", "mean_se"]

#: Family-wise false-failure probability of one study run.
FAMILY_ALPHA = 1e-3


def k_statistics(x, axis=0):
    """Unbiased k-statistics ``k1..k4`` of samples along ``axis``.

    Parameters
    ----------
    x : array_like
        Samples.
    axis : int
        Sample axis (length ``n >= 4``).

    Returns
    -------
    ndarray, shape (4, ...)
        ``k1, k2, k3, k4``.
    """
    x = np.moveaxis(np.asarray(x, float), axis, 0)
    n = x.shape[0]
    d = x - x.mean(0)
    m2, m3, m4 = (d**2).mean(0), (d**3).mean(0), (d**4).mean(0)
    k2 = n / (n - 1) * m2
    k3 = n**2 / ((n - 1) * (n - 2)) * m3
    k4 = n**2 * ((n + 1) * m4 - 3 * (n - 1) * m2**2) / ((n - 1) * (n - 2) * (n - 3))
    return np.stack([x.mean(0), k2, k3, k4])


def mean_se(values, axis=0):
    """Mean and standard error (``std(ddof=1)/sqrt(n)``) along ``axis``."""
    v = np.asarray(values, float)
    n = v.shape[axis]
    return v.mean(axis), v.std(axis, ddof=1) / np.sqrt(n)


def batch_cumulants(batches):
    """Batch-mean k-statistics: ``batches`` shape (B, n_per_batch, ...) -> (est, se), (4, ...)."""
    k = np.stack([k_statistics(b) for b in batches])  # (B, 4, ...)
    return mean_se(k, axis=0)


def critical_z(n_checks, df=np.inf, family_alpha=FAMILY_ALPHA):
    """Two-sided Bonferroni critical value for ``n_checks`` checks (Student t, ``df``)."""
    a = family_alpha / max(int(n_checks), 1)
    if np.isinf(df):
        return float(_st.norm.isf(a / 2))
    return float(_st.t.isf(a / 2, df))
