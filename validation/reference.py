"""Slow NumPy twins of the Numba kernels (used by the tests and the benchmarks).

Two kinds of twin:

* *same-stream* twins (``*_twin``) re-implement the counter-based generator with NumPy
  ``uint64`` arrays (independently of :mod:`validation.rng`) and follow the kernels' draw
  order, so they must reproduce the kernels' output to round-off (the kernels use a
  table-based ``exp``; NumPy's is libm's);
* *independent* versions (``*_numpy``) use a different algorithm and a
  :class:`numpy.random.Generator`; they agree with the kernels only in distribution.
"""

from __future__ import annotations

import math

import numpy as np

from l4theory._checks import as_rng

__all__ = [
    "discrete_twin",
    "free_membrane_numpy",
    "free_membrane_twin",
    "lif_event_twin",
    "free_membrane_one_twin",
    "snn_step_reference",
    "conv_events_reference",
    "encode",
    "if_forward",
    "uniforms",
    "words",
]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_SALT = np.uint64(0xD1B54A32D192ED03)


def _mix(z):
    z = np.asarray(z, dtype=np.uint64)
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def _key(seed, trial):
    s = np.array([seed], dtype=np.uint64) + _SALT
    t = np.array([trial], dtype=np.uint64) * _GAMMA
    return _mix(_mix(s) ^ t)[0]


def uniforms(seed, trial, counters):
    """Uniforms in (0, 1) of trial ``trial``'s stream at the given counters (vectorised)."""
    c = np.asarray(counters, dtype=np.uint64)
    k = np.full(c.shape, _key(seed, trial), dtype=np.uint64)
    z = _mix(k + (c + np.uint64(1)) * _GAMMA)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


class _Stream:
    def __init__(self, seed, trial):
        self.seed, self.trial, self.ctr = seed, trial, 0

    def take(self, n):
        u = uniforms(self.seed, self.trial, np.arange(self.ctr, self.ctr + n))
        self.ctr += n
        return u

    def poisson(self, mu):
        if mu <= 0:
            return 0
        if mu < 10:
            u = self.take(1)[0]
            p = math.exp(-mu)
            k = 0
            while u > p:
                u -= p
                k += 1
                p *= mu / k
                if p == 0.0:
                    u, p, k = self.take(1)[0], math.exp(-mu), 0
            return k
        slam, loglam = math.sqrt(mu), math.log(mu)
        b = 0.931 + 2.53 * slam
        a = -0.059 + 0.02483 * b
        invalpha = 1.1239 + 1.1328 / (b - 3.4)
        vr = 0.9277 - 3.6224 / (b - 2.0)
        while True:
            uu, v = self.take(2)
            uu -= 0.5
            us = 0.5 - abs(uu)
            k = math.floor((2 * a / us + b) * uu + mu + 0.43)
            if us >= 0.07 and v <= vr:
                return k
            if k < 0 or (us < 0.013 and v > us):
                continue
            if (math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b)
                    <= -mu + k * loglam - math.lgamma(k + 1)):
                return k


def _pick(prob, alias, u):
    x = u * prob.size
    j = np.minimum(x.astype(np.int64), prob.size - 1)
    return np.where(x - j < prob[j], j, alias[j])


def free_membrane_twin(prob, alias, total, weights, tau, times, n_trials, seed, trial0=0):
    """Same-stream twin of :func:`validation.simulators.free_membrane` (2-D weights)."""
    w = np.atleast_2d(weights)
    times = np.asarray(times, float)
    tau_inv = 0.0 if np.isinf(tau) else 1.0 / tau
    out = np.zeros((n_trials, w.shape[0], times.size))
    for tr in range(n_trials):
        s = _Stream(seed, trial0 + tr)
        k = s.poisson(total * times[-1])
        u = s.take(2 * k)
        j = _pick(prob, alias, u[0::2])
        t = u[1::2] * times[-1]
        r = np.searchsorted(times, t, side="left")
        d = np.exp(-(times[r] - t) * tau_inv)
        for n in range(w.shape[0]):
            np.add.at(out[tr, n], r, w[n, j] * d)
            for q in range(1, times.size):
                out[tr, n, q] += out[tr, n, q - 1] * math.exp(-(times[q] - times[q - 1]) * tau_inv)
    return out


