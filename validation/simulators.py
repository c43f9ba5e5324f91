"""Monte Carlo simulators: the oracle that checks :mod:`l4theory.theory`.

Three Numba kernels, each behind a thin validated wrapper. None imports
``l4theory.theory``; they share only the input checks.

* :func:`free_membrane` -- exact, event-driven sampling of the leaky free membrane
  ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)`` (each input spike makes ``V`` jump
  by ``w_i``; ``V(0) = 0``) at chosen times. No time step: one Poisson count for all inputs
  (superposition), an alias table picks the input of each event, arrival times are
  uniform, the decay is exact.
* :func:`lif_event` -- exact, event-driven leaky integrate-and-fire neurons with threshold
  and hard or soft reset (no refractoriness), several neurons and many thresholds on one
  input realisation (common random numbers). Spike counts and first-passage times.
* :func:`discrete_run` -- the discrete-time neuron ``V[t] = alpha V[t-1] + I[t]`` with the
  project's four input encoders, optional threshold and reset.

Randomness: trial ``j`` uses the counter-based stream ``stream_key(seed, trial0 + j)``
(:mod:`validation.rng`), so a seed gives bit-identical results on any number of threads,
and a large run can be split into blocks with ``trial0``.
"""

from __future__ import annotations

import math

import numpy as np

from l4theory._checks import as_array, check_alpha, check_int, check_positive, fmt

from .jit import jit, prange
from .rng import exp_neg, exp_table, poisson, poisson_ptrs, ptrs_setup, stream_key, u64, uniform

__all__ = ["ENCODERS", "age_table", "alias_bits", "alias_table", "discrete_run", "free_membrane",
           "lif_event"]

#: Input encoders of :func:`discrete_run` and their kernel codes.
ENCODERS = {"bernoulli": 0, "signed": 1, "poisson": 2, "constant": 3}
_RESETS = {"none": 0, "soft": 1, "hard": 2}


def alias_table(rates) -> tuple[np.ndarray, np.ndarray, float]:
    """Walker/Vose alias table for picking input ``i`` with probability ``rates_i / sum(rates)``.

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Non-negative rates (any unit).

    Returns
    -------
    prob : ndarray, shape (n_in,)
        Acceptance probability of column ``j``.
    alias : ndarray of int64, shape (n_in,)
        Alias of column ``j``.
    total : float
        ``sum(rates)``.

    Notes
    -----
    A pick uses one uniform ``u``: ``x = u n``, ``j = floor(x)``, keep ``j`` if
    ``x - j < prob[j]`` else take ``alias[j]``.
    """
    r = as_array("rates", rates, ndim=1, nonneg=True)
    n = r.size
    if n == 0:
        raise ValueError("rates must have at least one element, got shape (0,)")
    total = float(r.sum())
    prob = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    if total == 0.0:
        return prob, alias, 0.0
    q = r * (n / total)
    small = [i for i in range(n) if q[i] < 1.0]
    large = [i for i in range(n) if q[i] >= 1.0]
    while small and large:
        s = small.pop()
        g = large.pop()
        prob[s] = q[s]
        alias[s] = g
        q[g] = (q[g] + q[s]) - 1.0
        (small if q[g] < 1.0 else large).append(g)
    for i in small + large:  # leftovers are 1 up to round-off
        prob[i] = 1.0
        alias[i] = i
    return prob, alias, total


@jit
def _pick(prob, alias, u):
    x = u * prob.size
    j = int(x)
    if j >= prob.size:
        j = prob.size - 1
    if x - j < prob[j]:
        return j
    return alias[j]


