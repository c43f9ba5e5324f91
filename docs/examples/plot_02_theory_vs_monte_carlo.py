"""
Theory against Monte Carlo, with standard errors
================================================

Converted networks run in discrete time: ``V[t] = alpha V[t-1] + I[t]`` with
``I[t] = sum_i w_i s_i[t]`` and Bernoulli input spikes ``s_i[t]`` of probability ``p_i``
(``V[0] = 0``, no threshold: the free membrane). The exact mean and variance after
``steps`` steps are :func:`~l4theory.theory.bernoulli_mean` and
:func:`~l4theory.theory.bernoulli_var`; the variance of a Bernoulli input is ``p(1-p)``, not
the paper's Poisson ``p``.

Here a plain NumPy simulation, written independently of the library, checks both, with the
standard error of each Monte Carlo estimate: the standard error of a sample mean is
``sd / sqrt(n)``, that of a sample variance ``sqrt((m4 - s**4) / n)`` (``m4`` the fourth
central moment).
"""

import matplotlib.pyplot as plt
import numpy as np

from l4theory.theory import bernoulli_mean, bernoulli_var, discrete_cumulant

rng = np.random.default_rng(7)
n_inputs, n_trials = 64, 4000
probs = rng.uniform(0.0, 1.0, n_inputs)
weights = rng.normal(0.0, 1.0, n_inputs) / np.sqrt(n_inputs)
alpha = 0.9
checkpoints = np.array([1, 2, 5, 10, 20, 40])

v = np.zeros(n_trials)
records = {}
for t in range(1, checkpoints.max() + 1):
    spikes = rng.random((n_trials, n_inputs)) < probs
    v = alpha * v + spikes @ weights
    if t in checkpoints:
        records[t] = v.copy()

rows = []
for t in checkpoints:
    s = records[t]
    m, var = s.mean(), s.var(ddof=1)
    se_m = s.std(ddof=1) / np.sqrt(n_trials)
    m4 = np.mean((s - m) ** 4)
    se_v = np.sqrt((m4 - var**2) / n_trials)
    th_m = float(bernoulli_mean(probs, weights, alpha, steps=t))
    th_v = float(bernoulli_var(probs, weights, alpha, steps=t))
    rows.append((t, m, se_m, th_m, var, se_v, th_v))
    print(f"t={t:3d}  mean {m:+.4f} +- {se_m:.4f} (theory {th_m:+.4f}, z={(m - th_m) / se_m:+.2f})  "
          f"var {var:.4f} +- {se_v:.4f} (theory {th_v:.4f}, z={(var - th_v) / se_v:+.2f})")

# %%
# The theory curves over every step, the simulated points with 2 SE bars; the Poisson
# formula (the paper's, ``p`` in place of ``p(1-p)``) overstates the variance.

rows = np.array(rows)
steps = np.arange(1, checkpoints.max() + 1)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.plot(steps, [bernoulli_mean(probs, weights, alpha, steps=int(k)) for k in steps], "k-", label="theory")
ax1.errorbar(rows[:, 0], rows[:, 1], yerr=2 * rows[:, 2], fmt="o", color="C1", label="Monte Carlo (2 SE)")
ax1.set(xlabel="step t", ylabel="mean of V[t]")
ax2.plot(steps, [bernoulli_var(probs, weights, alpha, steps=int(k)) for k in steps], "k-",
         label="Bernoulli theory")
ax2.plot(steps, [discrete_cumulant(2, "poisson", probs, weights, alpha, steps=int(k)) for k in steps],
         "k--", label="Poisson formula")
ax2.errorbar(rows[:, 0], rows[:, 4], yerr=2 * rows[:, 5], fmt="o", color="C1", label="Monte Carlo (2 SE)")
ax2.set(xlabel="step t", ylabel="variance of V[t]")
ax2.legend(frameon=False)
fig.tight_layout()