def words(seed, trial, counters):
    """Raw 64-bit words of trial ``trial``'s stream at the given counters (vectorised)."""
    c = np.asarray(counters, dtype=np.uint64)
    return _mix(np.uint64(_key(seed, trial)) + (c + np.uint64(1)) * _GAMMA)


def free_membrane_one_twin(thr, w_keep, w_alias, col_shift, total, tau, t, n_trials, seed,
                           trial0=0):
    """Same-stream twin of the one-neuron, one-time fast path of ``free_membrane``.

    ``thr, w_keep, w_alias, col_shift`` as returned by
    :func:`validation.simulators.alias_bits`; returns shape (n_trials,).
    """
    tau_inv = 0.0 if np.isinf(tau) else 1.0 / tau
    cs = np.uint64(col_shift)
    out = np.zeros(n_trials)
    for tr in range(n_trials):
        s = _Stream(seed, trial0 + tr)
        k = s.poisson(total * t)
        z = words(seed, trial0 + tr, np.arange(s.ctr, s.ctr + 2 * k))
        pick, age = z[0::2], z[1::2]
        j = (pick >> cs).astype(np.int64)
        keep = (pick & ((np.uint64(1) << cs) - np.uint64(1))) < thr[j]
        wj = np.where(keep, w_keep[j], w_alias[j])
        out[tr] = np.sum(wj * np.exp(-t * tau_inv * (age.astype(np.float64) * 2.0**-64)))
    return out


def free_membrane_numpy(rates, weights, tau, t, n_trials, rng=None, chunk=20_000):
    """Independent exact sampler of ``V(t)``: per-input Poisson counts, uniform times.

    Vectorised NumPy (the "best NumPy" baseline of benchmark W1). ``weights`` shape (n_in,);
    returns shape (n_trials,).
    """
    rng = as_rng(rng)
    rates = np.asarray(rates, float)
    w = np.asarray(weights, float)
    out = np.empty(n_trials)
    for a in range(0, n_trials, chunk):
        m = min(chunk, n_trials - a)
        counts = rng.poisson(rates * t, size=(m, rates.size))
        flat = counts.ravel()
        col = np.repeat(np.tile(np.arange(rates.size), m), flat)
        row = np.repeat(np.arange(m), counts.sum(1))
        ages = rng.random(col.size) * t
        decay = np.exp(-ages / tau) if np.isfinite(tau) else np.ones(col.size)
        out[a:a + m] = np.bincount(row, weights=w[col] * decay, minlength=m)
    return out


def lif_event_twin(prob, alias, total, weights, tau, thresholds, t_run, n_trials, seed, *,
                   hard=True, t_warmup=0.0, v0=0.0, trial0=0):
    """Same-stream, pure-Python twin of :func:`validation.simulators.lif_event` (2-D weights)."""
    w = np.atleast_2d(weights)
    thr = np.asarray(thresholds, float)
    tau_inv = 0.0 if np.isinf(tau) else 1.0 / tau
    counts = np.zeros((n_trials, w.shape[0], thr.size), dtype=np.int64)
    fpt = np.full((n_trials, w.shape[0], thr.size), np.inf)
    for tr in range(n_trials):
        s = _Stream(seed, trial0 + tr)
        v = np.full((w.shape[0], thr.size), float(v0))
        t = 0.0
        while total > 0:
            u1, u2 = s.take(2)
            gap = -math.log(u1) / total
            t += gap
            if t > t_run:
                break
            j = int(_pick(prob, alias, np.array([u2]))[0])
            x = v * math.exp(-gap * tau_inv) + w[:, j:j + 1]
            hit = x >= thr
            if hard:
                c = hit.astype(np.int64)
                x = np.where(hit, 0.0, x)
            else:
                c = np.where(hit, np.floor(x / thr), 0).astype(np.int64)
                x = x - c * thr
            if t >= t_warmup:
                counts[tr] += c
            fpt[tr] = np.where(hit & np.isinf(fpt[tr]), t, fpt[tr])
            v = x
    return counts, fpt


