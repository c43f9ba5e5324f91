"""Benchmark-only engines: time-stepped Numba and vectorised NumPy variants, RNG bound.

The exact engines are the simulators of :mod:`validation.simulators`; these are the
comparison points. Stepped engines use ``V_{k+1} = exp(-dt/tau) V_k + sum_i w_i c_{ik}``
with ``c_{ik}`` the input counts of step ``k`` (superposition: one Poisson(Lambda dt)
count per step, inputs picked from the alias table).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from validation.jit import jit, prange
from validation.rng import poisson, stream_key, uniform
from validation.simulators import _pick, alias_table


@jit(parallel=True)
def _w1_stepped(prob, alias, w, total, dt, decay, n_steps, seed, out):
    for tr in prange(out.size):
        key = stream_key(seed, tr)
        ctr = 0
        v = 0.0
        for _ in range(n_steps):
            k, ctr = poisson(total * dt, key, ctr)
            inc = 0.0
            for _e in range(k):
                inc += w[_pick(prob, alias, uniform(key, ctr))]
                ctr += 1
            v = v * decay + inc
        out[tr] = v


def w1_stepped_numba(rates, weights, tau, t, dt, n_trials, seed):
    """Time-stepped W1 (dt bias included), shape (n_trials,)."""
    prob, alias, total = alias_table(rates)
    out = np.empty(n_trials)
    n_steps = int(round(t / dt))
    _w1_stepped(prob, alias, np.asarray(weights, float), total, dt, math.exp(-dt / tau),
                n_steps, seed, out)
    return out


@numba.njit(parallel=True, fastmath=True, cache=True)  # fastmath: the sum may vectorise
def _rng_bound(n_words, seed, out):
    for tr in prange(out.size):
        key = stream_key(seed, tr)
        s = 0.0
        for c in range(n_words[tr]):
            s += uniform(key, c)
        out[tr] = s


def rng_bound(n_words, seed):
    """Generate and sum ``n_words[j]`` counter-based uniforms for trial ``j`` (the bound)."""
    out = np.empty(n_words.size)
    _rng_bound(n_words, seed, out)
    return out


@jit(parallel=True)
def _w2_stepped(prob, alias, w, total, dt, decay, n_steps, thr, hard, seed, counts):
    n_trials, n_thr = counts.shape
    for tr in prange(n_trials):
        key = stream_key(seed, tr)
        ctr = 0
        v = np.zeros(n_thr)
        for _ in range(n_steps):
            k, ctr = poisson(total * dt, key, ctr)
            inc = 0.0
            for _e in range(k):
                inc += w[_pick(prob, alias, uniform(key, ctr))]
                ctr += 1
            for m in range(n_thr):
                x = v[m] * decay + inc
                if x >= thr[m]:
                    counts[tr, m] += 1
                    x = 0.0 if hard else x - thr[m]
                v[m] = x


def w2_stepped_numba(rates, weights, tau, thresholds, t_run, dt, n_trials, seed, reset):
    """Time-stepped W2 (at most one spike per step), counts shape (n_trials, n_thr)."""
    prob, alias, total = alias_table(rates)
    counts = np.zeros((n_trials, len(thresholds)), dtype=np.int64)
    _w2_stepped(prob, alias, np.asarray(weights, float), total, dt, math.exp(-dt / tau),
                int(round(t_run / dt)), np.asarray(thresholds, float), reset == "hard", seed,
                counts)
    return counts


def w2_stepped_numpy(rates, weights, tau, thresholds, t_run, dt, n_trials, rng, reset):
    """Vectorised NumPy W2: trials x thresholds arrays, Python loop over steps."""
    rates = np.asarray(rates, float)
    cdf = np.cumsum(rates) / rates.sum()
    w = np.asarray(weights, float)
    thr = np.asarray(thresholds, float)[None, :]
    decay = math.exp(-dt / tau)
    v = np.zeros((n_trials, thr.size))
    counts = np.zeros(v.shape, dtype=np.int64)
    lam = rates.sum() * dt
    for _ in range(int(round(t_run / dt))):
        k = rng.poisson(lam, n_trials)
        tot = int(k.sum())
        idx = np.minimum(np.searchsorted(cdf, rng.random(tot)), w.size - 1)
        inc = np.bincount(np.repeat(np.arange(n_trials), k), weights=w[idx], minlength=n_trials)
        v = v * decay + inc[:, None]
        hit = v >= thr
        counts += hit
        v = np.where(hit, 0.0 if reset == "hard" else v - thr, v)
    return counts
