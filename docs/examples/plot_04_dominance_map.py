"""
Who fires first: the dominance map
==================================

Two neurons with the same L2 norm (1) and different L4 norms: ``w_A`` at 45 degrees and
``w_B`` at 10 degrees, threshold ``v_th = 2`` above both means, ``tau = 1``, inputs
``lambda = R (cos phi, sin phi)``. An ANN ranks them by the dot product: A wins where
``lambda·w_A > lambda·w_B``, i.e. for ``phi > 27.5`` degrees at every ``R``. Spiking neurons
cross threshold by fluctuation, and B's larger L4 norm gives it the larger spread.

The race from rest is simulated here (both neurons fed the *same* input spikes, Euler steps
of ``dt = 0.01 tau`` with one Bernoulli coin ``rate dt`` per input and step), and
:func:`l4theory.plot.dominance_map` draws ``P(A first)`` with the dot-product boundary.
"""

import numpy as np

from l4theory.plot import dominance_map, dot_boundary
from l4theory.theory import l4_norm

w = np.array([[np.cos(np.pi / 4), np.sin(np.pi / 4)],               # A
              [np.cos(np.radians(10)), np.sin(np.radians(10))]])    # B
print("L2 norms", np.linalg.norm(w, axis=1).round(3), " L4 norms", l4_norm(w).round(3))
print(f"dot-product boundary: phi = {np.degrees(dot_boundary(w)):.1f} deg")

R = np.array([1.0, 2.0, 3.0, 4.0])
phi = np.radians(np.linspace(2.5, 87.5, 18))
tau, v_th, dt, t_run, n_trials = 1.0, 2.0, 0.01, 20.0, 400
rng = np.random.default_rng(11)

lam = R[:, None, None] * np.stack([np.cos(phi), np.sin(phi)], axis=-1)[None]   # (n_R, n_phi, 2)
p_spike = lam * dt
shape = (len(R), len(phi), n_trials)
v_a, v_b = np.zeros(shape), np.zeros(shape)
t_a, t_b = np.full(shape, np.inf), np.full(shape, np.inf)
decay = np.exp(-dt / tau)
for step in range(1, int(t_run / dt) + 1):
    s = rng.random(shape + (2,)) < p_spike[:, :, None, :]        # common input spikes
    v_a = decay * v_a + s @ w[0]
    v_b = decay * v_b + s @ w[1]
    t_a = np.where(np.isinf(t_a) & (v_a >= v_th), step, t_a)
    t_b = np.where(np.isinf(t_b) & (v_b >= v_th), step, t_b)
p_first = np.mean((t_a < t_b) + 0.5 * (t_a == t_b), axis=-1)      # ties (and no spike) count 1/2

deg = np.degrees(phi)
for r, row in zip(R, p_first, strict=True):
    i = np.flatnonzero((row[:-1] < 0.5) & (row[1:] >= 0.5))[0]    # first crossing, linear between
    cross = deg[i] + (0.5 - row[i]) / (row[i + 1] - row[i]) * (deg[i + 1] - deg[i])
    print(f"R = {r:.0f}: P(A first) = 1/2 at phi = {cross:.1f} deg (ANN: 27.5 deg)")

# %%
# The map: where colour and the dashed dot-product ray disagree, the spiking network ranks the
# two neurons the other way round from the ANN it was converted from.

fig = dominance_map(w, R, phi, p_first)