def discrete_twin(x, weights, alpha, encoder, n_steps, n_trials, seed, *, v_th=np.inf,
                  reset="none", record=None, trial0=0):
    """Same-stream, pure-Python twin of :func:`validation.simulators.discrete_run` (2-D)."""
    x = np.asarray(x, float)
    w = np.atleast_2d(weights)
    rec = [n_steps] if record is None else list(record)
    vth = np.broadcast_to(np.asarray(v_th, float), (w.shape[0],))
    v_out = np.zeros((n_trials, w.shape[0], len(rec)))
    counts = np.zeros((n_trials, w.shape[0]), dtype=np.int64)
    q = np.minimum(np.abs(x), 1.0)
    for tr in range(n_trials):
        s = _Stream(seed, trial0 + tr)
        v = np.zeros(w.shape[0])
        for t in range(1, n_steps + 1):
            cur = np.zeros(w.shape[0])
            for i in range(x.size):
                if encoder == "bernoulli":
                    si = 1.0 if (s.take(1)[0] < q[i] and x[i] > 0) else 0.0
                elif encoder == "signed":
                    si = float(np.sign(x[i])) if s.take(1)[0] < q[i] else 0.0
                elif encoder == "poisson":
                    si = float(s.poisson(x[i]))
                else:
                    si = x[i]
                cur += w[:, i] * si
            v = alpha * v + cur
            if reset != "none":
                hit = v >= vth
                counts[tr] += hit
                v = np.where(hit, 0.0 if reset == "hard" else v - vth, v)
            if t in rec:
                v_out[tr, :, rec.index(t)] = v
    return v_out, counts


# --------------------------------------------------------------------------- converted SNN


def _conv_ref(x, w, b, stride, pads):
    """Plain NCHW convolution, float64 sums (exact for dyadic weights and spikes)."""
    t, left, bot, r = pads
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (t, bot), (left, r)))
    co, ci, kh, kw = w.shape
    ho = (xp.shape[2] - kh) // stride[0] + 1
    wo = (xp.shape[3] - kw) // stride[1] + 1
    out = np.zeros((x.shape[0], co, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + stride[0] * (ho - 1) + 1:stride[0],
                       j:j + stride[1] * (wo - 1) + 1:stride[1]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.float64))
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out.astype(np.float32)


def _pool_ref(x, kernel, stride):
    kh, kw = kernel
    ho = (x.shape[2] - kh) // stride[0] + 1
    wo = (x.shape[3] - kw) // stride[1] + 1
    out = np.zeros((*x.shape[:2], ho, wo))
    for i in range(kh):
        for j in range(kw):
            out += x[:, :, i:i + stride[0] * (ho - 1) + 1:stride[0],
                     j:j + stride[1] * (wo - 1) + 1:stride[1]]
    return (out / (kh * kw)).astype(np.float32)


def _neuron_step(v, cur, th, alpha, reset, semantics):
    """One float32 update of a layer's membranes; returns (new v, spikes in {0, 1})."""
    a, th = np.float32(alpha), np.float32(th)
    if semantics == "rathi":
        s = (v > th).astype(np.float32)                          # previous membrane, strict
        if reset == "soft":
            return (a * v + cur) - np.where(s > 0, th, np.float32(0)), s  # reset not leaked
        return (np.float32(1) - s) * a * v + cur, s
    x = a * v + cur                                             # project: same step, >=
    s = (x >= th).astype(np.float32)
    if reset == "soft":
        return np.where(s > 0, x - th, x), s
    return np.where(s > 0, np.float32(0), x), s


