"""Counter-based random numbers for Numba kernels.

Every trial ``j`` of a simulation with seed ``s`` owns the stream key
``key = stream_key(s, j)``; its ``c``-th 64-bit word is ``splitmix64(key + (c + 1) * GAMMA)``
(the splitmix64 output function applied to a Weyl sequence). A word depends only on
``(seed, trial, counter)``, never on which thread ran the trial, so parallel kernels give
bit-identical results for any thread count or chunking.

Functions
---------
stream_key(seed, stream) -> uint64
u64(key, counter) -> uint64
uniform(key, counter) -> float in the open interval (0, 1) (53 random bits)
poisson(mu, key, counter) -> (count, next counter): exact Poisson sampler (inversion for
    ``mu < 10``, Hörmann's PTRS transformed rejection otherwise, as NumPy does)
exp_neg(x, table) -> exp(-x) for ``x >= 0`` from a table and a degree-7 polynomial
    (relative error below 4e-16; ``table = exp_table(xmax)``)

With ``NUMBA_DISABLE_JIT=1`` the 64-bit arithmetic runs on Python integers (masked to
64 bits) so it neither overflows nor warns; both modes give the same words.
"""

from __future__ import annotations

import math

import numpy as np

from .jit import DISABLED, jit

__all__ = ["EXP_STEP", "exp_neg", "exp_table", "poisson", "poisson_ptrs", "ptrs_setup", "stream_key", "u64",
           "uniform"]

_M64 = (1 << 64) - 1
_GAMMA_I = 0x9E3779B97F4A7C15
_C1_I = 0xBF58476D1CE4E5B9
_C2_I = 0x94D049BB133111EB
_SALT_I = 0xD1B54A32D192ED03

#: Spacing of the exp table: exp(-x) = table[floor(x/EXP_STEP)] * poly(remainder).
EXP_STEP = 1.0 / 64.0

if DISABLED:  # pragma: no cover - exercised by the NUMBA_DISABLE_JIT test run

    def _mix(z):
        z = int(z) & _M64
        z = ((z ^ (z >> 30)) * _C1_I) & _M64
        z = ((z ^ (z >> 27)) * _C2_I) & _M64
        return z ^ (z >> 31)

    def stream_key(seed, stream):
        """Key of stream ``stream`` (a trial index) under ``seed``."""
        return _mix(_mix(int(seed) + _SALT_I) ^ ((int(stream) * _GAMMA_I) & _M64))

    def u64(key, counter):
        """The ``counter``-th 64-bit word of the stream ``key``."""
        return _mix((int(key) + (int(counter) + 1) * _GAMMA_I) & _M64)

    def uniform(key, counter):
        """The ``counter``-th uniform in (0, 1) of the stream ``key``."""
        return ((u64(key, counter) >> 11) + 0.5) * (1.0 / 9007199254740992.0)

else:
    _GAMMA = np.uint64(_GAMMA_I)
    _C1 = np.uint64(_C1_I)
    _C2 = np.uint64(_C2_I)
    _SALT = np.uint64(_SALT_I)
    _S30 = np.uint64(30)
    _S27 = np.uint64(27)
    _S31 = np.uint64(31)
    _S11 = np.uint64(11)
    _ONE = np.uint64(1)

    @jit
    def _mix(z):
        z = (z ^ (z >> _S30)) * _C1
        z = (z ^ (z >> _S27)) * _C2
        return z ^ (z >> _S31)

    @jit
    def stream_key(seed, stream):
        """Key of stream ``stream`` (a trial index) under ``seed``."""
        return _mix(_mix(np.uint64(seed) + _SALT) ^ (np.uint64(stream) * _GAMMA))

    @jit
    def u64(key, counter):
        """The ``counter``-th 64-bit word of the stream ``key``."""
        return _mix(np.uint64(key) + (np.uint64(counter) + _ONE) * _GAMMA)

    @jit
    def uniform(key, counter):
        """The ``counter``-th uniform in (0, 1) of the stream ``key``."""
        return (np.float64(u64(key, counter) >> _S11) + 0.5) * (1.0 / 9007199254740992.0)


@jit
def poisson(mu, key, counter):
    """Exact Poisson(mu) draw from the stream; returns ``(count, next_counter)``."""
    if mu <= 0.0:
        return 0, counter
    if mu < 10.0:
        u = uniform(key, counter)
        counter += 1
        p = math.exp(-mu)
        k = 0
        while u > p:
            u -= p
            k += 1
            p *= mu / k
            if p == 0.0:  # float round-off in the far tail: restart with a fresh uniform
                u = uniform(key, counter)
                counter += 1
                p = math.exp(-mu)
                k = 0
        return k, counter
    return poisson_ptrs(mu, ptrs_setup(mu), key, counter)


@jit
def ptrs_setup(mu):
    """Constants of the PTRS sampler for ``mu >= 10`` (hoist them out of a trial loop)."""
    mu = max(mu, 10.0)
    slam = math.sqrt(mu)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    return math.log(mu), a, b, math.log(invalpha), vr


@jit
def poisson_ptrs(mu, setup, key, counter):
    """Poisson(mu) draw for ``mu >= 10`` (Hörmann's PTRS) with ``setup = ptrs_setup(mu)``."""
    loglam, a, b, log_invalpha, vr = setup
    while True:
        uu = uniform(key, counter) - 0.5
        v = uniform(key, counter + 1)
        counter += 2
        us = 0.5 - abs(uu)
        k = math.floor((2.0 * a / us + b) * uu + mu + 0.43)
        if us >= 0.07 and v <= vr:
            return int(k), counter
        if k < 0 or (us < 0.013 and v > us):
            continue
        lhs = math.log(v) + log_invalpha - math.log(a / (us * us) + b)
        if lhs <= -mu + k * loglam - math.lgamma(k + 1.0):
            return int(k), counter


def exp_table(xmax: float) -> np.ndarray:
    """Table of ``exp(-k * EXP_STEP)`` covering ``0 <= x <= xmax`` for :func:`exp_neg`.

    Parameters
    ----------
    xmax : float
        Largest argument that will be passed (values above 745 give 0 anyway).

    Returns
    -------
    ndarray, shape (m,)
        The table (at most about 48,000 entries).
    """
    top = min(max(float(xmax), 0.0), 750.0)
    m = int(math.ceil(top / EXP_STEP)) + 2
    return np.exp(-np.arange(m) * EXP_STEP)


@jit
def exp_neg(x, table):
    """``exp(-x)`` for ``0 <= x``, using ``table = exp_table(xmax)`` with ``x <= xmax``."""
    j = int(x * 64.0)
    if j >= table.size - 1:
        return 0.0 if x > 745.0 else math.exp(-x)
    r = x - j * EXP_STEP
    p = 1.0 + r * (-1.0 + r * (0.5 + r * (-1.0 / 6.0 + r * (1.0 / 24.0 + r * (
        -1.0 / 120.0 + r * (1.0 / 720.0 - r * (1.0 / 5040.0)))))))
    return table[j] * p
