"""Jitted kernels of the spiking simulator (:mod:`l4theory.convert.simulate`).

Two small, pure kernels, each with a NumPy twin that the tests compare bit for bit:

``encode_block`` / :func:`encode_block_numpy`
    Input spikes for a block of time steps from a counter-based random stream: the
    uniform number of pixel ``p`` of sample ``n`` at step ``t`` is a splitmix64 hash of
    ``(seed, n, t, p)``, so the spikes do not depend on the batch size, the block length
    or the thread count.
``if_scan`` / :func:`if_scan_numpy`
    The integrate-and-fire update over a block of time steps, parallel over neurons
    (chunks of :data:`CHUNK` neurons; 1-D inner loops so that LLVM vectorises them).

Arithmetic is float32 with strict IEEE semantics (no ``fastmath``): ``v = alpha * v + i``
rounds twice, exactly as the NumPy twin does. With ``NUMBA_DISABLE_JIT=1`` the wrappers in
:mod:`l4theory.convert.simulate` call the NumPy twins instead (the hash's 64-bit products
would otherwise run on NumPy scalars, which warn on wrap-around).
"""

from __future__ import annotations

import math

import numpy as np

from .._jit import DISABLED, jit, prange

__all__ = [
    "CHUNK",
    "DISABLED",
    "ENCODER_CODES",
    "encode_block",
    "encode_block_numpy",
    "if_scan",
    "if_scan_numpy",
    "stream_base_numpy",
]

#: Neurons per parallel work item of :func:`if_scan`.
CHUNK = 4096
#: Integer codes of the encoders inside the kernels.
ENCODER_CODES = {"signed": 0, "bernoulli": 1, "poisson": 2, "constant": 3}

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD1B54A32D192ED03)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 2.0 ** -53

_jit = jit
_pjit = jit(parallel=True)


# --------------------------------------------------------------------------- hashing


@_jit
def _mix(z):
    """splitmix64 step: add the Weyl increment, then the output function (uint64)."""
    z = z + _GAMMA
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = z + _GAMMA
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