# --------------------------------------------------------------------------------------
# 1. exact free membrane
# --------------------------------------------------------------------------------------
@jit(parallel=True)
def _free_kernel(prob, alias, w, total, tau_inv, times, table, seed, trial0, out):
    n_trials, n_neu, n_times = out.shape
    t_max = times[n_times - 1]
    for tr in prange(n_trials):
        key = stream_key(seed, trial0 + tr)
        k, ctr = poisson(total * t_max, key, 0)
        row = out[tr]
        row[:, :] = 0.0
        for _ in range(k):
            j = _pick(prob, alias, uniform(key, ctr))
            t = uniform(key, ctr + 1) * t_max
            ctr += 2
            r = 0
            while times[r] < t:
                r += 1
            d = exp_neg((times[r] - t) * tau_inv, table)
            for n in range(n_neu):
                row[n, r] += w[n, j] * d
        for r in range(1, n_times):
            g = exp_neg((times[r] - times[r - 1]) * tau_inv, table)
            for n in range(n_neu):
                row[n, r] += row[n, r - 1] * g


_CHUNK = 64  # trials per parallel task


@jit
def _poly_exp(r):
    """``exp(-r)`` for ``0 <= r <= 1/256`` (degree-5 Taylor polynomial, error below 1e-17)."""
    return 1.0 + r * (-1.0 + r * (0.5 + r * (-1.0 / 6.0 + r * (1.0 / 24.0 - r * (1.0 / 120.0)))))


