"""Fig. 1: equal mean, different variance -- the stationary distributions of two neurons.

Two single-input neurons, ``tau = 1``: A (``lambda = 1, w = 2``) and B (``lambda = 2, w = 1``).
Both have stationary mean ``lambda w tau = 2``; their variances ``lambda w^2 tau / 2`` are 2 and 1.
Theory: the exact law (``ShotNoise.pdf``, Gil-Pelaez inversion) and exact bin probabilities
(``ShotNoise.cdf`` at the bin edges); simulation: exact event-driven samples of ``V`` at
``t = 30 tau`` (:func:`validation.simulators.free_membrane`), histogram with binomial SE;
for comparison the moment-matched Gaussian and lognormal approximations.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from l4theory.plot import membrane_law, moment_fits
from l4theory.theory import ShotNoise
from validation.simulators import free_membrane

from .style import COLORS, figure, styled

NAME = "fig01"
TITLE = "Stationary distributions: equal mean, variances 2:1"
NEURONS = (("A", 1.0, 2.0), ("B", 2.0, 1.0))  # (label, lambda, w)

CONFIGS = {
    "quick": {"version": 2, "seed": 101, "tau": 1.0, "t_stat": 30.0, "n_samples": 100_000,
              "x_max": 8.0, "n_bins": 32, "n_pdf": 33},
    "full": {"version": 2, "seed": 101, "tau": 1.0, "t_stat": 30.0, "n_samples": 1_000_000,
             "x_max": 8.0, "n_bins": 32, "n_pdf": 97},
}


def compute(cfg) -> dict:
    """Exact densities, bin probabilities, moments and simulated histograms of A and B."""
    tau = cfg["tau"]
    edges = np.linspace(0.0, cfg["x_max"], cfg["n_bins"] + 1)
    # the density is singular or jumps at 0: start just right of it
    x = np.concatenate([[0.02], np.linspace(0.0, cfg["x_max"], cfg["n_pdf"])[1:]])
    out = {"edges": edges, "x": x, "tau": tau, "t_stat": cfg["t_stat"],
           "n_samples": cfg["n_samples"],
           "lam": np.array([n[1] for n in NEURONS]), "w": np.array([n[2] for n in NEURONS])}
    for k, (label, lam, w) in enumerate(tqdm(NEURONS, desc="fig01 exact law", leave=False)):
        sn = ShotNoise([lam], [w], tau)
        out[f"mean_{label}"] = sn.mean()
        out[f"var_{label}"] = sn.var()
        out[f"skew_{label}"] = sn.skew()
        out[f"pdf_{label}"] = sn.pdf(x)
        cdf = sn.cdf(edges)
        out[f"p_bin_{label}"] = np.diff(cdf)
        out[f"p_over_{label}"] = 1.0 - cdf[-1]
        v = free_membrane([lam], [w], tau, [cfg["t_stat"]], cfg["n_samples"], cfg["seed"] + k)[:, 0]
        counts, _ = np.histogram(v, bins=edges)
        out[f"counts_{label}"] = counts
        out[f"sim_mean_{label}"] = v.mean()
        out[f"sim_mean_se_{label}"] = v.std(ddof=1) / np.sqrt(v.size)
        out[f"sim_var_{label}"] = v.var(ddof=1)
        # SE of the sample variance: sqrt((m4 - s^4 (n-3)/(n-1)) / n)
        m4 = np.mean((v - v.mean()) ** 4)
        out[f"sim_var_se_{label}"] = np.sqrt(max(m4 - v.var() ** 2 * (v.size - 3) / (v.size - 1), 0)
                                             / v.size)
    return out


def approximations(data, label):
    """Moment-matched Gaussian and lognormal densities on ``data['x']`` (:func:`moment_fits`)."""
    return moment_fits(data["x"], float(data[f"mean_{label}"]), float(data[f"var_{label}"]))


def bin_errors(data, label):
    """Histogram density and its binomial SE, and the largest |z| against the exact bins."""
    n = float(data["n_samples"])
    width = np.diff(data["edges"])
    p_hat = data[f"counts_{label}"] / n
    se = np.sqrt(np.maximum(data[f"p_bin_{label}"] * (1 - data[f"p_bin_{label}"]), 1e-300) / n)
    z = (p_hat - data[f"p_bin_{label}"]) / se
    return p_hat / width, se / width, z


@styled
def plot(data):
    """Two panels (A, B), each :func:`l4theory.plot.membrane_law`: exact density, histogram +- SE, fits."""
    fig, axes = figure(2, width=7.2, height=2.9, sharey=True)
    edges = data["edges"]
    for ax, (label, lam, w) in zip(axes, NEURONS, strict=True):
        dens, se, _ = bin_errors(data, label)
        mean, var = float(data[f"mean_{label}"]), float(data[f"var_{label}"])
        membrane_law(data["x"], data[f"pdf_{label}"], mean, var, edges=edges, density=dens,
                     density_se=se, ax=ax, color=COLORS[label], legend=label == "A",
                     exact_label="exact (ShotNoise)",
                     title=f"{label}: $\\lambda$={lam:g}, w={w:g}: mean {mean:.3g}, var {var:.3g}")
        ax.set_xlim(0, edges[-1])
    axes[1].set_ylabel("")
    return fig


def caption(data) -> str:
    """Figure caption with the parameters."""
    return (f"Fig. 1. Stationary membrane potential of two single-input neurons, tau = "
            f"{float(data['tau']):g} (jump-w convention): A (lambda = 1, w = 2) and B (lambda = 2, "
            f"w = 1), equal mean 2, variances 2 and 1. Black: exact density (ShotNoise, Gil-Pelaez "
            f"inversion); bars: histogram of {int(data['n_samples']):,} exact event-driven samples at "
            f"t = {float(data['t_stat']):g} tau with binomial SE; dashed: moment-matched Gaussian; "
            f"dotted: moment-matched lognormal.")


def summary(data) -> str:
    """One sentence on what the figure shows, numbers from the data."""
    za = np.abs(bin_errors(data, "A")[2]).max()
    zb = np.abs(bin_errors(data, "B")[2]).max()
    x = data["x"]
    parts = []
    for label in ("A", "B"):
        g, ln = approximations(data, label)
        p = data[f"pdf_{label}"]
        parts.append(f"{label}: {np.abs(g - p).max():.2f} (Gaussian) and {np.abs(ln - p).max():.2f} "
                     f"(lognormal)")
    return (f"Equal means ({float(data['sim_mean_A']):.3f} ± {float(data['sim_mean_se_A']):.3f} and "
            f"{float(data['sim_mean_B']):.3f} ± {float(data['sim_mean_se_B']):.3f} simulated, 2 exact) "
            f"and variances {float(data['sim_var_A']):.3f} ± {float(data['sim_var_se_A']):.3f} vs "
            f"{float(data['sim_var_B']):.3f} ± {float(data['sim_var_se_B']):.3f} (exact 2 and 1); the "
            f"histograms match the exact law (largest bin |z| {za:.1f} and {zb:.1f} over "
            f"{x.size and data['edges'].size - 1} bins), while the paper's 'approximately "
            f"lognormal' shape is not exact: the largest density error on [0, "
            f"{float(data['edges'][-1]):g}] is {parts[0]}; {parts[1]}.")
