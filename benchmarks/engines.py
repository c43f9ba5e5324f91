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
from validation.rng import poisson, poisson_ptrs, ptrs_setup, stream_key, u64, uniform
from validation.simulators import _pick, _poly_exp, alias_bits, alias_table


@jit
def _step_input(prob, alias, w, mu, key, ctr):
    """Input current of one time step: Poisson(mu) events, each input picked from the alias table."""
    k, ctr = poisson(mu, key, ctr)
    inc = 0.0
    for _e in range(k):
        inc += w[_pick(prob, alias, uniform(key, ctr))]
        ctr += 1
    return inc, ctr


@jit(parallel=True)
def _w1_stepped(prob, alias, w, total, dt, decay, n_steps, seed, out):
    for tr in prange(out.size):
        key = stream_key(seed, tr)
        ctr = 0
        v = 0.0
        for _ in range(n_steps):
            inc, ctr = _step_input(prob, alias, w, total * dt, key, ctr)
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
            inc, ctr = _step_input(prob, alias, w, total * dt, key, ctr)
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


@jit(parallel=True)
def _w1_packed(thr, w, w_alias, cb, mu, age_table, ab, age_scale, scales, seed, out):
    one = np.uint64(1)
    cs = np.uint64(64 - cb)
    coin_shift = np.uint64(32)
    cmask = (one << np.uint64(32 - cb)) - one
    amask32 = (one << np.uint64(32)) - one
    ash = np.uint64(32 - ab)
    amask = (one << ash) - one
    setup = ptrs_setup(mu)
    for c in prange((out.size + 63) // 64):
        for tr in range(c * 64, min(out.size, c * 64 + 64)):
            key = stream_key(seed, tr)
            k, ctr = poisson_ptrs(mu, setup, key, 0) if mu >= 10.0 else poisson(mu, key, 0)
            nbits = 0
            while (1 << nbits) <= k:
                nbits += 1
            scale = scales[nbits]
            s = 0
            for e in range(k):
                z = u64(key, ctr + e)
                j = z >> cs
                wj = w[j] if ((z >> coin_shift) & cmask) < thr[j] else w_alias[j]
                a = z & amask32
                d = age_table[a >> ash] * _poly_exp(np.float64(a & amask) * age_scale)
                s += int(wj * scale * d)
            out[tr] = s / scale


def w1_packed_numba(rates, weights, tau, t, n_trials, seed):
    """W1 with ONE 64-bit word per event (benchmark only, not the validated sampler).

    Top ``b`` bits: alias column; next ``32 - b`` bits: the coin; low 32 bits: the age
    (``t * a / 2**32``). Resolution: coin ``2**-(32-b)``, age ``t / 2**32``; otherwise as
    ``validation.simulators._free_one_kernel``. Shape (n_trials,).
    """
    rates = np.asarray(rates, float)
    w = np.asarray(weights, float)
    thr, w_keep, w_alias, col_shift = alias_bits(rates, w)
    cb = 64 - col_shift
    thr32 = np.minimum(np.round(thr.astype(float) * 2.0**-32),
                       2.0 ** (32 - cb)).astype(np.uint64)
    c = t / tau
    ab = min(max(1, math.ceil(math.log2(max(c * 256.0, 1.0)))), 20)
    age_tab = np.exp(-np.arange(1 << ab) * (c / (1 << ab)))
    scales = 2.0 ** (62 - math.ceil(math.log2(np.abs(w).max())) - np.arange(64.0))
    out = np.empty(n_trials)
    _w1_packed(thr32, w_keep, w_alias, cb, rates.sum() * t, age_tab, ab, c * 2.0**-32, scales,
               seed, out)
    return out
