"""First-layer fidelity: how well the first spiking layer's rates track the ANN activations.

The paper's mechanism (its Fig. 3): after conversion a first-layer neuron should fire at a
rate proportional to its ANN activation, ``rate ~ clip(a / v_th, 0, 1)`` per step, and the
L4 adjustment is meant to make the rates track that *target* better. This module measures
it directly on images, for any (adjusted) network, per position and channel:

``target``
    ``clip(relu(a) / v_th, 0, 1)`` with ``a`` the *reference* ANN's first-layer
    pre-activation (the original network, bias times ``bias_scale``) and ``v_th`` the
    first layer's threshold in the spiking run.
``rate``
    spikes / T of the first spiking layer of the network under test
    (:func:`first_layer_rates`, which simulates the first layer only).

Metrics (:func:`fidelity_metrics`), pooled over samples, positions and channels:

``mse``
    mean of ``(rate - target)**2``.
``corr``
    Pearson correlation of ``rate`` and ``target`` (NaN if either is constant).
``dominance_error``
    over the pairs of channels ``(c1, c2)`` at the same sample and position whose targets
    differ (``target[c1] != target[c2]``; target ties, e.g. two silent channels or two
    saturated ones, are left out), the fraction the spiking layer orders wrongly:
    a *reversed* pair (``rate`` strictly in the opposite order) counts 1, a *tied* pair
    (equal rates, common since rates are multiples of 1/T) counts 1/2, i.e. the chance
    that a random tie-break gets it wrong. ``reversed`` and ``tied`` are reported too, and
    ``dominance_error_active`` restricts the pairs to those whose two targets are both
    positive. With ``max_pairs`` the pairs are a seeded uniform sample (with replacement)
    of the eligible ones; otherwise all are counted exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._checks import as_rng, check_int
from .first_layer import first_weight_layer
from .network import Flatten, Linear, Network

__all__ = ["dominance_counts", "first_layer_fidelity", "first_layer_network",
           "first_layer_rates", "first_layer_target", "fidelity_metrics"]


def _first_spiking(net: Network) -> tuple[int, int]:
    """(first weight layer, index of the ReLU that makes it spike)."""
    first, _ = first_weight_layer(net)
    spiking = net.spiking_layers
    if not spiking or spiking[0] != first:
        raise ValueError("the first weight layer is not followed by a ReLU (no first "
                         "spiking layer)")
    first_weight_layer(net, direct_input=True)
    relu = next(k for k in range(first + 1, len(net.layers)) if net.layers[k].kind == "relu")
    return first, relu


def first_layer_network(net: Network) -> Network:
    """The layers of ``net`` up to its first spiking layer's ReLU, plus a dummy readout.

    The readout is a zero ``Linear`` to one output after a flatten, so that
    :func:`l4theory.convert.simulate.simulate` runs the first spiking layer only.

    Parameters
    ----------
    net : Network

    Returns
    -------
    Network
        Its first weight layer is ``net``'s (the same arrays, not copied).
    """
    _, relu = _first_spiking(net)
    n_flat = math.prod(net.shapes[relu + 1])
    layers = list(net.layers[:relu + 1]) + [
        Flatten(name="fidelity_flatten"),
        Linear(weight=np.zeros((1, n_flat), np.float32), name="fidelity_readout")]
    return Network(net.input_shape, layers, name=f"{net.name}[first layer]")


def first_layer_target(net: Network, x: ArrayLike, v_th: float, *, bias_scale: float = 1.0) -> np.ndarray:
    """``clip(relu(a) / v_th, 0, 1)`` of the first spiking layer of the reference ANN.

    Parameters
    ----------
    net : Network
        The reference (unadjusted) ANN.
    x : array_like, shape (n, *net.input_shape)
        Normalised inputs (the ANN sees the pixel values; the encoder's mean for
        ``signed`` inputs in [-1, 1] is the pixel itself).
    v_th : float
        First-layer threshold of the spiking run (``> 0``).
    bias_scale : float
        Factor on the first layer's bias (``BalanceResult.bias_scales[0]``).

    Returns
    -------
    numpy.ndarray, float64, shape (n, *first spiking layer output shape)
        Target rate in spikes per step, in [0, 1].
    """
    if not (np.isfinite(v_th) and v_th > 0):
        raise ValueError(f"v_th must be > 0, got {v_th!r}")
    first, relu = _first_spiking(net)
    h = np.asarray(x, dtype=np.float64).reshape((-1, *net.input_shape))
    for k, lay in enumerate(net.layers[:relu + 1]):
        if k == first and lay.bias is not None and bias_scale != 1.0:
            h = _scaled_bias_forward(lay, h, bias_scale)
        else:
            h = lay(h)
    return np.clip(np.asarray(h, dtype=np.float64) / v_th, 0.0, 1.0)


def _scaled_bias_forward(lay, h, bias_scale):
    return dataclasses.replace(lay, bias=np.asarray(lay.bias, np.float64) * bias_scale)(h)


def first_layer_rates(net: Network, x: ArrayLike, *, v_th: float, steps: int, seed: int = 0,
                      sample_ids: ArrayLike | None = None, bias_scale: float = 1.0,
                      **sim_kwargs: Any) -> np.ndarray:
    """Spikes per step of every first-layer neuron of ``net`` (first layer simulated only).

    Parameters
    ----------
    net : Network
        The network under test (possibly adjusted).
    x : array_like, shape (n, *net.input_shape)
        Normalised inputs.
    v_th : float
        First-layer threshold.
    steps : int
        Time steps ``T``.
    seed, sample_ids
        Input spike stream (as in :func:`~l4theory.convert.simulate.simulate`): the same
        seed and ids give the same input spikes for every network (common random numbers).
    bias_scale : float
        Factor on the first layer's bias.
    **sim_kwargs
        Passed to ``simulate`` (``alpha``, ``reset``, ``encoder``, ``batch_size``, ...).

    Returns
    -------
    numpy.ndarray, float64, shape (n, *first spiking layer output shape)
        Spike count / ``steps``.
    """
    from .simulate import simulate

    first, _ = _first_spiking(net)
    steps = check_int("steps", steps, minimum=1)
    res = simulate(first_layer_network(net), x, thresholds=[v_th], steps=steps, seed=seed,
                   sample_ids=sample_ids, bias_scales=[bias_scale], record_counts=[first],
                   **sim_kwargs)
    return res.counts[first].astype(np.float64) / steps


def _as_channels(name: str, a) -> np.ndarray:
    """(n, C, ...) -> (positions, C): channels last, one row per (sample, position)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim < 2:
        raise ValueError(f"{name} must have shape (n, C, ...), got shape {a.shape}")
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def dominance_counts(rate: ArrayLike, target: ArrayLike, *, max_pairs: int | None = None,
                     rng: np.random.Generator | int | None = None, active_only: bool = False) -> dict:
    """Counts of eligible, reversed and tied channel pairs (see the module docstring).

    Parameters
    ----------
    rate, target : array_like, shape (n, C, ...)
        Spiking rates and targets; channel axis 1, pairs are taken within each
        ``(sample, position)``.
    max_pairs : int, optional
        Sample this many eligible pairs (with replacement, seeded) instead of counting all.
    rng : numpy.random.Generator, int or None
        Seed of the sample.
    active_only : bool
        Only pairs whose two targets are both positive.

    Returns
    -------
    dict
        ``pairs`` (eligible pairs counted or sampled), ``reversed``, ``tied`` (ints),
        ``error`` = ``(reversed + tied / 2) / pairs`` (NaN if no pair), ``sampled`` (bool).
    """
    r, t = _as_channels("rate", rate), _as_channels("target", target)
    if r.shape != t.shape:
        raise ValueError(f"rate and target differ in shape: {np.shape(rate)} vs "
                         f"{np.shape(target)}")
    if max_pairs is not None:
        return _dominance_sampled(r, t, check_int("max_pairs", max_pairs, minimum=1),
                                  as_rng(rng), active_only)
    n_pairs = n_rev = n_tie = 0
    iu = np.triu_indices(r.shape[1], k=1)
    chunk = max(1, (1 << 22) // max(1, iu[0].size))
    for s in range(0, r.shape[0], chunk):
        dt = t[s:s + chunk, iu[0]] - t[s:s + chunk, iu[1]]
        dr = r[s:s + chunk, iu[0]] - r[s:s + chunk, iu[1]]
        ok = dt != 0
        if active_only:
            ok &= (t[s:s + chunk, iu[0]] > 0) & (t[s:s + chunk, iu[1]] > 0)
        n_pairs += int(ok.sum())
        n_rev += int((ok & (np.sign(dr) == -np.sign(dt))).sum())
        n_tie += int((ok & (dr == 0)).sum())
    return _dom_result(n_pairs, n_rev, n_tie, False)


def _dom_result(pairs, rev, tie, sampled):
    err = (rev + 0.5 * tie) / pairs if pairs else float("nan")
    return {"pairs": int(pairs), "reversed": int(rev), "tied": int(tie), "error": err,
            "sampled": sampled}


def _dominance_sampled(r, t, max_pairs, rng, active_only):
    """Uniform sample of eligible pairs: draw (row, c1, c2), keep the eligible ones."""
    c = r.shape[1]
    if c < 2:
        return _dom_result(0, 0, 0, True)
    rows, a, b = [], [], []
    got, tries = 0, 0
    while got < max_pairs and tries < 50:
        m = 2 * (max_pairs - got) + 64
        i = rng.integers(0, r.shape[0], m)
        c1 = rng.integers(0, c, m)
        c2 = rng.integers(0, c - 1, m)
        c2 = c2 + (c2 >= c1)  # uniform over c2 != c1
        ok = t[i, c1] != t[i, c2]
        if active_only:
            ok &= (t[i, c1] > 0) & (t[i, c2] > 0)
        rows.append(i[ok]), a.append(c1[ok]), b.append(c2[ok])
        got += int(ok.sum())
        tries += 1
    i, c1, c2 = (np.concatenate(v)[:max_pairs] for v in (rows, a, b))
    dt = t[i, c1] - t[i, c2]
    dr = r[i, c1] - r[i, c2]
    return _dom_result(i.size, int((np.sign(dr) == -np.sign(dt)).sum()),
                       int((dr == 0).sum()), True)


def fidelity_metrics(rate: ArrayLike, target: ArrayLike, *, max_pairs: int | None = None,
                     rng: np.random.Generator | int | None = None) -> dict:
    """MSE, correlation and dominance error of first-layer rates against their targets.

    Parameters
    ----------
    rate, target : array_like, shape (n, C, ...)
        Spikes per step and ``clip(a / v_th, 0, 1)`` of the same neurons.
    max_pairs : int, optional
        Sample the dominance pairs (seeded by ``rng``) instead of counting them all.
    rng : numpy.random.Generator, int or None

    Returns
    -------
    dict
        ``mse``, ``corr``, ``mean_rate``, ``mean_target``, ``dominance_error`` (+
        ``dominance`` with the counts), ``dominance_error_active`` (+
        ``dominance_active``), ``n_neurons`` (samples x positions x channels), and
        ``mse_per_sample`` (shape (n,): the squared error averaged over each sample's
        neurons, for paired confidence intervals over samples).
    """
    r = np.asarray(rate, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if r.shape != t.shape or r.ndim < 2:
        raise ValueError(f"rate and target must share a shape (n, C, ...), got {r.shape} "
                         f"and {t.shape}")
    if not (np.isfinite(r).all() and np.isfinite(t).all()):
        raise ValueError("rate and target must be finite")
    gen = as_rng(rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (float(np.corrcoef(r.ravel(), t.ravel())[0, 1])
                if r.std() > 0 and t.std() > 0 else float("nan"))
    dom = dominance_counts(r, t, max_pairs=max_pairs, rng=gen)
    dom_a = dominance_counts(r, t, max_pairs=max_pairs, rng=gen, active_only=True)
    return {"mse": float(np.mean((r - t) ** 2)), "corr": corr,
            "mean_rate": float(r.mean()), "mean_target": float(t.mean()),
            "dominance_error": dom["error"], "dominance": dom,
            "dominance_error_active": dom_a["error"], "dominance_active": dom_a,
            "n_neurons": int(r.size),
            "mse_per_sample": ((r - t) ** 2).reshape(r.shape[0], -1).mean(axis=1)}


def first_layer_fidelity(net: Network, reference: Network, x: ArrayLike, *, v_th: float, steps: int,
                         seed: int = 0, sample_ids: ArrayLike | None = None, bias_scale: float = 1.0,
                         max_pairs: int | None = None, rng: np.random.Generator | int | None = None,
                         **sim_kwargs: Any) -> dict:
    """Fidelity of ``net``'s first spiking layer against ``reference``'s ANN activations.

    Parameters
    ----------
    net : Network
        Network under test (e.g. an adjusted copy of ``reference``).
    reference : Network
        The original ANN whose activations define the target.
    x : array_like, shape (n, *input_shape)
        Normalised inputs.
    v_th, steps, seed, sample_ids, bias_scale, **sim_kwargs
        As in :func:`first_layer_rates`.
    max_pairs, rng
        As in :func:`fidelity_metrics`.

    Returns
    -------
    dict
        :func:`fidelity_metrics` of the rates against :func:`first_layer_target`.
    """
    rate = first_layer_rates(net, x, v_th=v_th, steps=steps, seed=seed, sample_ids=sample_ids,
                             bias_scale=bias_scale, **sim_kwargs)
    target = first_layer_target(reference, x, v_th, bias_scale=bias_scale)
    return fidelity_metrics(rate, target, max_pairs=max_pairs, rng=rng)
