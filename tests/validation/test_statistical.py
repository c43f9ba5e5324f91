"""Monte Carlo against theory, with tolerances from the standard error.

False-failure budget. Every check is ``|mc - theory| < c * se``. Means of many i.i.d.
trials are treated as normal; batch-mean cumulants (B batches of k-statistics) follow
Student's t with B - 1 degrees of freedom. This module makes M = 40 checks or fewer
(counted in ``N_CHECKS``); each uses the two-sided quantile at level 1e-3 / 40 = 2.5e-5,
i.e. c = 4.22 for the normal checks and c = t_{B-1}^{-1}(1 - 1.25e-5) for the t checks.
By Bonferroni the chance that a correct implementation fails any check for a random seed
is below 1e-3. The seeds are fixed, so the outcome is deterministic.
"""

import numpy as np
import pytest
from scipy import stats

from l4theory import theory as th
from l4theory.theory import rates as thr
from validation import reference as ref
from validation import simulators as sim
from validation.stats import batch_cumulants, mean_se

pytestmark = pytest.mark.statistical

N_CHECKS = 40
LEVEL = 1e-3 / N_CHECKS


def crit(df=np.inf):
    return stats.norm.isf(LEVEL / 2) if np.isinf(df) else stats.t.isf(LEVEL / 2, df)


def test_free_membrane_cumulants():  # 8 checks
    rates = np.array([1.0, 2.5, 0.7])
    w = np.array([0.8, -0.3, 1.4])
    times = np.array([0.5, 3.0])
    nb, bs = 40, 5000
    samples = np.stack([sim.free_membrane(rates, w, 1.0, times, bs, 21, trial0=b * bs)
                        for b in range(nb)])
    est, se = batch_cumulants(samples)
    for n in (1, 2, 3, 4):
        theo = th.poisson_cumulant(n, rates, w, 1.0, times)
        z = (est[n - 1] - theo) / se[n - 1]
        assert np.all(np.abs(z) < crit(nb - 1)), (n, z)


def test_numpy_sampler_agrees_in_distribution():  # 2 checks
    rates = np.array([1.0, 2.5, 0.7])
    w = np.array([0.8, -0.3, 1.4])
    v = ref.free_membrane_numpy(rates, w, 1.0, 2.0, 200_000, rng=5)
    m, s = mean_se(v)
    assert abs(m - th.poisson_mean(rates, w, 1.0, 2.0)) < crit() * s
    k2 = v.var(ddof=1)
    se2 = np.sqrt((np.mean((v - m) ** 4) - k2**2) / v.size)
    assert abs(k2 - th.poisson_var(rates, w, 1.0, 2.0)) < crit() * se2


def test_exact_law_sf():  # 3 checks
    n = 200_000
    v = sim.free_membrane([1.0], [2.0], 1.0, [0.5, 1.0, 5.0], n, 22)
    for k, t in enumerate((0.5, 1.0, 5.0)):
        s = float(th.ShotNoise([1.0], [2.0], 1.0, t).sf(3.0))
        emp = np.mean(v[:, k] > 3.0)
        assert abs(emp - s) < crit() * np.sqrt(s * (1 - s) / n), (t, emp, s)


@pytest.mark.parametrize("alpha", [1.0, 0.8])
def test_discrete_bernoulli_mean_var(alpha):  # 2 x 4 checks
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 8)
    p[0] = 1.0
    w = rng.standard_normal(8)
    nb, bs = 40, 1000
    samples = np.stack([sim.discrete_run(p, w, alpha, "bernoulli", 20, bs, 23,
                                         record=[4, 20], trial0=b * bs)[0] for b in range(nb)])
    est, se = batch_cumulants(samples)
    for n in (1, 2):
        theo = th.bernoulli_cumulant(n, p, w, alpha, np.array([4, 20]))
        assert np.all(np.abs((est[n - 1] - theo) / se[n - 1]) < crit(nb - 1))


@pytest.mark.parametrize("reset", ["soft", "hard"])
def test_no_leak_if_rates(reset):  # 2 x 3 checks
    r = np.array([1.0, 0.5, 2.0])
    w = np.array([0.3, 0.7123, 0.15])
    thetas = np.array([0.5, 1.0, 3.0])
    t_run, warm, n = 220.0, 20.0, 300
    counts, _ = sim.lif_event(r, w, np.inf, thetas, t_run, n, 24, reset=reset, t_warmup=warm)
    m, s = mean_se(counts / (t_run - warm))
    for j, theta in enumerate(thetas):
        theo = (thr.if_soft_rate(r, w, theta) if reset == "soft"
                else thr.if_hard_rate(r, w, theta))
        assert abs(m[j] - theo) < crit(n - 1) * s[j], (theta, m[j], theo)


def test_discrete_bernoulli_hard_rate():  # 2 checks
    p, w, thetas = np.array([0.3, 0.6]), np.array([1.0, 2.0]), np.array([3.0, 6.5])
    wrep = np.tile(w, (2, 1))
    n = 300
    _, c1 = sim.discrete_run(p, wrep, 1.0, "bernoulli", 50, n, 25, v_th=thetas, reset="hard")
    _, c2 = sim.discrete_run(p, wrep, 1.0, "bernoulli", 850, n, 25, v_th=thetas, reset="hard")
    m, s = mean_se((c2 - c1) / 800)
    for j, theta in enumerate(thetas):
        assert abs(m[j] - thr.if_hard_rate_bernoulli(p, w, theta)) < crit(n - 1) * s[j]


def test_first_passage_no_leak_single_input():  # 1 check
    """With one input of weight 1 and threshold 3, the first spike is the 3rd input event."""
    fpt = sim.lif_event([2.0], [1.0], np.inf, [3.0], 50.0, 20_000, 26)[1][:, 0]
    m, s = mean_se(fpt)
    assert abs(m - 3 / 2.0) < crit() * s
