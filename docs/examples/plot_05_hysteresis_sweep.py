"""
The hysteresis sweep: the threshold a neuron needs (Fig. 5)
===========================================================

A static neuron ``w_s = (1, 0)`` with ``v_th0 = 2``; a sweeping neuron
``w = (cos theta, sin theta)``; Poisson inputs on the bisector,
``lambda = R (cos theta/2, sin theta/2)``, ``R = 1``, ``tau = 1``. Both neurons then have the
same mean drive, and differ only in the spread of ``V``. Which threshold must the sweeping
neuron have to fire at the static neuron's rate?

The paper's Eq. 6 predicts ``v_hat = mu + rho (v_th0 - mu)`` with ``rho`` the ratio of L4
norms; with the ratio of exact stds instead (:func:`l4theory.plot.hysteresis_predictions`)
it follows the measurement more closely on the 60-degree side. Here the measurement is a
small simulation: both neurons on the same input spikes (Euler steps of ``dt = 0.02 tau``,
hard reset to 0), every candidate threshold at once, and the needed threshold where the
sweeping neuron's spike count equals the static neuron's; standard errors from 8 independent
batches.
"""

import numpy as np

from l4theory.plot import hysteresis_predictions, threshold_hysteresis

theta = np.radians([0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0])
v_grid = np.linspace(1.3, 2.5, 49)
tau, R, v_th0, dt, t_run = 1.0, 1.0, 2.0, 0.02, 400.0
n_batches, per_batch = 8, 4
rng = np.random.default_rng(505)

lam = R * np.stack([np.cos(theta / 2), np.sin(theta / 2)], axis=-1)     # (n_theta, 2)
w_sweep = np.stack([np.cos(theta), np.sin(theta)], axis=-1)            # (n_theta, 2)
n_runs = n_batches * per_batch
v_s = np.zeros((len(theta), n_runs))
v = np.zeros((len(theta), n_runs, len(v_grid)))
n_static = np.zeros((len(theta), n_runs))
n_sweep = np.zeros((len(theta), n_runs, len(v_grid)))
decay = np.exp(-dt / tau)
for _ in range(int(t_run / dt)):
    s = rng.random((len(theta), n_runs, 2)) < lam[:, None, :] * dt       # common input spikes
    v_s = decay * v_s + s[..., 0]                                        # w_s = (1, 0)
    v = decay * v + np.einsum("trk,tk->tr", s, w_sweep)[..., None]
    fired_s, fired = v_s >= v_th0, v >= v_grid
    n_static += fired_s
    n_sweep += fired
    v_s[fired_s] = 0.0
    v[fired] = 0.0


def needed(n_st, n_sw):
    """Threshold where the sweeping count (falling in v) meets the static count."""
    return float(np.interp(-n_st, -n_sw, v_grid))


batches = np.array([[needed(n_static[t, b::n_batches].sum(), n_sweep[t, b::n_batches].sum(axis=0))
                     for b in range(n_batches)] for t in range(len(theta))])
v_needed = batches.mean(axis=1)
se = batches.std(axis=1, ddof=1) / np.sqrt(n_batches)
pred = hysteresis_predictions(theta, R=R, tau=tau, v_th0=v_th0)
for th, m, e, l4, ex in zip(np.degrees(theta), v_needed, se, pred["l4"], pred["exact_var"], strict=True):
    print(f"theta {th:4.0f} deg: needed {m:.3f} +- {e:.3f}   Eq. 6 L4 {l4:.3f}   Eq. 6 exact std {ex:.3f}")

# %%
# The curves are the predictions over every angle; the points the simulated needed threshold
# with 2 SE bars. The short, coarse simulation here resolves the asymmetry about 45 degrees
# only roughly; ``python -m figures fig05`` runs the exact event-driven version.

fig = threshold_hysteresis(measured={"hard reset (Euler, dt = 0.02)": (theta, v_needed, se)})