def conv_events_reference(x, weight, bias, stride, pads):
    """Slow twin of the event-driven convolution (``_kernels.conv_events``), NCHW in and out.

    For every output pixel: start from float32 0, add ``v * weight[:, c, ky, kx]`` for every
    nonzero input ``v`` in the window in ``(ky, kx, c)`` ascending order (one float32
    rounding per product and per addition), then add the bias.
    """
    t, left, bot, r = pads
    xp = np.pad(np.asarray(x, np.float32), ((0, 0), (0, 0), (t, bot), (left, r)))
    co, ci, kh, kw = weight.shape
    w = np.asarray(weight, np.float32)
    ho = (xp.shape[2] - kh) // stride[0] + 1
    wo = (xp.shape[3] - kw) // stride[1] + 1
    out = np.zeros((x.shape[0], co, ho, wo), np.float32)
    for n in range(x.shape[0]):
        for oy in range(ho):
            for ox in range(wo):
                acc = np.zeros(co, np.float32)
                for ky in range(kh):
                    for kx in range(kw):
                        for c in range(ci):
                            v = xp[n, c, oy * stride[0] + ky, ox * stride[1] + kx]
                            if v != 0:
                                acc = acc + v * w[:, c, ky, kx]
                if bias is not None:
                    acc = acc + np.asarray(bias, np.float32)
                out[n, :, oy, ox] = acc
    return out


def _maxpool_ref(spk, cnt, kernel, stride):
    """Spiking max pooling, one step, NCHW.

    Each window passes the spike of its element with the largest count ``cnt``
    accumulated before this step (the first in row-major order on ties).
    """
    kh, kw = kernel
    n, c, hh, ww = spk.shape
    ho, wo = (hh - kh) // stride[0] + 1, (ww - kw) // stride[1] + 1
    out = np.zeros((n, c, ho, wo), np.float32)
    for oy in range(ho):
        for ox in range(wo):
            best = np.full((n, c), -np.inf, np.float32)
            for i in range(kh):
                for j in range(kw):
                    y, x = oy * stride[0] + i, ox * stride[1] + j
                    take = cnt[:, :, y, x] > best
                    best = np.where(take, cnt[:, :, y, x], best)
                    out[:, :, oy, ox] = np.where(take, spk[:, :, y, x], out[:, :, oy, ox])
    return out


def _graph_units(net, thresholds, readout, readout_threshold):
    """Which ReLUs fire (those on a current), their thresholds, and every add's factors.

    Written independently of ``l4theory.convert.graph``: a value is a current if it comes
    from a weight layer without crossing a ReLU; the k-th ReLU on a current gets
    ``thresholds[k]``; spikes of a layer fed in unit ``u`` carry ``u / v_th``; an add
    multiplies input k by ``u_0 / u_k``; a weight layer's bias is divided by the product
    of the factors between it and the next ReLU.
    """
    is_cur, unit, relu_th, factors = [], [], {}, {}
    th = list(thresholds)
    for i, lay in enumerate(net.layers):
        src = net.inputs[i]
        cur_in = [k >= 0 and is_cur[k] for k in src]
        u_in = [1.0 if k < 0 else unit[k] for k in src]
        if lay.kind == "relu" and cur_in[0]:
            relu_th[i] = th.pop(0)
            is_cur.append(False)
            unit.append(u_in[0] / relu_th[i] if np.isfinite(relu_th[i]) else 0.0)
            continue
        if lay.kind == "add":
            factors[i] = [u_in[0] / u if u > 0 and u_in[0] > 0 else 1.0 for u in u_in]
        is_cur.append(lay.kind in ("conv2d", "linear") or (lay.kind != "relu" and any(cur_in)))
        unit.append(u_in[0])
    divisor = {}
    for w in net.weight_layers:
        f, node = 1.0, w
        while True:
            nxt = [(i, src.index(node)) for i, src in enumerate(net.inputs) if node in src]
            if len(nxt) != 1 or net.layers[nxt[0][0]].kind not in ("add", "avgpool2d",
                                                                  "maxpool2d", "flatten"):
                break
            i, pos = nxt[0]
            f *= factors[i][pos] if net.layers[i].kind == "add" else 1.0
            node = i
        divisor[w] = f
    return relu_th, factors, divisor