def stream_base_numpy(seed: int, samples: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Key of the stream of each (sample, step): ``mix(mix(mix(seed ^ SALT) + n) + t)``.

    Parameters
    ----------
    seed : int
        Seed in ``[0, 2**64)``.
    samples : numpy.ndarray of uint64, shape (B,)
        Global sample indices.
    steps : numpy.ndarray of uint64, shape (Tc,)
        Absolute time steps (0-based).

    Returns
    -------
    numpy.ndarray of uint64, shape (Tc, B)
    """
    with np.errstate(over="ignore"):
        a = _mix_np(np.array([seed], dtype=np.uint64) ^ _SALT)
        b = _mix_np(a + samples.astype(np.uint64))
        return _mix_np(b[None, :] + steps.astype(np.uint64)[:, None])


# --------------------------------------------------------------------------- encoder


@_jit
def _poisson_inv(lam, u):
    """Poisson(lam) count by inversion of the CDF at the uniform ``u`` (exact, small lam)."""
    if lam <= 0.0:
        return 0.0
    p = math.exp(-lam)
    f = p
    k = 0
    while u > f and p > 0.0:
        k += 1
        p = p * lam / k
        f += p
    return float(k)


def _poisson_inv_np(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    lam = lam.astype(np.float64)
    p = np.exp(-lam)
    f = p.copy()
    k = np.zeros(lam.shape)
    active = (u > f) & (p > 0.0) & (lam > 0.0)
    while active.any():
        k[active] += 1.0
        p[active] = p[active] * lam[active] / k[active]
        f[active] += p[active]
        active &= (u > f) & (p > 0.0)
    return np.where(lam > 0.0, k, 0.0)


@_pjit
def encode_block(x, out, seed, samples, t0, code):
    """Encoded input spikes of steps ``t0 .. t0+Tc-1`` (in place into ``out``).

    Parameters
    ----------
    x : numpy.ndarray, float32, shape (B, P)
        Input values per sample and pixel (C-order flattened ``(C, H, W)``).
    out : numpy.ndarray, float32, shape (Tc, B, P)
        Written: ``out[t, b, p]`` is the spike (or count, or current) of pixel ``p`` of
        sample ``samples[b]`` at step ``t0 + t``.
    seed : uint64
    samples : numpy.ndarray of uint64, shape (B,)
        Global sample indices (the stream key; independent of batching).
    t0 : int
        First absolute step of the block.
    code : int
        :data:`ENCODER_CODES` value.
    """
    tc, nb, npix = out.shape
    a = _mix(np.uint64(seed) ^ _SALT)
    for job in prange(tc * nb):
        t = job // nb
        b = job % nb
        key = _mix(_mix(a + samples[b]) + np.uint64(t0 + t))
        xb = x[b]
        ob = out[t, b]
        if code == 3:
            for p in range(npix):
                ob[p] = xb[p]
            continue
        for p in range(npix):
            h = _mix(key + np.uint64(p))
            u = float(h >> _S11) * _TWO_M53
            v = float(xb[p])
            if code == 0:
                q = min(abs(v), 1.0)
                s = 1.0 if u < q else 0.0
                ob[p] = np.float32(s if v >= 0.0 else -s)
            elif code == 1:
                ob[p] = np.float32(1.0 if u < v else 0.0)
            else:
                ob[p] = np.float32(_poisson_inv(v, u))


def encode_block_numpy(x, out, seed, samples, t0, code) -> None:
    """NumPy twin of :func:`encode_block` (same arguments, same words, same spikes)."""
    tc, nb, npix = out.shape
    if code == 3:
        out[...] = x[None]
        return
    keys = stream_base_numpy(seed, samples, np.arange(t0, t0 + tc, dtype=np.uint64))
    with np.errstate(over="ignore"):
        h = _mix_np(keys[:, :, None] + np.arange(npix, dtype=np.uint64)[None, None, :])
    u = (h >> _S11).astype(np.float64) * _TWO_M53
    v = np.broadcast_to(x.astype(np.float64)[None], u.shape)
    if code == 0:
        s = (u < np.minimum(np.abs(v), 1.0)).astype(np.float64)
        out[...] = np.where(v >= 0.0, s, -s)
    elif code == 1:
        out[...] = (u < v).astype(np.float32)
    else:
        out[...] = _poisson_inv_np(v, u)


# --------------------------------------------------------------------------- IF update


@_pjit
def if_scan(cur, v, spk, counts, v_th, alpha, hard, rathi=False):
    """Integrate-and-fire update over ``Tc`` steps, in place.

    ``rathi=False`` (the project's semantics), for every step ``t`` and neuron ``i``:
    ``x = alpha * v[i] + cur[t, i]``; a spike ``s = (x >= v_th)``; where it fires, soft
    reset ``x - v_th``, hard reset ``0``; ``v[i] = x``.

    ``rathi=True`` (Rathi et al.'s code): the spike comes from the previous membrane,
    ``s = (v[i] > v_th)`` (strict); soft ``v[i] = (alpha * v[i] + cur[t, i]) - v_th * s``,
    hard ``v[i] = (1 - s) * alpha * v[i] + cur[t, i]`` (the reset is applied with the
    update, not leaked).

    In both, ``spk[t, i] = s`` and ``counts[i] += s``.

    Parameters
    ----------
    cur : numpy.ndarray, float32, shape (Tc, M)
        Input current per step and neuron (``M`` = batch x neurons).
    v : numpy.ndarray, float32, shape (M,)
        Membrane state, updated.
    spk : numpy.ndarray, float32, shape (Tc, M)
        Spikes written (0 or 1). May be the same array as ``cur``.
    counts : numpy.ndarray, float32, shape (M,)
        Spike counts, incremented.
    v_th : numpy.float32
        Threshold (``> 0``; ``inf`` disables firing).
    alpha : numpy.float32
        Leak factor per step in (0, 1].
    hard : bool
        Hard reset (to 0) instead of soft (subtract ``v_th``).
    rathi : bool
        Rathi et al.'s semantics instead of the project's.
    """
    tc, m = cur.shape
    nch = (m + CHUNK - 1) // CHUNK
    for c in prange(nch):
        lo = c * CHUNK
        hi = min(m, lo + CHUNK)
        for t in range(tc):
            _if_step(cur[t, lo:hi], v[lo:hi], spk[t, lo:hi], counts[lo:hi], v_th, alpha,
                     hard, rathi)


@_jit
def _if_step(it, vv, st, cc, v_th, alpha, hard, rathi):
    """One step of :func:`if_scan` over a chunk of neurons (1-D loops that vectorise)."""
    one = np.float32(1.0)
    zero = np.float32(0.0)
    n = it.shape[0]
    if rathi:
        if hard:
            for i in range(n):
                fire = vv[i] > v_th
                vv[i] = (it[i] if fire else alpha * vv[i] + it[i])
                s = one if fire else zero
                st[i] = s
                cc[i] += s
        else:
            for i in range(n):
                fire = vv[i] > v_th
                x = alpha * vv[i] + it[i]
                vv[i] = x - v_th if fire else x
                s = one if fire else zero
                st[i] = s
                cc[i] += s
    elif hard:
        for i in range(n):
            x = alpha * vv[i] + it[i]
            fire = x >= v_th
            vv[i] = zero if fire else x
            s = one if fire else zero
            st[i] = s
            cc[i] += s
    else:
        for i in range(n):
            x = alpha * vv[i] + it[i]
            fire = x >= v_th
            vv[i] = x - v_th if fire else x
            s = one if fire else zero
            st[i] = s
            cc[i] += s


def if_scan_numpy(cur, v, spk, counts, v_th, alpha, hard, rathi=False) -> None:
    """NumPy twin of :func:`if_scan` (float32, same operation order)."""
    v_th = np.float32(v_th)
    alpha = np.float32(alpha)
    for t in range(cur.shape[0]):
        if rathi:
            fire = v > v_th
            x = alpha * v + cur[t]
            if hard:
                v[...] = np.where(fire, cur[t], x)
            else:
                v[...] = np.where(fire, x - v_th, x)
        else:
            x = alpha * v + cur[t]
            fire = x >= v_th
            v[...] = np.where(fire, np.float32(0.0) if hard else x - v_th, x)
        s = fire.astype(np.float32)
        spk[t] = s
        counts += s
