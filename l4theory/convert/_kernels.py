"""Jitted kernels of the spiking simulator (:mod:`l4theory.convert.simulate`).

Three pure kernels, each with a NumPy twin that the tests compare bit for bit:

``encode_block`` / :func:`encode_block_numpy`
    Input spikes for a block of time steps from a counter-based random stream: the
    uniform number of pixel ``p`` of sample ``n`` at step ``t`` is a splitmix64 hash of
    ``(seed, n, t, p)``, so the spikes do not depend on the batch size, the block length
    or the thread count.
``if_scan`` / :func:`if_scan_numpy`
    The integrate-and-fire update over a block of time steps, parallel over neurons
    (chunks of :data:`CHUNK` neurons; 1-D inner loops so that LLVM vectorises them), in
    the project's or Rathi et al.'s semantics.
``conv_events`` / :func:`conv_events_numpy`
    Event-driven convolution of sparse (spike) inputs, channels-last, summing every
    output in a fixed order.

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
    "conv_events",
    "conv_taps",
    "TAPS_MAX",
    "avgpool_nhwc",
    "conv_events_numpy",
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
def if_scan(cur, v, counts, v_th, alpha, hard, rathi=False):
    """Integrate-and-fire update over ``Tc`` steps, in place: ``cur`` becomes the spikes.

    ``rathi=False`` (the project's semantics), for every step ``t`` and neuron ``i``:
    ``x = alpha * v[i] + cur[t, i]``; a spike ``s = (x >= v_th)``; where it fires, soft
    reset ``x - v_th``, hard reset ``0``; ``v[i] = x``.

    ``rathi=True`` (Rathi et al.'s code): the spike comes from the previous membrane,
    ``s = (v[i] > v_th)`` (strict); soft ``v[i] = (alpha * v[i] + cur[t, i]) - v_th * s``,
    hard ``v[i] = (1 - s) * alpha * v[i] + cur[t, i]`` (the reset is applied with the
    update, not leaked).

    In both, ``cur[t, i] = s`` afterwards and ``counts[i] += s``. Overwriting the input
    (one array read and written at the same index) lets LLVM vectorise the update: with a
    separate output array that may alias the input it falls back to scalar code.

    Parameters
    ----------
    cur : numpy.ndarray, float32, shape (Tc, M)
        Input current per step and neuron (``M`` = batch x neurons); overwritten with
        the spikes (0 or 1).
    v : numpy.ndarray, float32, shape (M,)
        Membrane state, updated.
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
            _if_step(cur[t, lo:hi], v[lo:hi], counts[lo:hi], v_th, alpha, hard, rathi)


@_jit
def _if_step(it, vv, cc, v_th, alpha, hard, rathi):
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
                it[i] = s
                cc[i] += s
        else:
            for i in range(n):
                fire = vv[i] > v_th
                x = alpha * vv[i] + it[i]
                vv[i] = x - v_th if fire else x
                s = one if fire else zero
                it[i] = s
                cc[i] += s
    elif hard:
        for i in range(n):
            x = alpha * vv[i] + it[i]
            fire = x >= v_th
            vv[i] = zero if fire else x
            s = one if fire else zero
            it[i] = s
            cc[i] += s
    else:
        for i in range(n):
            x = alpha * vv[i] + it[i]
            fire = x >= v_th
            vv[i] = x - v_th if fire else x
            s = one if fire else zero
            it[i] = s
            cc[i] += s


def if_scan_numpy(cur, v, counts, v_th, alpha, hard, rathi=False) -> None:
    """NumPy twin of :func:`if_scan` (float32, same operation order, in place)."""
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
        cur[t] = s
        counts += s


# --------------------------------------------------------------------------- event conv


@_jit
def _compact(h, r, idx, val, nnz):
    """Nonzero channels of every input pixel of row ``r``, ascending: ``idx``, ``val``, ``nnz``.

    Pixel ``p = iy * W + ix`` gets ``nnz[p]`` entries ``idx[p, :nnz[p]]`` (channels) and
    ``val[p, :nnz[p]]`` (values). Done once per input pixel and reused by the ``kh * kw``
    output pixels it drives (scanning each output's window instead compacts every input
    ``kh * kw`` times). Branchless compaction: no mispredicted branches on random spikes.
    """
    hh, ww, cc = h.shape[1], h.shape[2], h.shape[3]
    for iy in range(hh):
        for ix in range(ww):
            p = iy * ww + ix
            hr = h[r, iy, ix]
            ip = idx[p]
            vp = val[p]
            n = 0
            for c in range(cc):
                v = hr[c]
                ip[n] = c
                vp[n] = v
                n += v != 0.0
            nnz[p] = n


@_jit
def _accumulate(acc, w2, base, idx, vals, n):
    """``acc += vals[e] * w2[base + idx[e]]`` for ``e = 0 .. n-1``, in that order.

    Eight events per pass over ``acc`` (one load and one store of ``acc`` per eight weight
    rows); the additions stay in sequence, ``((a + v0 w0) + v1 w1) + ... + v7 w7``, so the
    result is that of the plain sequential loop, bit for bit (no fast-math: LLVM neither
    reassociates nor contracts to FMA).
    """
    co = acc.shape[0]
    e = 0
    while e + 8 <= n:
        w0, w1 = w2[base + idx[e]], w2[base + idx[e + 1]]
        w2_, w3 = w2[base + idx[e + 2]], w2[base + idx[e + 3]]
        w4, w5 = w2[base + idx[e + 4]], w2[base + idx[e + 5]]
        w6, w7 = w2[base + idx[e + 6]], w2[base + idx[e + 7]]
        v0, v1, v2, v3 = vals[e], vals[e + 1], vals[e + 2], vals[e + 3]
        v4, v5, v6, v7 = vals[e + 4], vals[e + 5], vals[e + 6], vals[e + 7]
        for j in range(co):
            a = ((acc[j] + v0 * w0[j]) + v1 * w1[j]) + v2 * w2_[j]
            a = ((a + v3 * w3[j]) + v4 * w4[j]) + v5 * w5[j]
            acc[j] = (a + v6 * w6[j]) + v7 * w7[j]
        e += 8
    while e < n:
        w0 = w2[base + idx[e]]
        v0 = vals[e]
        for j in range(co):
            acc[j] = acc[j] + v0 * w0[j]
        e += 1


@_pjit
def conv_events(h, wt, bias, stride, pads, out):
    """Event-driven 2-D convolution, channels-last, in place into ``out``.

    Every nonzero input value ``v`` at ``(r, iy, ix, c)`` adds ``v * wt[ky, kx, c, :]``
    (contiguous over output channels) to the output pixels it drives; zeros cost one
    comparison. Per output pixel the events are summed in float32 in the fixed order
    ``(ky, kx, c)`` ascending, starting from 0, and the bias is added last: the result
    does not depend on the thread count and equals :func:`conv_events_numpy` bit for bit.

    Parallel over rows ``r`` (steps x samples). Each row first lists the nonzero channels
    of its input pixels (:func:`_compact`); then, tap by tap ``(ky, kx)``, every output
    pixel adds the events of the input pixel under that tap. Tap-major order keeps one
    tap's weights (``C_in x C_out``) hot in the cache across the row's pixels and gives
    the same per-output order as summing each output pixel's whole window at once, which
    was slower on W3's 64- and 128-channel layers.

    Parameters
    ----------
    h : numpy.ndarray, float32, shape (R, H, W, C_in), C-contiguous
        Input (spikes, pooled spikes or any values; zeros are skipped).
    wt : numpy.ndarray, float32, shape (kh, kw, C_in, C_out), C-contiguous
    bias : numpy.ndarray, float32, shape (C_out,) or (0,) for none
    stride : (int, int)
    pads : (top, left) zero padding (bottom/right follow from ``out``'s shape)
    out : numpy.ndarray, float32, shape (R, H_out, W_out, C_out)
    """
    rr, hh, ww, cc = h.shape
    kh, kw, _, co = wt.shape
    ho, wo = out.shape[1], out.shape[2]
    w2 = wt.reshape(kh * kw * cc, co)
    sh, sw = stride
    pt, pl = pads
    nb = bias.shape[0]
    for r in prange(rr):
        idx = np.empty((hh * ww, cc), np.int32)
        val = np.empty((hh * ww, cc), np.float32)
        nnz = np.empty(hh * ww, np.int64)
        _compact(h, r, idx, val, nnz)
        o = out[r]
        for oy in range(ho):
            for ox in range(wo):
                acc = o[oy, ox]
                for j in range(co):
                    acc[j] = 0.0
        for ky in range(kh):
            for kx in range(kw):
                base = (ky * kw + kx) * cc
                for oy in range(ho):
                    iy = oy * sh + ky - pt
                    if iy < 0 or iy >= hh:
                        continue
                    for ox in range(wo):
                        ix = ox * sw + kx - pl
                        if ix < 0 or ix >= ww:
                            continue
                        p = iy * ww + ix
                        _accumulate(o[oy, ox], w2, base, idx[p], val[p], nnz[p])
        if nb:
            for oy in range(ho):
                for ox in range(wo):
                    acc = o[oy, ox]
                    for j in range(co):
                        acc[j] = acc[j] + bias[j]


#: Largest ``C_in * kh * kw`` for which :func:`conv_taps` replaces :func:`conv_events`.
TAPS_MAX = 32


@_pjit
def conv_taps(h, wt, bias, stride, pads, out):
    """Convolution over every tap of the window, for layers with few inputs per output.

    The same sums as :func:`conv_events`, in the same order (taps ``(ky, kx, c)``
    ascending from 0, bias last), but every tap is added, zeros and padding included:
    a zero input adds a signed zero, which leaves the sum's value unchanged, so the result
    equals :func:`conv_events`'s. With a handful of events per output pixel (first layers:
    1-3 input channels) listing events costs more than it saves; this kernel hoists the
    weight rows of eight taps and sweeps them along an output line (faster than
    :func:`conv_events` on the first layers of W3 and of the Fashion-MNIST VGG: see
    ``python -m benchmarks profile``). Used when ``C_in * kh * kw <= TAPS_MAX``.
    Parallel over rows ``r``; arguments as :func:`conv_events`.
    """
    rr, hh, ww, cc = h.shape
    kh, kw, _, co = wt.shape
    ho, wo = out.shape[1], out.shape[2]
    ntap = kh * kw * cc
    w2 = wt.reshape(ntap, co)
    sh, sw = stride
    pt, pl = pads
    nb = bias.shape[0]
    wp = (wo - 1) * sw + kw  # width of the zero-padded input lines
    tky = np.empty(ntap, np.int64)
    tkx = np.empty(ntap, np.int64)
    tcc = np.empty(ntap, np.int64)
    for t in range(ntap):
        tky[t] = t // (kw * cc)
        tkx[t] = (t // cc) % kw
        tcc[t] = t % cc
    for r in prange(rr):
        hp = np.empty((kh, wp, cc), np.float32)
        for oy in range(ho):
            _taps_line(h, r, oy, sh, sw, pt, pl, hp, w2, tky, tkx, tcc, out[r, oy])
            if nb:
                for ox in range(wo):
                    acc = out[r, oy, ox]
                    for j in range(co):
                        acc[j] = acc[j] + bias[j]


@_jit
def _taps_line(h, r, oy, sh, sw, pt, pl, hp, w2, tky, tkx, tcc, o):
    """One output line ``o`` (W_out, C_out) of :func:`conv_taps`, without bias."""
    hh, ww, cc = h.shape[1], h.shape[2], h.shape[3]
    kh, wp = hp.shape[0], hp.shape[1]
    ntap, co = w2.shape
    wo = o.shape[0]
    for ky in range(kh):  # the kh input lines, zero-padded: hp[ky, x, c]
        iy = oy * sh + ky - pt
        for x in range(wp):
            ix = x - pl
            inside = 0 <= iy < hh and 0 <= ix < ww
            for c in range(cc):
                hp[ky, x, c] = h[r, iy, ix, c] if inside else 0.0
    for ox in range(wo):
        acc = o[ox]
        for j in range(co):
            acc[j] = 0.0
    e = 0
    while e + 8 <= ntap:  # eight taps per pass over the line
        w0, w1, w2_, w3 = w2[e], w2[e + 1], w2[e + 2], w2[e + 3]
        w4, w5, w6, w7 = w2[e + 4], w2[e + 5], w2[e + 6], w2[e + 7]
        a0, b0, c0 = tky[e], tkx[e], tcc[e]
        a1, b1, c1 = tky[e + 1], tkx[e + 1], tcc[e + 1]
        a2, b2, c2 = tky[e + 2], tkx[e + 2], tcc[e + 2]
        a3, b3, c3 = tky[e + 3], tkx[e + 3], tcc[e + 3]
        a4, b4, c4 = tky[e + 4], tkx[e + 4], tcc[e + 4]
        a5, b5, c5 = tky[e + 5], tkx[e + 5], tcc[e + 5]
        a6, b6, c6 = tky[e + 6], tkx[e + 6], tcc[e + 6]
        a7, b7, c7 = tky[e + 7], tkx[e + 7], tcc[e + 7]
        for ox in range(wo):
            x0 = ox * sw
            v0, v1 = hp[a0, x0 + b0, c0], hp[a1, x0 + b1, c1]
            v2, v3 = hp[a2, x0 + b2, c2], hp[a3, x0 + b3, c3]
            v4, v5 = hp[a4, x0 + b4, c4], hp[a5, x0 + b5, c5]
            v6, v7 = hp[a6, x0 + b6, c6], hp[a7, x0 + b7, c7]
            acc = o[ox]
            for j in range(co):
                a = ((acc[j] + v0 * w0[j]) + v1 * w1[j]) + v2 * w2_[j]
                a = ((a + v3 * w3[j]) + v4 * w4[j]) + v5 * w5[j]
                acc[j] = (a + v6 * w6[j]) + v7 * w7[j]
        e += 8
    while e < ntap:
        w0 = w2[e]
        a0, b0, c0 = tky[e], tkx[e], tcc[e]
        for ox in range(wo):
            v0 = hp[a0, ox * sw + b0, c0]
            acc = o[ox]
            for j in range(co):
                acc[j] = acc[j] + v0 * w0[j]
        e += 1


def conv_events_numpy(h, wt, bias, stride, pads, out) -> None:
    """NumPy twin of :func:`conv_events` (same order of float32 additions, bit for bit).

    Loops over ``(ky, kx, c)`` ascending and adds ``v * wt[ky, kx, c]`` to every output
    pixel at once; a zero input adds a signed zero, which leaves a sum unchanged.
    """
    rr, hh, ww, cc = h.shape
    kh, kw, _, co = wt.shape
    ho, wo = out.shape[1], out.shape[2]
    sh, sw = stride
    pt, pl = pads
    hp = np.zeros((rr, max(hh + pt, (ho - 1) * sh + kh), max(ww + pl, (wo - 1) * sw + kw), cc),
                  np.float32)
    hp[:, pt:pt + hh, pl:pl + ww] = h
    out[...] = 0.0
    for ky in range(kh):
        for kx in range(kw):
            win = hp[:, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw, :]
            for c in range(cc):
                out += win[..., c:c + 1] * wt[ky, kx, c]
    if bias.shape[0]:
        out += bias


# --------------------------------------------------------------------------- pooling


@_pjit
def avgpool_nhwc(h, kh, kw, sh, sw, out):
    """Average pooling of channels-last ``h`` (R, H, W, C) into ``out`` (R, Ho, Wo, C).

    Window elements are summed in row-major order, then divided once by ``kh * kw``
    (float32), as in :func:`l4theory.convert.simulate._pool`, bit for bit.
    """
    rr, ho, wo, cc = out.shape
    div = np.float32(kh * kw)
    for job in prange(rr * ho):
        r = job // ho
        oy = job % ho
        for ox in range(wo):
            o = out[r, oy, ox]
            first = h[r, oy * sh, ox * sw]
            for c in range(cc):
                o[c] = first[c]
            for i in range(kh):
                for j in range(kw):
                    if i == 0 and j == 0:
                        continue
                    src = h[r, oy * sh + i, ox * sw + j]
                    for c in range(cc):
                        o[c] = o[c] + src[c]
            for c in range(cc):
                o[c] = o[c] / div
