"""Per-neuron membrane diagnostics of the first layer: theory against simulation.

For every neuron ``j`` of the first weight layer (every output channel at every position
for a convolution) and every image, the free membrane (threshold disabled, so no reset)
after ``steps`` steps is ``V_j = sum_t alpha**(steps-1-t) I_j[t]`` with
``I_j[t] = w_j . s[t] (+ b_j)``. Its mean and variance are predicted exactly by
:func:`l4theory.theory.discrete_cumulant` for the encoder in use (Bernoulli form:
``Var[s_i] = p_i (1 - p_i)``) and approximately by the paper's Poisson form
(``Var[s_i] = |E[s_i]|``); :func:`membrane_diagnostics` measures both over independent
input spike trains and compares. It also reports how well the measured standard deviation
is predicted by the L4 norm of the neuron's weights (the paper's input-independent proxy)
and by the exact input-dependent formula.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._checks import check_alpha, check_int
from ..theory.discrete import ENCODERS
from ..theory.norms import l4_norm
from .first_layer import current_moments, first_weight_layer
from .network import Network
from .simulate import encode_steps, linear_op

__all__ = ["membrane_diagnostics"]


def _moments(layer, mean=None, var=None):
    """Per-step current moments of every neuron, each shape (n_images, n_neurons)."""
    geo = {"stride": layer.stride, "padding": layer.padding} if layer.kind == "conv2d" else {}
    m = current_moments(layer.weight.astype(np.float64), mean, var, **geo)
    return tuple(None if a is None else a.reshape(len(a), -1) for a in m)


def _theory(layer, x: np.ndarray, encoder: str, alpha: float, steps: int):
    """Exact mean and variance, and the paper's Poisson variance, of every neuron's V[T]."""
    from ..theory import leak_gain, spike_cumulant

    k1 = spike_cumulant(1, encoder, x.astype(np.float64))
    k2 = spike_cumulant(2, encoder, x.astype(np.float64))
    g1, g2 = float(leak_gain(1, alpha, steps)), float(leak_gain(2, alpha, steps))
    m1, v2 = _moments(layer, k1, k2)
    mean_th = m1 * g1
    n_out = mean_th.shape[1]
    if layer.bias is not None:  # neurons are channel-major: bias repeats over positions
        mean_th += np.repeat(np.asarray(layer.bias, np.float64), n_out // layer.bias.size)[None] * g1
    return mean_th, v2 * g2, _moments(layer, var=np.abs(k1))[1] * g2


def _measure(net: Network, layer, x: np.ndarray, encoder: str, alpha: float, steps: int,
             n_trials: int, seed: int, n_out: int):
    """Sample mean and variance of the free membrane over ``n_trials`` spike trains per image."""
    w32 = np.asarray(layer.weight, np.float32)
    b32 = None if layer.bias is None else np.asarray(layer.bias, np.float32)
    n_img = len(x)
    s1 = np.zeros((n_img, n_out))
    s2 = np.zeros((n_img, n_out))
    a = np.float64(alpha)
    for i in range(n_img):
        ids = i * n_trials + np.arange(n_trials)
        xi = np.repeat(x[i:i + 1], n_trials, axis=0)
        v = np.zeros((n_trials, n_out))  # fp64 accumulation
        for t in range(steps):
            s = encode_steps(xi, encoder, seed, ids, t, 1)[0].reshape((n_trials, *net.input_shape))
            if layer.kind == "conv2d":
                cur = linear_op("conv2d", np.ascontiguousarray(s.transpose(0, 2, 3, 1)), w32, b32,
                                layer.stride, layer.padding).transpose(0, 3, 1, 2)
            else:
                cur = linear_op("linear", s.reshape(n_trials, -1), w32, b32)
            v = a * v + cur.reshape(n_trials, -1)
        s1[i] = v.mean(axis=0)
        s2[i] = v.var(axis=0, ddof=1)
    return s1, s2


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def membrane_diagnostics(net: Network, x: ArrayLike, *, encoder: str = "signed", alpha: float = 1.0,
                         steps: int = 75, n_trials: int = 200, seed: int = 0) -> dict:
    """Predicted and measured mean/variance of the first layer's free membrane.

    Parameters
    ----------
    net : Network
    x : numpy.ndarray, shape (n_images, *net.input_shape)
        A few normalised images.
    encoder : {"signed", "bernoulli", "poisson"}
        Input encoder (``constant`` has no variance to compare).
    alpha : float
        Leak factor per step in (0, 1].
    steps : int
        Steps integrated (the membrane is read after the last one).
    n_trials : int
        Independent spike trains per image (>= 2).
    seed : int
        Seed of the input streams (trial ``k`` of image ``i`` uses stream ``i*n_trials+k``).

    Returns
    -------
    dict of numpy.ndarray, each of shape (n_images, n_neurons) unless noted
        ``mean_measured``, ``var_measured``, ``mean_theory``, ``var_theory`` (exact form
        of the encoder), ``var_poisson`` (the paper's Poisson form), ``l4`` (L4 norm of
        each neuron's weights, broadcast over images), ``se_mean`` and ``se_var``
        (standard errors of the measured values), and scalars ``corr_std_l4`` /
        ``corr_std_exact`` / ``corr_std_poisson`` (Pearson correlation over all neurons
        and images of the measured std with the L4 norm, the exact and the Poisson
        predicted std), ``z_mean`` / ``z_var`` (median absolute z-score of the measured
        values against theory).
    """
    if encoder not in ENCODERS or encoder == "constant":
        raise ValueError(f"encoder must be one of signed, bernoulli, poisson, got {encoder!r}")
    alpha = check_alpha("alpha", alpha)
    steps = check_int("steps", steps, minimum=1)
    n_trials = check_int("n_trials", n_trials, minimum=2)
    _, layer = first_weight_layer(net, direct_input=True)
    x = np.asarray(x, dtype=np.float32).reshape((-1, *net.input_shape))
    n_img = len(x)
    mean_th, var_th, var_po = _theory(layer, x, encoder, alpha, steps)
    n_out = mean_th.shape[1]
    s1, s2 = _measure(net, layer, x, encoder, alpha, steps, n_trials, seed, n_out)
    l4_rows = l4_norm(layer.weight.reshape(layer.weight.shape[0], -1).astype(np.float64))
    l4 = np.broadcast_to(np.repeat(l4_rows, n_out // l4_rows.size)[None], (n_img, n_out)).copy()
    se_mean = np.sqrt(np.maximum(var_th, 0) / n_trials)
    # variance of the sample variance ~ 2 var^2/(n-1) (Gaussian approx.; fine for many inputs)
    se_var = np.sqrt(2.0 / (n_trials - 1)) * np.maximum(var_th, 1e-300)
    std_meas = np.sqrt(s2).ravel()
    live = var_th.ravel() > 0
    return {
        "mean_measured": s1, "var_measured": s2, "mean_theory": mean_th, "var_theory": var_th,
        "var_poisson": var_po, "l4": l4, "se_mean": se_mean, "se_var": se_var,
        "corr_std_l4": _corr(std_meas, l4),
        "corr_std_exact": _corr(std_meas, np.sqrt(var_th)),
        "corr_std_poisson": _corr(std_meas, np.sqrt(var_po)),
        "z_mean": float(np.median(np.abs((s1 - mean_th).ravel()[live]
                                         / se_mean.ravel()[live]))),
        "z_var": float(np.median(np.abs((s2 - var_th).ravel()[live] / se_var.ravel()[live]))),
        "params": {"encoder": encoder, "alpha": alpha, "steps": steps, "n_trials": n_trials,
                   "seed": seed, "n_images": n_img, "layer": layer.name},
    }
