"""
Encoders: Bernoulli against Poisson variance
============================================

A converted network turns each input value ``x`` into spikes, one time step at a time
(:data:`~l4theory.theory.ENCODERS`): ``bernoulli`` spikes with ``p = clip(x, 0, 1)``,
``signed`` (Rathi et al. 2020) emits ``sign(x) * Bernoulli(min(|x|, 1))``, ``poisson`` emits
``Poisson(x)`` counts, ``constant`` injects ``x`` itself. Their means agree; their variances do
not. The paper's variance is the Poisson one, ``x``; a Bernoulli input has ``x (1 - x)``,
its small-``x`` limit. On inputs spread uniformly over [0, 1] the Poisson formula overstates
the variance 3 times (``E[x] / E[x (1 - x)] = (1/2) / (1/6)``).

:func:`~l4theory.theory.discrete_cumulant` gives every cumulant of the membrane
``V[t] = alpha V[t-1] + sum_i w_i s_i[t]`` under each encoder; below, a NumPy simulation of
one input checks the stationary variance of each.
"""

import matplotlib.pyplot as plt
import numpy as np

from l4theory.theory import ENCODERS, discrete_cumulant

alpha, steps, n_trials = 0.8, 60, 20_000
x_grid = np.linspace(-1.0, 1.0, 201)
x_mc = np.array([-0.8, -0.4, 0.1, 0.3, 0.5, 0.7, 0.9])
rng = np.random.default_rng(8)


def spikes(encoder, x, size):
    """One step of input spikes of value ``x`` (independent of the library's encoder)."""
    if encoder == "bernoulli":
        return (rng.random(size) < np.clip(x, 0, 1)).astype(float)
    if encoder == "signed":
        return np.sign(x) * (rng.random(size) < min(abs(x), 1.0))
    if encoder == "poisson":
        return rng.poisson(max(x, 0.0), size).astype(float)
    raise ValueError(f"no simulation for encoder {encoder!r}")


fig, ax = plt.subplots(figsize=(6.5, 4))
for i, enc in enumerate(ENCODERS):
    xs = x_grid if enc == "signed" else x_grid[x_grid >= 0]
    theory = [float(discrete_cumulant(2, enc, [x], [1.0], alpha)) for x in xs]
    ax.plot(xs, theory, color=f"C{i}", label=f"{enc} (theory)")
    if enc == "constant":                            # no randomness: variance 0
        continue
    points, errors = [], []
    for x in x_mc if enc == "signed" else x_mc[x_mc >= 0]:
        v = np.zeros(n_trials)
        for _ in range(steps):                       # alpha**60 ~ 2e-6: stationary
            v = alpha * v + spikes(enc, x, n_trials)
        var = v.var(ddof=1)
        se = np.sqrt((np.mean((v - v.mean()) ** 4) - var**2) / n_trials)
        z = (var - float(discrete_cumulant(2, enc, [x], [1.0], alpha))) / se
        points.append((x, var))
        errors.append(2 * se)
        print(f"{enc:9s} x={x:+.1f}: simulated var {var:.4f} +- {se:.4f}, z = {z:+.2f}")
    p = np.array(points)
    ax.errorbar(p[:, 0], p[:, 1], yerr=errors, fmt="o", color=f"C{i}", ms=4)
ax.set(xlabel="input value x", ylabel="stationary Var V (w = 1)")
ax.legend(frameon=False, fontsize=8)
fig.tight_layout()

# %%
# The factor on a realistic input: the pixels of uniform random "images" in [0, 1].

x = rng.uniform(0, 1, 10_000)
w = rng.normal(0, 1, 10_000)
ratio = float(discrete_cumulant(2, "poisson", x, w, alpha) / discrete_cumulant(2, "bernoulli", x, w, alpha))
print(f"Poisson / Bernoulli variance on uniform inputs: {ratio:.3f}")