@jit(parallel=True)
def _free_one_kernel(thr, w, w_alias, col_shift, mu, age_table, age_shift, age_scale, scales,
                     seed, trial0, out):
    """Fast path of :func:`free_membrane`: one neuron, one recording time ``t``.

    Event ``e`` uses two 64-bit words. Word ``ctr + 2e`` picks the input: its top bits are
    the column ``j`` of a power-of-two alias table, its low bits the coin (keep ``j`` if
    below ``thr[j]``, else take the alias; ``w_alias = w[alias]``). Word
    ``z = ctr + 2e + 1`` is the event's age ``a = t z / 2**64``, uniform on ``[0, t)``:
    ``exp(-a/tau) = age_table[top bits] * exp(-r)``, ``r = (low bits) t / (tau 2**64) <= 1/256``.
    Jumps are summed as 64-bit integers in units of ``1/scales[b]`` (``b`` = bit length of
    the event count, so the sum cannot overflow): integer addition is associative, so the
    loop vectorises and gives the same bits for any vector width or thread count, and
    without JIT. No float-to-int rounding is shared between events, so the sum is exact to
    ``2**-61`` of the largest jump per event.
    """
    n_trials = out.size
    cs = np.uint64(col_shift)
    cmask = (np.uint64(1) << cs) - np.uint64(1)
    ash = np.uint64(age_shift)
    amask = (np.uint64(1) << ash) - np.uint64(1)
    setup = ptrs_setup(mu)
    for c in prange((n_trials + _CHUNK - 1) // _CHUNK):
        for tr in range(c * _CHUNK, min(n_trials, (c + 1) * _CHUNK)):
            key = stream_key(seed, trial0 + tr)
            if mu >= 10.0:
                k, ctr = poisson_ptrs(mu, setup, key, 0)
            else:
                k, ctr = poisson(mu, key, 0)
            nbits = 0
            while (1 << nbits) <= k:
                nbits += 1
            scale = scales[nbits]
            s = 0
            for e in range(k):
                z = u64(key, ctr + 2 * e)
                j = z >> cs
                wj = w[j] if (z & cmask) < thr[j] else w_alias[j]
                z = u64(key, ctr + 2 * e + 1)
                d = age_table[z >> ash] * _poly_exp(np.float64(z & amask) * age_scale)
                s += int(wj * scale * d)
            out[tr] = s / scale


def alias_bits(rates, weights):
    """Power-of-two alias table with integer coins, for the fast path of :func:`free_membrane`.

    Parameters
    ----------
    rates : ndarray, shape (n_in,)
        Input rates ``>= 0``.
    weights : ndarray, shape (n_in,)
        Jump sizes.

    Returns
    -------
    thr : ndarray of uint64, shape (2**b,)
        Keep column ``j`` when the word's low ``64 - b`` bits are ``< thr[j]``.
    w_keep, w_alias : ndarray, shape (2**b,)
        Weights of column ``j`` and of its alias (0 for the padding columns).
    col_shift : int
        ``64 - b`` (``b >= 1``): the column is ``word >> col_shift``.
    """
    b = max(1, math.ceil(math.log2(rates.size)))
    pad = (1 << b) - rates.size
    prob, alias, _ = alias_table(np.concatenate([rates, np.zeros(pad)]))
    w_keep = np.concatenate([weights, np.zeros(pad)])
    thr = np.minimum(np.round(prob * 2.0 ** (64 - b)), 2.0 ** (64 - b)).astype(np.uint64)
    return thr, w_keep, w_keep[alias], 64 - b


def age_table(c):
    """``exp(-c h / 2**b)`` for ``h < 2**b`` with ``c / 2**b <= 1/256`` (``b >= 1``).

    Returns the table, the shift ``64 - b`` and the scale ``c / 2**64`` of the low bits.
    """
    b = max(1, math.ceil(math.log2(max(c * 256.0, 1.0))))
    return np.exp(-np.arange(1 << b) * (c / (1 << b))), 64 - b, c * 2.0**-64


def _check_seed(seed) -> int:
    seed = check_int("seed", seed, minimum=0)
    if seed >= 2**63:
        raise ValueError(f"seed must be < 2**63, got {seed}")
    return seed


def _rates_weights(rates, weights):
    rates = as_array("rates", rates, ndim=1, nonneg=True)
    w = as_array("weights", weights)
    if w.ndim not in (1, 2) or w.shape[-1] != rates.size:
        raise ValueError(
            f"weights must have shape (n_in,) or (n_neurons, n_in) with n_in = {rates.size} "
            f"(the length of rates), got shape {w.shape}"
        )
    return rates, np.ascontiguousarray(np.atleast_2d(w)), w.ndim == 1


def free_membrane(rates, weights, tau, times, n_trials, seed, *, trial0=0) -> np.ndarray:
    """Exact samples of the free (no threshold) shot-noise membrane potential.

    Model: ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)`` (each input spike makes ``V``
    jump by ``w_i``), ``V(0) = 0``, input ``i`` a Poisson process of rate ``rates_i``. All
    neurons of one trial see the same input spikes.

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Input rates (spikes per unit time), ``>= 0``.
    weights : array_like, shape (n_in,) or (n_neurons, n_in)
        Jump sizes (signed).
    tau : float
        Membrane time constant (same time unit), ``> 0``; ``np.inf`` = no leak.
    times : array_like, shape (n_times,)
        Strictly increasing recording times ``>= 0``.
    n_trials : int
        Number of independent trials.
    seed : int
        Seed of the counter-based streams, ``0 <= seed < 2**63``.
    trial0 : int
        Index of the first trial's stream (to split a large run into blocks).

    Returns
    -------
    ndarray, shape (n_trials, n_times) or (n_trials, n_neurons, n_times)
        ``V`` at ``times`` for each trial (and neuron, when ``weights`` is 2-D).
    """
    rates, w, one = _rates_weights(rates, weights)
    tau = float(check_positive("tau", tau, allow_inf=True))
    times = as_array("times", times, ndim=1, nonneg=True)
    if times.size == 0 or np.any(np.diff(times) <= 0):
        raise ValueError(f"times must be non-empty and strictly increasing, got {fmt(times)}")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    seed = _check_seed(seed)
    trial0 = check_int("trial0", trial0, minimum=0)
    prob, alias, total = alias_table(rates)
    tau_inv = 0.0 if math.isinf(tau) else 1.0 / tau
    c = float(times[0]) * tau_inv
    wmax = float(np.abs(w).max())
    if w.shape[0] == 1 and times.size == 1 and c <= 256.0 and 2.0**-900 < wmax:
        thr, w_keep, w_alias, col_shift = alias_bits(rates, w[0])
        table, age_shift, age_scale = age_table(c)
        scales = 2.0 ** (62 - math.ceil(math.log2(wmax)) - np.arange(64.0))
        out = np.empty(n_trials)
        _free_one_kernel(thr, w_keep, w_alias, col_shift, total * float(times[0]), table,
                         age_shift, age_scale, scales, seed, trial0, out)
        return out[:, None] if one else out[:, None, None]
    gaps = np.diff(np.concatenate([[0.0], times]))
    table = exp_table(float(gaps.max()) * tau_inv)
    out = np.empty((n_trials, w.shape[0], times.size))
    _free_kernel(prob, alias, w, total, tau_inv, times, table, seed, trial0, out)
    return out[:, 0, :] if one else out


# --------------------------------------------------------------------------------------
# 2. exact LIF with threshold and reset
# --------------------------------------------------------------------------------------
@jit(parallel=True)
def _lif_kernel(prob, alias, w, total, tau_inv, thr, t_run, t_warm, hard, v0, seed, trial0,
                counts, fpt):
    n_trials, n_neu, n_thr = counts.shape
    for tr in prange(n_trials):
        key = stream_key(seed, trial0 + tr)
        v = np.full((n_neu, n_thr), v0)
        cnt = counts[tr]
        fp = fpt[tr]
        cnt[:, :] = 0
        fp[:, :] = np.inf
        if total <= 0.0:
            continue
        ctr = 0
        t = 0.0
        while True:
            gap = -math.log(uniform(key, ctr)) / total
            t += gap
            if t > t_run:
                break
            j = _pick(prob, alias, uniform(key, ctr + 1))
            ctr += 2
            d = math.exp(-gap * tau_inv)
            counting = t >= t_warm
            for n in range(n_neu):
                wj = w[n, j]
                for m in range(n_thr):
                    x = v[n, m] * d + wj
                    th = thr[m]
                    if x >= th:
                        if hard:
                            c = 1
                            x = 0.0
                        else:
                            c = int(math.floor(x / th))
                            x -= c * th
                        if counting:
                            cnt[n, m] += c
                        if fp[n, m] == np.inf:
                            fp[n, m] = t
                    v[n, m] = x


def lif_event(rates, weights, tau, thresholds, t_run, n_trials, seed, *, reset="hard",
              t_warmup=0.0, v0=0.0, trial0=0) -> tuple[np.ndarray, np.ndarray]:
    """Exact event-driven LIF neurons with threshold and reset (no refractory period).

    Model: ``dV/dt = -V/tau + sum_i w_i sum_k delta(t - t_ik)`` (jump-``w`` convention),
    ``V(0) = v0``; when ``V >= theta`` after a jump the neuron spikes and resets. Hard reset
    sets ``V = 0``; soft reset subtracts ``theta`` as many times as it was crossed, emitting
    that many spikes (so the soft-reset count of a non-leaky neuron is ``floor(S/theta)``).
    Since ``theta > 0`` and ``V`` relaxes toward 0, a crossing can only happen at an input
    event, which makes this event-driven simulation exact. Every neuron and every threshold
    of one trial sees the same input spikes (common random numbers).

    Parameters
    ----------
    rates : array_like, shape (n_in,)
        Input Poisson rates (per unit time), ``>= 0``.
    weights : array_like, shape (n_in,) or (n_neurons, n_in)
        Jump sizes (signed).
    tau : float
        Membrane time constant, ``> 0``; ``np.inf`` = no leak (integrate-and-fire).
    thresholds : array_like, shape (n_thr,)
        Thresholds ``theta > 0``, each simulated as a separate copy of every neuron.
    t_run : float
        Simulated time, ``> 0``.
    n_trials : int
        Number of independent input realisations.
    seed : int
        Seed of the counter-based streams.
    reset : {"hard", "soft"}
        Reset rule.
    t_warmup : float
        Spikes before this time are not counted (first-passage times are kept).
    v0 : float
        Initial potential (``< min(thresholds)``).
    trial0 : int
        Index of the first trial's stream.

    Returns
    -------
    counts : ndarray of int64, shape (n_trials, n_neurons, n_thr)
        Spikes in ``[t_warmup, t_run]``. The neuron axis is dropped for 1-D ``weights``.
    first_passage : ndarray, shape like ``counts``
        Time of the first spike (``inf`` when none).
    """
    rates, w, one = _rates_weights(rates, weights)
    tau = float(check_positive("tau", tau, allow_inf=True))
    thr = check_positive("thresholds", np.atleast_1d(thresholds))
    if thr.ndim != 1:
        raise ValueError(f"thresholds must be 1-D, got shape {thr.shape}")
    t_run = float(check_positive("t_run", t_run))
    t_warmup = float(as_array("t_warmup", t_warmup, nonneg=True))
    if t_warmup >= t_run:
        raise ValueError(f"t_warmup must be < t_run = {t_run}, got {t_warmup}")
    v0 = float(as_array("v0", v0))
    if v0 >= thr.min():
        raise ValueError(f"v0 must be below every threshold (min {thr.min()}), got {v0}")
    if reset not in ("hard", "soft"):
        raise ValueError(f"reset must be 'hard' or 'soft', got {reset!r}")
    n_trials = check_int("n_trials", n_trials, minimum=1)
    seed = _check_seed(seed)
    trial0 = check_int("trial0", trial0, minimum=0)
    prob, alias, total = alias_table(rates)
    tau_inv = 0.0 if math.isinf(tau) else 1.0 / tau
    counts = np.empty((n_trials, w.shape[0], thr.size), dtype=np.int64)
    fpt = np.empty((n_trials, w.shape[0], thr.size))
    _lif_kernel(prob, alias, w, total, tau_inv, thr, t_run, t_warmup, reset == "hard", v0,
                seed, trial0, counts, fpt)
    if one:
        return counts[:, 0, :], fpt[:, 0, :]
    return counts, fpt


# --------------------------------------------------------------------------------------
# 3. discrete-time stepper
# --------------------------------------------------------------------------------------
@jit(parallel=True)
def _discrete_kernel(x, w, alpha, enc, n_steps, vth, reset, rec, seed, trial0, v_out, counts):
    n_trials, n_neu, n_rec = v_out.shape
    n_in = x.size
    sgn = np.sign(x)
    q = np.minimum(np.abs(x), 1.0)
    for tr in prange(n_trials):
        key = stream_key(seed, trial0 + tr)
        ctr = 0
        v = np.zeros(n_neu)
        cur = np.zeros(n_neu)
        cnt = counts[tr]
        cnt[:] = 0
        r = 0
        for t in range(1, n_steps + 1):
            cur[:] = 0.0
            for i in range(n_in):
                if enc == 0:
                    s = 1.0 if uniform(key, ctr) < q[i] and x[i] > 0.0 else 0.0
                    ctr += 1
                elif enc == 1:
                    s = sgn[i] if uniform(key, ctr) < q[i] else 0.0
                    ctr += 1
                elif enc == 2:
                    kk, ctr = poisson(x[i], key, ctr)
                    s = float(kk)
                else:
                    s = x[i]
                if s != 0.0:
                    for n in range(n_neu):
                        cur[n] += w[n, i] * s
            for n in range(n_neu):
                vn = alpha * v[n] + cur[n]
                if reset != 0 and vn >= vth[n]:
                    cnt[n] += 1
                    vn = 0.0 if reset == 2 else vn - vth[n]
                v[n] = vn
            while r < n_rec and rec[r] == t:
                for n in range(n_neu):
                    v_out[tr, n, r] = v[n]
                r += 1


def discrete_run(x, weights, alpha, encoder, n_steps, n_trials, seed, *, v_th=None,
                 reset="none", record=None, trial0=0) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the discrete-time neuron ``V[t] = alpha V[t-1] + I[t]``, ``V[0] = 0``.

    ``I[t] = sum_i w_i s_i[t]`` with the spike variables ``s_i[t]`` drawn independently
    every step by ``encoder``: ``bernoulli`` (1 with probability ``clip(x, 0, 1)``),
    ``signed`` (``sign(x)`` with probability ``min(|x|, 1)``), ``poisson``
    (``Poisson(x)`` counts, ``x`` = expected count per step), ``constant`` (``x`` every step).
    With a threshold, the neuron fires when ``V[t] >= v_th`` (same step) and at most once per
    step; soft reset subtracts ``v_th``, hard reset sets ``V = 0``.

    Parameters
    ----------
    x : array_like, shape (n_in,)
        Encoder input per input unit (probability, signed intensity, rate per step or current).
    weights : array_like, shape (n_in,) or (n_neurons, n_in)
        Synaptic weights (signed), in threshold units.
    alpha : float
        Leak factor in (0, 1]; 1 = no leak.
    encoder : {"bernoulli", "signed", "poisson", "constant"}
        Input encoder.
    n_steps : int
        Number of steps, ``>= 1``.
    n_trials : int
        Number of independent trials.
    seed : int
        Seed of the counter-based streams.
    v_th : float or array_like, shape (n_neurons,), optional
        Thresholds ``> 0``; required unless ``reset == "none"``.
    reset : {"none", "soft", "hard"}
        Reset rule; ``"none"`` = no threshold (free membrane).
    record : array_like of int, shape (n_rec,), optional
        Strictly increasing steps in ``[1, n_steps]`` at which ``V`` (after any reset) is
        recorded; default ``[n_steps]``.
    trial0 : int
        Index of the first trial's stream.

    Returns
    -------
    v : ndarray, shape (n_trials, n_rec) or (n_trials, n_neurons, n_rec)
        Recorded potentials.
    counts : ndarray of int64, shape (n_trials,) or (n_trials, n_neurons)
        Spike counts over the ``n_steps`` steps.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"encoder must be one of {sorted(ENCODERS)}, got {encoder!r}")
    x = as_array("x", x, ndim=1)
    if encoder == "poisson" and (x < 0).any():
        raise ValueError(f"x must be >= 0 for the poisson encoder, got {fmt(x)}")
    x_w, w, one = _rates_weights(np.abs(x), weights)
    del x_w
    alpha = check_alpha("alpha", alpha)
    n_steps = check_int("n_steps", n_steps, minimum=1)
    n_trials = check_int("n_trials", n_trials, minimum=1)
    seed = _check_seed(seed)
    trial0 = check_int("trial0", trial0, minimum=0)
    if reset not in _RESETS:
        raise ValueError(f"reset must be one of {sorted(_RESETS)}, got {reset!r}")
    if reset == "none":
        vth = np.full(w.shape[0], np.inf)
    else:
        if v_th is None:
            raise ValueError(f"v_th is required with reset={reset!r}")
        vth = np.broadcast_to(check_positive("v_th", v_th), (w.shape[0],)).copy()
    rec = np.array([n_steps] if record is None else record)
    if rec.ndim != 1 or rec.size == 0 or not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"record must be a non-empty 1-D array of ints, got {fmt(rec)}")
    rec = rec.astype(np.int64)
    if rec[0] < 1 or rec[-1] > n_steps or np.any(np.diff(rec) <= 0):
        raise ValueError(
            f"record must be strictly increasing within [1, n_steps={n_steps}], got {fmt(rec)}"
        )
    v_out = np.empty((n_trials, w.shape[0], rec.size))
    counts = np.empty((n_trials, w.shape[0]), dtype=np.int64)
    _discrete_kernel(x, w, alpha, ENCODERS[encoder], n_steps, vth, _RESETS[reset], rec, seed,
                     trial0, v_out, counts)
    if one:
        return v_out[:, 0, :], counts[:, 0]
    return v_out, counts