def snn_step_reference(net, spikes, thresholds, *, alpha=1.0, reset="soft",
                       semantics="project", readout="membrane", readout_threshold=1.0,
                       conv=None):
    """Slow step-by-step converted-SNN loop, independent of :mod:`l4theory.convert.simulate`.

    NCHW layers written out here (float64 sums cast to float32: exact for dyadic weights),
    float32 membranes, one step at a time, no biases scaled. Networks may be graphs:
    residual adds take ``a * f0 + b * f1`` in float32 with the factors of
    :func:`_graph_units`, and max pooling follows each window's largest accumulated
    count (:func:`_maxpool_ref`).

    Parameters
    ----------
    net : l4theory.convert.network.Network
    spikes : numpy.ndarray, shape (steps, n, *net.input_shape)
        Encoded input of every step (e.g. from ``encode_steps``).
    thresholds : sequence of float, one per spiking layer
    alpha, reset, semantics, readout, readout_threshold : as in ``simulate``
    conv : callable, optional
        ``conv(x, weight, bias, stride, pads)`` on NCHW arrays; default float64 sums cast
        to float32 (exact for dyadic weights). :func:`conv_events_reference` reproduces the
        simulator's event-driven summation order for any weights.

    Returns
    -------
    readout : numpy.ndarray of float64, shape (steps, n, n_classes)
        Accumulated readout after every step.
    counts : dict of int to numpy.ndarray
        Spike counts per spiking layer, keyed by the index of the weight layer that
        ``net.spiking_layers`` names it after, shape (n, *layer output shape).
    """
    relu_th, factors, divisor = _graph_units(net, thresholds, readout, readout_threshold)
    last = net.weight_layers[-1]
    names = dict(zip(sorted(relu_th), net.spiking_layers, strict=True))
    v, counts, pool_cnt = {}, {}, {}
    acc = np.zeros((spikes.shape[1], int(np.prod(net.output_shape))))
    out = []
    for t in range(spikes.shape[0]):
        vals = {-1: spikes[t].astype(np.float32)}
        for i, lay in enumerate(net.layers):
            src = net.inputs[i]
            h = vals[src[0]]
            if lay.kind in ("conv2d", "linear"):
                b = None if lay.bias is None else \
                    (np.asarray(lay.bias, np.float64) / divisor[i]).astype(np.float32)
                if lay.kind == "conv2d":
                    h = (conv or _conv_ref)(h, lay.weight, b, lay.stride, lay.padding)
                else:
                    h = (h.astype(np.float64) @ lay.weight.T.astype(np.float64)
                         + (0.0 if b is None else b)).astype(np.float32)
            elif lay.kind == "avgpool2d":
                h = _pool_ref(h, lay.kernel, lay.stride)
            elif lay.kind == "maxpool2d":
                before = pool_cnt.get(i, np.zeros_like(h))
                pool_cnt[i] = before + h
                h = _maxpool_ref(h, before, lay.kernel, lay.stride)
            elif lay.kind == "add":
                f0, f1 = (np.float32(f) for f in factors[i])
                h = (h * f0 if f0 != 1 else h) + (vals[src[1]] * f1 if f1 != 1 else vals[src[1]])
            elif lay.kind == "flatten":
                h = h.reshape(len(h), -1)
            elif i in relu_th:
                v[i] = np.zeros_like(h) if i not in v else v[i]
                v[i], h = _neuron_step(v[i], h, relu_th[i], alpha, reset, semantics)
                counts[names[i]] = counts.get(names[i], 0.0) + h
            vals[i] = h
            if i == last:
                break
        if readout == "spikes":
            v[last] = np.zeros_like(h) if last not in v else v[last]
            v[last], h = _neuron_step(v[last], h, readout_threshold, alpha, reset, semantics)
            counts[last] = counts.get(last, 0.0) + h
        acc = acc + h.reshape(len(acc), -1)
        out.append(acc)
    return np.array(out), counts


