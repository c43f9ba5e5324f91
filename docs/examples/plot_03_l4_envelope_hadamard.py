"""
The L4 envelope and the Hadamard angle drift
============================================

The stationary variance of the continuous membrane is ``(tau/2) lambda·w∘2`` (Eq. 2), so by
Cauchy-Schwarz its std is bounded by an L4-norm envelope:

``std(V) <= sqrt(tau/2 ||lambda||_2) ||w||_4``

with equality only when ``lambda`` is parallel to ``w∘2``. "std proportional to the L4 norm"
is this envelope, not an identity: :func:`~l4theory.theory.variance_decomposition` splits the
std into the envelope times ``sqrt(cos psi)``, ``psi`` the angle between ``lambda`` and
``w∘2``.
"""

import matplotlib.pyplot as plt
import numpy as np

from l4theory.plot import envelope_vs_std, hadamard_drift
from l4theory.testing import assert_poisson_envelope
from l4theory.theory import hadamard_angle, l4_norm, poisson_var, variance_decomposition

rng = np.random.default_rng(3)
n_neurons, n_inputs, tau = 200, 50, 1.0
rates = rng.uniform(0.0, 1.0, n_inputs)
weights = rng.normal(0.0, 1.0, (n_neurons, n_inputs)) / np.sqrt(n_inputs)

exact = np.sqrt([poisson_var(rates, w, tau) for w in weights])
envelope = np.sqrt(tau / 2 * np.linalg.norm(rates)) * l4_norm(weights)
print(f"std / envelope: min {np.min(exact / envelope):.3f}, max {np.max(exact / envelope):.3f}")
print(f"correlation of std with the L4 norm over neurons: {np.corrcoef(exact, l4_norm(weights))[0, 1]:.3f}")
d = variance_decomposition(rates, weights, gain=tau / 2)
print(f"sqrt(envelope * cos psi) reproduces the std to "
      f"{np.max(np.abs(np.sqrt(d.envelope * d.cos_psi) - exact)):.1e}")
for w in weights:
    assert_poisson_envelope(rates, w, tau=tau)   # the exact oracle of l4theory.testing

fig = envelope_vs_std(rates, weights, gain=tau / 2, label="200 random neurons")

# %%
# Why the envelope is loose: the Hadamard drift
# ---------------------------------------------
# For a unit weight vector ``w = (cos theta, sin theta)`` the input direction that maximises
# the variance is ``w∘2``, at angle ``atan(tan**2 theta)``: squaring pulls every direction
# toward the nearer axis. The ANN's most-driving input (``w`` itself) is therefore not the
# spiking neuron's most-variable one, except on the axes and at 45 degrees.

theta = np.radians([10.0, 30.0, 45.0, 60.0, 80.0])
for th, th2 in zip(np.degrees(theta), np.degrees(hadamard_angle(theta)), strict=True):
    print(f"w at {th:4.1f} deg -> w∘2 at {th2:5.2f} deg (drift {th2 - th:+6.2f})")
fig = hadamard_drift(n_arrows=10)
plt.show()