def encode(x: np.ndarray, encoder: str, rng: np.random.Generator) -> np.ndarray:
    """One step of input spikes for inputs ``x`` (any shape), from a NumPy Generator.

    ``signed``: ``sign(x) * Bernoulli(min(|x|, 1))`` (Rathi et al. 2020);
    ``bernoulli``: ``Bernoulli(clip(x, 0, 1))``; ``constant``: ``x`` itself.
    """
    if encoder == "signed":
        return (rng.random(x.shape) < np.abs(x)).astype(x.dtype) * np.sign(x)
    if encoder == "bernoulli":
        return (rng.random(x.shape) < x).astype(x.dtype)
    if encoder == "constant":
        return x
    raise ValueError(f"encoder must be one of ('signed', 'bernoulli', 'constant'), got {encoder!r}")


def if_forward(net, x, thresholds, *, steps=100, encoder="signed", reset="soft", rng=None,
               stop_at=None, bias_scales=None, readout_bias_scale=1.0, input_spikes=None):
    """The former ``balance.if_forward``: slow, clear float64 IF loop (project semantics).

    ``V[t] = V[t-1] + I[t]``, spike when ``V[t] >= v_th`` in the same step, soft or hard
    reset, pooling on spikes, readout accumulating its input current.

    Parameters
    ----------
    net : l4theory.convert.network.Network
    x : numpy.ndarray, shape (n, *input_shape)
    thresholds : array_like, shape (n_spiking,)
    steps : int
    encoder : {"signed", "bernoulli", "constant"}
        Used with ``rng`` unless ``input_spikes`` is given.
    reset : {"soft", "hard"}
    rng : numpy.random.Generator, int or None
    stop_at : int, optional
        Weight layer index: stop there and return only its max per-step current.
    bias_scales, readout_bias_scale : factors on the biases.
    input_spikes : numpy.ndarray, shape (steps, n, *input_shape), optional
        The encoded input of every step (e.g. ``simulate``'s ``encode_steps``).

    Returns
    -------
    readout : numpy.ndarray, shape (n, n_classes), or float with ``stop_at``
        Readout membrane after ``steps`` divided by ``steps``; with ``stop_at`` the max
        current into that layer.
    max_current : dict of int to float
    """
    rng = as_rng(rng)
    if reset not in ("soft", "hard"):
        raise ValueError(f"reset must be 'soft' or 'hard', got {reset!r}")
    spiking = net.spiking_layers
    th = np.asarray(thresholds, dtype=np.float64)
    if th.shape != (len(spiking),) or not (th > 0).all():
        raise ValueError(f"thresholds must be {len(spiking)} positive values, got {th}")
    bscale = np.ones(len(spiking)) if bias_scales is None else np.asarray(bias_scales, float)
    x = np.asarray(x, np.float32)
    thr = dict(zip(spiking, th, strict=True))
    bsc = dict(zip(spiking, bscale, strict=True))
    last = net.weight_layers[-1]
    bsc[last] = float(readout_bias_scale)
    v = {i: np.zeros((len(x), *net.shapes[i + 1]), dtype=np.float64) for i in spiking}
    readout = None
    max_cur = {i: -np.inf for i in spiking}
    for t in range(steps):
        h = encode(x, encoder, rng) if input_spikes is None else input_spikes[t]
        for i, lay in enumerate(net.layers):
            if lay.kind == "relu":
                continue  # the IF neuron is the nonlinearity
            if lay.kind in ("conv2d", "linear"):
                cur = lay(h) if lay.bias is None or bsc.get(i, 1.0) == 1.0 else \
                    lay(h) + (bsc[i] - 1.0) * lay.bias.reshape((-1,) + (1,) * (h.ndim - 2))
                if i == stop_at:
                    max_cur[i] = max(max_cur.get(i, -np.inf), float(cur.max()))
                    break
                if i in thr:
                    max_cur[i] = max(max_cur[i], float(cur.max()))
                    v[i] += cur
                    spk = v[i] >= thr[i]
                    if reset == "soft":
                        v[i] -= thr[i] * spk
                    else:
                        v[i][spk] = 0.0
                    h = spk.astype(np.float32)
                elif i == last:
                    readout = cur.astype(np.float64) if readout is None else readout + cur
                    break
                else:
                    h = cur
            else:
                h = lay(h)
    if stop_at is not None:
        return max_cur[stop_at], max_cur
    return readout.reshape(len(x), -1) / steps, max_cur
